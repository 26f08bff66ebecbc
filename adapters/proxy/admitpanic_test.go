package proxy_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/domain"
)

// panicOnceParser panics the first time it parses a request (a bug in any
// admission dependency that runs after the body is buffered).
type panicOnceParser struct {
	anthropic.Parser
	done atomic.Bool
}

func (p *panicOnceParser) ParseRequest(b []byte, f domain.WireFormat) (domain.CallRequest, error) {
	if p.done.CompareAndSwap(false, true) {
		panic("boom in admission")
	}
	return p.Parser.ParseRequest(b, f)
}

// A panic in admission, after the body took its share of the relay-wide
// budget, gives the share back: the next request is served, not refused
// 503 as if the relay held too many bytes. (Found by review: the release
// was once registered only after admission returned.)
func TestAdmissionPanicReleasesBodyBudget(t *testing.T) {
	body := streamBody()
	env := newProxyEnv(t, proxyEnvOptions{parser: &panicOnceParser{}, maxBuffered: int64(len(body)) + 10})
	// As adapters/http's serveDirect does: a panic is answered 500 and the
	// server goes on.
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				http.Error(w, "panic", http.StatusInternalServerError)
			}
		}()
		env.handler.ServeHTTP(w, r)
	}))
	defer rs.Close()
	env.relayURL = rs.URL
	for i, want := range []int{http.StatusInternalServerError, http.StatusOK} {
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", body))
		if resp.StatusCode != want {
			t.Errorf("request %d: status %d, want %d: %.200s", i, resp.StatusCode, want, b)
		}
	}
}
