package proxy_test

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

// countingConn counts the writes made on a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int32
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// The request goes upstream in one write, headers and body together: the
// body is one net/http knows to be in memory. (A body type of the relay's
// own made net/http flush the headers first, on their own: two writes and,
// over TLS, two records per request. Found by review.)
func TestUpstreamRequestInOneWrite(t *testing.T) {
	var writes atomic.Int32
	base := upstream.NewHTTPTransport(time.Minute)
	base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countingConn{Conn: c, writes: &writes}, nil
	}
	env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{NoCapture: true},
		upstreams: func(fakeURL string) []upstream.Config {
			return []upstream.Config{{Name: "primary", URL: fakeURL + "/v1", APIKey: proxyUpstreamKey}}
		}, transportBase: base})
	for i := range 3 {
		before := writes.Load()
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if n := writes.Load() - before; n != 1 {
			t.Fatalf("request %d went upstream in %d writes, want 1", i, n)
		}
	}
}
