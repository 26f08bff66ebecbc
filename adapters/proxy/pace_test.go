package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// openBody starts a POST /v1/messages whose body is sent by the caller.
func openBody(t *testing.T, env *proxyEnv, length int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(env.relayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: %s\r\ncontent-type: application/json\r\n"+
		"anthropic-version: 2023-06-01\r\nContent-Length: %d\r\n\r\n", env.good, length)
	return c
}

// closedWithin reports whether the relay closes c (or answers on it) within
// d, reading whatever it sends.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		return false
	}
	return true
}

// TestProxyStalledBodyIsCutOff: a body that stops arriving, of any size
// (small ones included), has its connection closed at the body deadline,
// and nothing goes upstream.
func TestProxyStalledBodyIsCutOff(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{bodyWait: 500 * time.Millisecond, bodyRate: 64 << 10})
	for _, size := range []int{100, 60 << 10, 1 << 20} {
		c := openBody(t, env, size)
		fmt.Fprint(c, `{"model":`)
		start := time.Now()
		if !closedWithin(c, 5*time.Second) {
			t.Fatalf("%d-byte body: a stalled sender still holds its connection after 5 s", size)
		}
		if took := time.Since(start); took < 400*time.Millisecond {
			t.Fatalf("%d-byte body: cut off after %v, before the deadline", size, took)
		}
	}
	// A sender with an invalid key is refused unread; net/http's drain of
	// its body is bounded by the same deadline.
	c, err := net.Dial("tcp", strings.TrimPrefix(env.relayURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: sk-proxy-nope\r\nContent-Length: 1000\r\n\r\n")
	if !closedWithin(c, 5*time.Second) {
		t.Fatal("a refused request's stalled body holds its connection")
	}
	if n := env.fake.Count(); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}
}

// TestProxySlowButSteadyBodyIsRelayed: a body that keeps arriving at more
// than the minimum rate may take longer than the base deadline.
func TestProxySlowButSteadyBodyIsRelayed(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{bodyWait: 500 * time.Millisecond, bodyRate: 512 << 10})
	text := strings.Repeat("x", 1<<20)
	body := `{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"` + text + `"}]}`
	c := openBody(t, env, len(body))
	// 1 MB in 16 KB pieces at about 1 MB/s: twice the minimum rate, and
	// about twice the base deadline in all.
	start := time.Now()
	for i := 0; i < len(body); i += 16 << 10 {
		if _, err := io.WriteString(c, body[i:min(i+16<<10, len(body))]); err != nil {
			t.Fatalf("the relay cut off a steady sender after %v: %v", time.Since(start), err)
		}
		time.Sleep(15 * time.Millisecond)
	}
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Fatalf("the upload took %v; the test needs it slower than the base deadline", took)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no answer after a steady upload: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
