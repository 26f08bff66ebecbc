package proxy_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/proxy"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
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
	fake := fakeanthropic.New(fakeanthropic.Options{})
	fs := httptest.NewServer(fake)
	defer fs.Close()
	raw := proxyRawKey(0)
	k := domain.APIKey{ID: uuid.New(), KeyHash: proxyHasher.Hash(raw), IsActive: true, RateLimitTier: "basic"}
	lookup := &proxyKeys{lookup: func(_ context.Context, h string) (domain.APIKey, error) {
		if h == k.KeyHash {
			return k, nil
		}
		return domain.APIKey{}, domain.ErrNotFound
	}}
	svc, err := relay.NewService(relay.ServiceConfig{
		Auth:   relay.NewAuthenticator(proxyHasher, lookup, ports.SystemClock{}),
		Tiers:  relay.NewTierResolver(proxyTierStore{}, time.Minute, nil),
		Ledger: memory.NewLedger(), Rate: memory.NewRateLimiter(), Concurrency: memory.NewConcurrencyLimiter(),
		Usage: &proxyRecorder{}, Parser: &panicOnceParser{}, Estimator: mustEstimator(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := upstream.New(upstream.Options{Upstreams: []upstream.Config{{Name: "p", URL: fs.URL + "/v1", APIKey: proxyUpstreamKey}}})
	if err != nil {
		t.Fatal(err)
	}
	body := streamBody()
	p := proxy.New(proxy.Options{Service: svc, Transport: tr, MaxBufferedBytes: int64(len(body)) + 10})
	// Like adapters/http serveDirect: a panic is recovered and answered 500.
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				http.Error(w, "panic", 500)
			}
		}()
		httpx.RequestIDMiddleware(p).ServeHTTP(w, r)
	})
	rs := httptest.NewServer(h)
	defer rs.Close()
	for i, want := range []int{500, 200} {
		req, _ := http.NewRequest(http.MethodPost, rs.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", raw)
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("request %d: status %d, want %d: %.200s", i, resp.StatusCode, want, b)
		}
	}
}
