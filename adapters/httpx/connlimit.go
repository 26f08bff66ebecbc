package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
)

// ConnLimits bounds the client connections a listener holds open.
type ConnLimits struct {
	// Max is the most connections open at once, from everyone (0: no bound).
	// It protects the process's descriptors: every proxied call also holds
	// an upstream connection, so keep it well under RLIMIT_NOFILE / 2.
	Max int
	// PerAddr is the most connections open at once from one client
	// address (0: no bound). IPv6 addresses are grouped by /64, the
	// smallest block a single subscriber is usually given.
	PerAddr int
	// Exempt peers (the trusted proxies: a load balancer carries every
	// client's connections) are counted only against Max.
	Exempt []netip.Prefix
	// OnRefuse is told why a connection was refused: "global" or
	// "per_address". It must be cheap; nil ignores it.
	OnRefuse func(reason string)
	// OnOpen is told the number of open connections whenever it changes
	// (nil ignores it).
	OnOpen func(open int64)
}

// refusedResponse is written to a refused connection before it is closed,
// so a client sees an Anthropic-shaped 503 rather than a reset. It is sent
// before the request is read: HTTP/1.1 clients accept an early response.
func refusedResponse() []byte {
	id := NewRequestID()
	status, errType := StatusOf(domain.ErrOverloaded)
	body := `{"type":"error","error":{"type":"` + errType + `","message":"too many open connections; retry shortly"},"request_id":"` + id + `"}`
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Content-Type: application/json\r\n" +
		"Retry-After: 1\r\n" +
		"X-Should-Retry: true\r\n" +
		HeaderRequestID + ": " + id + "\r\n" +
		"Connection: close\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

// LimitListener returns ln with l enforced: a connection past a limit is
// answered 503 and closed at once, so it holds no descriptor and no
// goroutine. Unlike golang.org/x/net/netutil.LimitListener, which stops
// accepting when full (and so makes every client wait, the well-behaved
// ones included), a full listener keeps accepting and refuses only the
// connections over a limit.
func LimitListener(ln net.Listener, l ConnLimits) net.Listener {
	if l.Max <= 0 && l.PerAddr <= 0 {
		return ln
	}
	return &limitListener{Listener: ln, l: l, per: make(map[netip.Addr]int)}
}

type limitListener struct {
	net.Listener
	l    ConnLimits
	open atomic.Int64

	mu  sync.Mutex
	per map[netip.Addr]int // open connections per address group; no zero entries
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		group, counted := ll.group(c.RemoteAddr())
		if reason := ll.admit(group, counted); reason != "" {
			// Counted before the answer, so whoever reads the 503 also
			// sees the refusal in the metrics.
			if ll.l.OnRefuse != nil {
				ll.l.OnRefuse(reason)
			}
			refuse(c)
			continue
		}
		return &limitConn{Conn: c, ll: ll, group: group, counted: counted}, nil
	}
}

// group is the address a connection counts against, and whether it counts
// per address at all.
func (ll *limitListener) group(a net.Addr) (netip.Addr, bool) {
	if ll.l.PerAddr <= 0 {
		return netip.Addr{}, false
	}
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Addr{}, false
	}
	ip, ok := netip.AddrFromSlice(tcp.IP)
	if !ok {
		return netip.Addr{}, false
	}
	ip = ip.Unmap()
	for _, p := range ll.l.Exempt {
		if p.Contains(ip) {
			return netip.Addr{}, false
		}
	}
	if ip.Is6() {
		ip = netip.PrefixFrom(ip.WithZone(""), 64).Masked().Addr()
	}
	return ip, true
}

// admit takes a place for a new connection, or says which limit is full.
func (ll *limitListener) admit(group netip.Addr, counted bool) string {
	if n := ll.open.Add(1); ll.l.Max > 0 && n > int64(ll.l.Max) {
		ll.open.Add(-1)
		return "global"
	}
	if counted {
		ll.mu.Lock()
		n := ll.per[group]
		if n >= ll.l.PerAddr {
			ll.mu.Unlock()
			ll.open.Add(-1)
			return "per_address"
		}
		ll.per[group] = n + 1
		ll.mu.Unlock()
	}
	if ll.l.OnOpen != nil {
		ll.l.OnOpen(ll.open.Load())
	}
	return ""
}

func (ll *limitListener) release(group netip.Addr, counted bool) {
	if counted {
		ll.mu.Lock()
		if n := ll.per[group]; n > 1 {
			ll.per[group] = n - 1
		} else {
			delete(ll.per, group)
		}
		ll.mu.Unlock()
	}
	n := ll.open.Add(-1)
	if ll.l.OnOpen != nil {
		ll.l.OnOpen(n)
	}
}

// refuse answers a connection over a limit and closes it. The write cannot
// block for long: a fresh socket's send buffer is empty, and the deadline
// bounds it anyway.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	_, _ = c.Write(refusedResponse())
	if tc, ok := c.(*net.TCPConn); ok {
		// Close at once, without lingering on unread request bytes.
		_ = tc.CloseRead()
	}
	_ = c.Close()
}

// limitConn gives its place back exactly once, however often it is closed.
type limitConn struct {
	net.Conn
	ll      *limitListener
	group   netip.Addr
	counted bool
	closed  atomic.Bool
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	if c.closed.CompareAndSwap(false, true) {
		c.ll.release(c.group, c.counted)
	}
	return err
}
