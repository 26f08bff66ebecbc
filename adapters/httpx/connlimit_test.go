package httpx

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// dialFrom connects to addr from the loopback address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type refusals struct {
	mu sync.Mutex
	n  map[string]int
}

func (r *refusals) add(reason string) { r.mu.Lock(); r.n[reason]++; r.mu.Unlock() }
func (r *refusals) get(reason string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n[reason]
}

// serveHolding accepts through ln and holds every accepted connection open
// until the test ends, as a stalled request would.
func serveHolding(t *testing.T, ln net.Listener) chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 1000)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return accepted
}

// wantRefused reads the relay's early 503 from a refused connection.
func wantRefused(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a refused connection should get a 503 first: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		Type  string `json:"type"`
		Error struct {
			Type string `json:"type"`
		} `json:"error"`
		RequestID string `json:"request_id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" ||
		body.Type != "error" || body.Error.Type != "overloaded_error" || body.RequestID == "" ||
		resp.Header.Get(HeaderRequestID) != body.RequestID {
		t.Fatalf("refusal = %d %+v, headers %v", resp.StatusCode, body, resp.Header)
	}
}

func TestLimitListenerPerAddress(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &refusals{n: map[string]int{}}
	accepted := serveHolding(t, LimitListener(base, ConnLimits{PerAddr: 3, OnRefuse: ref.add,
		Exempt: []netip.Prefix{netip.MustParsePrefix("127.0.0.9/32")}}))
	addr := base.Addr().String()

	var held []net.Conn
	for range 3 {
		dialFrom(t, "127.0.0.1", addr)
		held = append(held, <-accepted)
	}
	wantRefused(t, dialFrom(t, "127.0.0.1", addr))
	if got := ref.get("per_address"); got != 1 {
		t.Fatalf("per_address refusals = %d, want 1", got)
	}
	// Another address is unaffected, and so is an exempt (trusted) one.
	dialFrom(t, "127.0.0.2", addr)
	<-accepted
	for range 5 {
		dialFrom(t, "127.0.0.9", addr)
		<-accepted
	}
	// Closing gives the place back, once, however often Close is called.
	held[0].Close()
	held[0].Close()
	dialFrom(t, "127.0.0.1", addr)
	select {
	case <-accepted:
	case <-time.After(2 * time.Second):
		t.Fatal("a freed place was not given back")
	}
	wantRefused(t, dialFrom(t, "127.0.0.1", addr))
}

func TestLimitListenerGlobal(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ref := &refusals{n: map[string]int{}}
	var open []int64
	var mu sync.Mutex
	accepted := serveHolding(t, LimitListener(base, ConnLimits{Max: 4, PerAddr: 100, OnRefuse: ref.add,
		OnOpen: func(n int64) { mu.Lock(); open = append(open, n); mu.Unlock() }}))
	addr := base.Addr().String()
	for i := range 4 {
		dialFrom(t, "127.0.0."+string(rune('1'+i)), addr)
		<-accepted
	}
	wantRefused(t, dialFrom(t, "127.0.0.7", addr))
	if ref.get("global") != 1 {
		t.Fatalf("refusals = %v", ref.n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(open) != 4 || open[3] != 4 {
		t.Fatalf("open counts reported = %v", open)
	}
}

func TestLimitListenerGroupsIPv6By64(t *testing.T) {
	ll := &limitListener{l: ConnLimits{PerAddr: 1}, per: map[netip.Addr]int{}}
	a, _ := ll.group(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1")})
	b, _ := ll.group(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:ffff::9")})
	c, _ := ll.group(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1")})
	v4, _ := ll.group(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.7")})
	if a != b || a == c {
		t.Fatalf("groups: %v %v %v", a, b, c)
	}
	if v4 != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("a mapped IPv4 address groups as itself, got %v", v4)
	}
	if ll.admit(a, true) != "" || ll.admit(b, true) != "per_address" || ll.admit(c, true) != "" {
		t.Fatal("one /64 must share one per-address budget")
	}
}

func TestLimitListenerOffIsTheListenerItself(t *testing.T) {
	base, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer base.Close()
	if LimitListener(base, ConnLimits{}) != base {
		t.Fatal("no limits should add no wrapper")
	}
}
