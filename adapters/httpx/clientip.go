package httpx

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/relaystation/relay/domain"
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

// ErrBadForwardedFor is Resolve's answer when a trusted proxy's
// X-Forwarded-For holds an entry that is not an address: the client cannot
// be known, and guessing (the proxy's own address, say) could let it
// through an allow-list.
var ErrBadForwardedFor = &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonForwardedFor,
	Message: "X-Forwarded-For holds an entry that is not an IP address"}

// Resolve returns the client address: the peer, or, when the peer is a
// trusted proxy, the right-most X-Forwarded-For entry that is not itself a
// trusted proxy (or the left-most entry when all are trusted). Entries may carry a port ("203.0.113.9:51234",
// "[2001:db8::1]:443"), as some load balancers append them. Any entry that
// does not parse is ErrBadForwardedFor: the chain fails closed. The zero
// Addr with a nil error means the peer address itself could not be read.
func (c *ClientIPResolver) Resolve(r *http.Request) (netip.Addr, error) {
	peer := peerAddr(r.RemoteAddr)
	if c == nil || len(c.trusted) == 0 || !peer.IsValid() || !c.isTrusted(peer) {
		return peer, nil
	}
	xff := r.Header.Values("X-Forwarded-For")
	client, found := peer, false
	// Every entry must parse, even those left of the client's: a chain
	// with junk in it is not one to trust any part of.
	for i := len(xff) - 1; i >= 0; i-- {
		parts := strings.Split(xff[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, ok := forwardedAddr(strings.TrimSpace(parts[j]))
			if !ok {
				return netip.Addr{}, ErrBadForwardedFor
			}
			if !found {
				client = a
				found = !c.isTrusted(a)
			}
		}
	}
	return client, nil
}

// forwardedAddr reads one X-Forwarded-For entry: an address, optionally
// with a port (IPv6 then in brackets).
func forwardedAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), ap.Addr().Zone() == ""
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Is6() && a.Zone() == "" {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
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
