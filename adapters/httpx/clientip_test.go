package httpx

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/relaystation/relay/domain"
)

func TestResolveForwardedFor(t *testing.T) {
	t.Parallel()
	r := NewClientIPResolver([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")})
	cases := []struct {
		peer string
		xff  []string
		want string // "" with bad: refused
		bad  bool
	}{
		{"198.51.100.7:5000", []string{"203.0.113.9"}, "198.51.100.7", false}, // untrusted peer: header ignored
		{"10.0.0.1:5000", nil, "10.0.0.1", false},
		{"10.0.0.1:5000", []string{"203.0.113.9"}, "203.0.113.9", false},
		{"10.0.0.1:5000", []string{"203.0.113.9:51234"}, "203.0.113.9", false},
		{"10.0.0.1:5000", []string{"[2001:db8::1]:443"}, "2001:db8::1", false},
		{"10.0.0.1:5000", []string{"[2001:db8::1]"}, "2001:db8::1", false},
		{"10.0.0.1:5000", []string{"2001:db8::1"}, "2001:db8::1", false},
		{"10.0.0.1:5000", []string{"::ffff:203.0.113.9"}, "203.0.113.9", false},
		{"10.0.0.1:5000", []string{"198.51.100.1, 203.0.113.9, 10.0.0.2"}, "203.0.113.9", false},
		{"10.0.0.1:5000", []string{"198.51.100.1", "203.0.113.9:1"}, "203.0.113.9", false},
		{"10.0.0.1:5000", []string{"unknown"}, "", true},
		{"10.0.0.1:5000", []string{"203.0.113.9, garbage"}, "", true},
		{"10.0.0.1:5000", []string{"garbage, 10.0.0.2"}, "", true},
		{"10.0.0.1:5000", []string{""}, "", true},
		{"10.0.0.1:5000", []string{"203.0.113.9:"}, "", true},
		{"10.0.0.1:5000", []string{"fe80::1%eth0"}, "", true},
		{"10.0.0.1:5000", []string{"10.0.0.5"}, "10.0.0.5", false}, // only trusted hops: the last one
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, "http://relay/", nil)
		req.RemoteAddr = c.peer
		for _, v := range c.xff {
			req.Header.Add("X-Forwarded-For", v)
		}
		got, err := r.Resolve(req)
		if c.bad {
			if domain.KindOf(err) != domain.KindInvalid || got.IsValid() {
				t.Errorf("%q from %s: got %v %v, want a 400", c.xff, c.peer, got, err)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("%q from %s: got %v %v, want %s", c.xff, c.peer, got, err, c.want)
		}
	}
}
