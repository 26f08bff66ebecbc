package proxy_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
)

// benchRecorder accepts records and drops them: the durable writer is
// benchmarked in its own package.
type benchRecorder struct{}

func (benchRecorder) Record(context.Context, domain.UsageRecord) error { return nil }
func (benchRecorder) Saturated() bool                                  { return false }

var _ ports.UsageRecorder = benchRecorder{}

// benchBufferPool gives the bare proxy the same pooled copy buffers the
// relay uses, so the baseline is the best a bare proxy does.
type benchBufferPool struct{}

var benchBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (benchBufferPool) Get() []byte  { return *benchBufs.Get().(*[]byte) }
func (benchBufferPool) Put(b []byte) { benchBufs.Put(&b) }

// BenchmarkProxy compares the relay handler (admission with the in-memory
// adapters, usage parsing, settlement, the log line) with a bare
// httputil.ReverseProxy that only swaps the key, in the same run, against
// the same fake upstream over loopback. Both are driven at the handler
// level (httptest.ResponseRecorder), so the figures are the server-side
// cost per request plus the shared upstream round trip.
func BenchmarkProxy(b *testing.B) {
	// The relay with the production upstream transport and a log line per
	// request, written as the relay writes it (Options.AccessLog) into
	// io.Discard.
	env := newProxyEnv(b, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 10, NoCapture: true},
		log: slog.New(slog.NewJSONHandler(io.Discard, nil)), access: io.Discard, recorder: benchRecorder{}})
	fakeURL, _ := url.Parse(env.fakeURL)
	bareTransport := upstream.NewHTTPTransport(time.Minute)
	bare := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(fakeURL)
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Set("x-api-key", proxyUpstreamKey)
		},
		Transport:  bareTransport,
		BufferPool: benchBufferPool{},
	}
	relayHandler := env.handler

	for _, mode := range []struct {
		name string
		body string
	}{
		{"json", proxyReqBody},
		{"stream", streamBody()},
	} {
		for _, sys := range []struct {
			name string
			h    http.Handler
		}{{"bare", bare}, {"relay", relayHandler}} {
			b.Run(sys.name+"/"+mode.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					req := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(mode.body))
					req.Header.Set("x-api-key", env.good)
					req.Header.Set("content-type", "application/json")
					req.Header.Set("anthropic-version", "2023-06-01")
					w := httptest.NewRecorder()
					sys.h.ServeHTTP(w, req)
					if w.Code != 200 {
						b.Fatalf("%s: %d %s", sys.name, w.Code, w.Body.String())
					}
				}
			})
		}
	}
}
