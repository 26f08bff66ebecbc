package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPResolver finds the client address of a request. By default it is
// the connection's peer. X-Forwarded-For is believed only when the peer is a
// configured trusted proxy, and then it is walked right to left, skipping
// trusted hops, so a client cannot spoof its address by sending the header.
type ClientIPResolver struct {
	trusted []netip.Prefix
}

// NewClientIPResolver trusts X-Forwarded-For from the given proxy ranges.
func NewClientIPResolver(trusted []netip.Prefix) *ClientIPResolver {
	return &ClientIPResolver{trusted: trusted}
}

func (c *ClientIPResolver) isTrusted(a netip.Addr) bool {
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address; the zero Addr if none can be parsed.
func (c *ClientIPResolver) Resolve(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if c == nil || len(c.trusted) == 0 || !peer.IsValid() || !c.isTrusted(peer) {
		return peer
	}
	xff := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client
			}
			a = a.Unmap()
			client = a
			if !c.isTrusted(a) {
				return a
			}
		}
	}
	return client
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}
