package upstream

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

const benchBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude"}]}`

// benchUpstream is a fast fake upstream (its Start fast path), so that the
// figures are the transport's cost plus one loopback round trip.
func benchUpstream(b *testing.B) string {
	b.Helper()
	e, err := fakeanthropic.New(fakeanthropic.Options{NoCapture: true}).Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	return e.URL()
}

// benchSend sends one /v1/messages call through tr, as the proxy does (a
// replayable body, an Info and, when given, a route), and reads the answer.
func benchSend(b *testing.B, tr http.RoundTripper, route *Route) {
	ctx := WithInfo(context.Background(), &Info{})
	if route != nil {
		ctx = WithRoute(ctx, route)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://relay/v1/messages", strings.NewReader(benchBody))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		b.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("status %d", resp.StatusCode)
	}
}

// stubUpstream answers every request at once from memory, as the
// Anthropic API would with its rate-limit headers: with it a benchmark
// measures the transport alone, without a network round trip.
type stubUpstream struct{}

const stubAnswer = `{"id":"msg_1","type":"message","usage":{"input_tokens":1,"output_tokens":1}}`

func (stubUpstream) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		_ = req.Body.Close()
	}
	h := http.Header{
		"Content-Type":                           {"application/json"},
		"Anthropic-Ratelimit-Requests-Limit":     {"4000"},
		"Anthropic-Ratelimit-Requests-Remaining": {"3999"},
		"Anthropic-Ratelimit-Requests-Reset":     {"2027-01-04T12:00:01Z"},
	}
	return &http.Response{StatusCode: 200, Header: h, Body: io.NopCloser(strings.NewReader(stubAnswer)),
		ContentLength: int64(len(stubAnswer)), Request: req}, nil
}

// BenchmarkTransport is the transport's cost per request: one upstream
// (the configuration's primary, as before the pool), and a pool of three,
// balanced (no session) and pinned (a session with an in-memory pin: a
// pin read and a renewal per request). The loopback cases go to fake
// upstreams over TCP; the overhead cases to an in-memory stub, which
// leaves the transport's own work.
func BenchmarkTransport(b *testing.B) {
	for _, c := range []struct {
		name string
		url  func(b *testing.B) string
		rt   http.RoundTripper
	}{
		{"loopback", benchUpstream, nil},
		{"overhead", func(*testing.B) string { return "http://stub" }, stubUpstream{}},
	} {
		b.Run(c.name, func(b *testing.B) { benchTransport(b, c.url, c.rt) })
	}
}

func benchTransport(b *testing.B, upstreamURL func(b *testing.B) string, rt http.RoundTripper) {
	b.Run("single", func(b *testing.B) {
		tr := mustNewBench(b, Options{Transport: rt, Upstreams: []Config{{Name: "primary", URL: upstreamURL(b), APIKey: secretKey}}})
		b.ReportAllocs()
		for b.Loop() {
			benchSend(b, tr, nil)
		}
	})
	pool3 := func(b *testing.B) *Transport {
		b.Helper()
		var cfgs []Config
		var ups []pool.Upstream
		for _, id := range []string{"a", "b", "c"} {
			cfgs = append(cfgs, Config{ID: id, Name: id, URL: upstreamURL(b), APIKey: secretKey})
			ups = append(ups, pool.Upstream{ID: id, Name: id, Weight: 1, Enabled: true})
		}
		p, err := pool.New(pool.Config{}, ups)
		if err != nil {
			b.Fatal(err)
		}
		pins, err := memory.NewSessionPins(1 << 16)
		if err != nil {
			b.Fatal(err)
		}
		return mustNewBench(b, Options{Transport: rt, Pool: p, Pins: pins, Upstreams: cfgs})
	}
	b.Run("pool3/balanced", func(b *testing.B) {
		tr := pool3(b)
		route := &Route{Model: "claude-sonnet-4-5"}
		b.ReportAllocs()
		for b.Loop() {
			benchSend(b, tr, route)
		}
	})
	b.Run("pool3/pinned", func(b *testing.B) {
		tr := pool3(b)
		route := &Route{Model: "claude-sonnet-4-5", Session: pool.SessionKey("key", "claude-code-session", "")}
		b.ReportAllocs()
		for b.Loop() {
			benchSend(b, tr, route)
		}
	})
}

func mustNewBench(b *testing.B, opts Options) *Transport {
	b.Helper()
	tr, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	return tr
}
