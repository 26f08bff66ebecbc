package proxy_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/proxy"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
)

const proxyUpstreamKey = "sk-ant-api03-UPSTREAM-SECRET-never-leak"

var proxyHasher = domain.NewKeyHasher([]byte("proxy-test-secret"))

// proxyKeys is a function-field KeyLookup over a fixed set of keys.
type proxyKeys struct {
	lookup func(ctx context.Context, hash string) (domain.APIKey, error)
}

func (k *proxyKeys) LookupKey(ctx context.Context, h string) (domain.APIKey, error) {
	return k.lookup(ctx, h)
}
func (k *proxyKeys) Invalidate(uuid.UUID) {}

// proxyRecorder is a function-field-free UsageRecorder that keeps records.
type proxyRecorder struct {
	mu   sync.Mutex
	recs []domain.UsageRecord
}

func (r *proxyRecorder) Record(_ context.Context, rec domain.UsageRecord) error {
	r.mu.Lock()
	r.recs = append(r.recs, rec)
	r.mu.Unlock()
	return nil
}
func (r *proxyRecorder) Saturated() bool { return false }

func (r *proxyRecorder) all() []domain.UsageRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]domain.UsageRecord(nil), r.recs...)
}

var (
	_ ports.KeyLookup     = (*proxyKeys)(nil)
	_ ports.UsageRecorder = (*proxyRecorder)(nil)
)

type proxyTierStore struct{ ports.TierStore }

func (proxyTierStore) ListTiers(context.Context) ([]domain.Tier, error) {
	conc := 64
	return []domain.Tier{
		{Name: "basic", Requests: 100_000, Period: time.Minute, MaxConcurrency: &conc},
		{Name: "tiny", Requests: 1, Period: time.Hour},
	}, nil
}

type proxyEnv struct {
	t        testing.TB
	fake     *fakeanthropic.Server
	fakeURL  string
	relayURL string
	rec      *proxyRecorder
	keys     map[string]domain.APIKey // by raw key
	good     string
	logBuf   *syncBuffer
	handler  http.Handler // the relay, as mounted: request ids, then the proxy
	mu       sync.Mutex
	byHash   map[string]domain.APIKey
}

// setLimit gives the key a token_limit.
func (e *proxyEnv) setLimit(raw string, limit int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	k := e.keys[raw]
	k.TokenLimit = &limit
	e.keys[raw] = k
	e.byHash[k.KeyHash] = k
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type proxyEnvOptions struct {
	fake      fakeanthropic.Options
	upstreams func(fakeURL string) []upstream.Config
	transport http.RoundTripper
	// transportBase is the upstream transport's own (upstream.Options.Transport).
	transportBase http.RoundTripper
	idle          time.Duration
	maxBody       int64
	// maxBuffered caps buffered request bytes across requests.
	maxBuffered int64
	// writeTimeout is the client write-progress timeout.
	writeTimeout time.Duration
	// bodyWait and bodyRate are the body deadline and its minimum rate.
	bodyWait time.Duration
	bodyRate int64
	noLog    bool
	log      *slog.Logger        // replaces the captured log
	access   io.Writer           // the per-request line's writer (Options.AccessLog)
	recorder ports.UsageRecorder // replaces the recording one
	parser   ports.RequestParser // replaces anthropic.Parser
}

func proxyRawKey(n byte) string {
	return domain.KeyPrefix + strings.Repeat(string('A'+n), 43)
}

func newProxyEnv(tb testing.TB, o proxyEnvOptions) *proxyEnv {
	tb.Helper()
	fake := fakeanthropic.New(o.fake)
	fs := httptest.NewServer(fake)
	tb.Cleanup(fs.Close)
	env := &proxyEnv{t: tb, fake: fake, fakeURL: fs.URL, rec: &proxyRecorder{}, keys: map[string]domain.APIKey{}, logBuf: &syncBuffer{}}
	past := time.Now().Add(-time.Hour)
	add := func(n byte, mod func(*domain.APIKey)) string {
		raw := proxyRawKey(n)
		k := domain.APIKey{ID: uuid.New(), KeyHash: proxyHasher.Hash(raw), IsActive: true, RateLimitTier: "basic"}
		if mod != nil {
			mod(&k)
		}
		env.keys[raw] = k
		return raw
	}
	env.good = add(0, nil)
	add(1, func(k *domain.APIKey) { k.IsActive = false })
	add(2, func(k *domain.APIKey) { k.ExpiresAt = &past })
	add(3, func(k *domain.APIKey) { k.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")} })
	add(4, func(k *domain.APIKey) { k.DeletedAt = &past })
	add(5, func(k *domain.APIKey) { k.RateLimitTier = "tiny" })
	env.byHash = map[string]domain.APIKey{}
	for _, k := range env.keys {
		env.byHash[k.KeyHash] = k
	}
	lookup := &proxyKeys{lookup: func(_ context.Context, h string) (domain.APIKey, error) {
		env.mu.Lock()
		defer env.mu.Unlock()
		if k, ok := env.byHash[h]; ok {
			return k, nil
		}
		return domain.APIKey{}, domain.ErrNotFound
	}}
	var usage ports.UsageRecorder = env.rec
	if o.recorder != nil {
		usage = o.recorder
	}
	var parser ports.RequestParser = anthropic.Parser{}
	if o.parser != nil {
		parser = o.parser
	}
	svc, err := relay.NewService(relay.ServiceConfig{
		Auth:        relay.NewAuthenticator(proxyHasher, lookup, ports.SystemClock{}),
		Tiers:       relay.NewTierResolver(proxyTierStore{}, time.Minute, nil),
		Ledger:      memory.NewLedger(),
		Rate:        memory.NewRateLimiter(),
		Concurrency: memory.NewConcurrencyLimiter(),
		Usage:       usage,
		Parser:      parser,
		Estimator:   mustEstimator(tb),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ups := []upstream.Config{{Name: "primary", URL: fs.URL + "/v1", APIKey: proxyUpstreamKey, MaxRetries: 3}}
	if o.upstreams != nil {
		ups = o.upstreams(fs.URL)
	}
	tr := o.transport
	if tr == nil {
		ut, err := upstream.New(upstream.Options{Upstreams: ups, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxBodyBytes: o.maxBody,
			Transport: o.transportBase})
		if err != nil {
			tb.Fatal(err)
		}
		tr = ut
	}
	var log *slog.Logger
	if !o.noLog {
		log = slog.New(slog.NewJSONHandler(env.logBuf, nil))
	}
	if o.log != nil {
		log = o.log
	}
	p := proxy.New(proxy.Options{Service: svc, Transport: tr, Log: log, AccessLog: o.access, IdleTimeout: o.idle, MaxBodyBytes: o.maxBody,
		MaxBufferedBytes: o.maxBuffered, WriteTimeout: o.writeTimeout, BodyReadTimeout: o.bodyWait, BodyMinRate: o.bodyRate})
	env.handler = httpx.RequestIDMiddleware(p)
	rs := httptest.NewServer(env.handler)
	tb.Cleanup(rs.Close)
	env.relayURL = rs.URL
	return env
}

// waitRecords waits for n usage records: settlement runs when the relay
// closes the upstream body, just after the client has seen the end.
func (e *proxyEnv) waitRecords(n int) []domain.UsageRecord {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs := e.rec.all()
		if len(recs) >= n {
			if len(recs) > n {
				e.t.Fatalf("%d usage records, want %d: %+v", len(recs), n, recs)
			}
			return recs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%d usage records after 5s, want %d", len(recs), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitLog waits for the proxy's log to hold n per-request lines and returns
// it: the line is written just after the record is handed over, so a test
// that has seen the record may still be ahead of the line.
func (e *proxyEnv) waitLog(n int) string {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		logs := e.logBuf.String()
		if strings.Count(logs, `"msg":"proxied"`) >= n {
			return logs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("fewer than %d log lines after 5s: %s", n, logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

const proxyReqBody = `{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, Claude \u00e9 \n"}]}`

func (e *proxyEnv) newRequest(ctx context.Context, path, body string) *http.Request {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.relayURL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("x-api-key", e.good)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	return req
}

func proxyDo(t testing.TB, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestProxyPassthroughNonStreaming(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	req := env.newRequest(context.Background(), "/v1/messages?beta=true", proxyReqBody)
	req.Header.Set("anthropic-beta", "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14")
	req.Header.Set("anthropic-dangerous-direct-browser-access", "true")
	req.Header.Set("User-Agent", "claude-cli/2.0.0 (external, cli)")
	req.Header.Set("X-Claude-Code-Session-Id", "sess-123")
	req.Header.Set("X-Stainless-Lang", "js")
	req.Header.Set("Connection", "X-Hop")
	req.Header.Set("X-Hop", "must-not-pass")
	req.Header.Set("Authorization", "Bearer "+env.good)
	resp, body := proxyDo(t, req)

	direct := fakeanthropic.New(fakeanthropic.Options{})
	w := httptest.NewRecorder()
	dreq := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(proxyReqBody))
	dreq.Header.Set("x-api-key", "k")
	direct.ServeHTTP(w, dreq)
	if resp.StatusCode != 200 || !bytes.Equal(body, w.Body.Bytes()) {
		t.Fatalf("status %d, body not byte-exact:\n%s\nwant\n%s", resp.StatusCode, body, w.Body.Bytes())
	}
	up := env.fake.Last()
	if string(up.Body) != proxyReqBody || up.Path != "/v1/messages" || up.RawQuery != "beta=true" {
		t.Fatalf("upstream saw %s %s?%s", up.Body, up.Path, up.RawQuery)
	}
	h := up.Header
	for name, want := range map[string]string{
		"X-Api-Key":         proxyUpstreamKey,
		"Anthropic-Version": "2023-06-01",
		"Anthropic-Beta":    "prompt-caching-2024-07-31,interleaved-thinking-2025-05-14",
		"Anthropic-Dangerous-Direct-Browser-Access": "true",
		"User-Agent":               "claude-cli/2.0.0 (external, cli)",
		"X-Claude-Code-Session-Id": "sess-123",
		"X-Stainless-Lang":         "js",
		"Content-Type":             "application/json",
		"Authorization":            "",
		"X-Hop":                    "",
		"Connection":               "",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("upstream header %s = %q, want %q", name, got, want)
		}
	}
	if v := h.Values("X-Api-Key"); len(v) != 1 {
		t.Errorf("upstream x-api-key values %q", v)
	}
	rh := resp.Header
	if rh.Get("request-id") != "req_fake_1" || rh.Get("anthropic-ratelimit-requests-limit") != "4000" ||
		rh.Get("anthropic-organization-id") != "" || rh.Get("x-request-id") == "" {
		t.Errorf("response headers %v", rh)
	}
	if rh.Get("x-relay-ratelimit-limit-requests") != "100000" || rh.Get("x-relay-ratelimit-remaining-requests") != "99999" ||
		rh.Get("x-relay-ratelimit-reset-requests") == "" || rh.Get("x-ratelimit-limit-requests") != "" {
		t.Errorf("relay rate headers %v", rh)
	}
	for k, vs := range rh {
		for _, v := range vs {
			if strings.Contains(v, proxyUpstreamKey) || strings.Contains(k, proxyUpstreamKey) {
				t.Fatalf("upstream key leaked in response header %s", k)
			}
		}
	}
	recs := env.waitRecords(1)
	r := recs[0]
	u := fakeanthropic.DefaultUsage
	want := domain.Usage{InputTokens: u.InputTokens, OutputTokens: u.OutputTokens, CacheCreationInputTokens: u.CacheCreationInputTokens,
		CacheReadInputTokens: u.CacheReadInputTokens, CacheCreation5mTokens: u.CacheCreation5m, CacheCreation1hTokens: u.CacheCreation1h}
	if r.Usage != want || r.Estimated || r.Stream || r.Status != 200 || r.Model != fakeanthropic.Model || r.Path != "/v1/messages" ||
		r.UpstreamRequestID != "req_fake_1" || r.Upstream != "primary" || r.SessionID != "sess-123" || r.ClientIP != "127.0.0.1" ||
		r.RequestID != rh.Get("x-request-id") || r.KeyID != env.keys[env.good].ID || r.TTFB <= 0 || r.Latency < r.TTFB {
		t.Fatalf("record %+v", r)
	}
	logs := env.waitLog(1)
	if !strings.Contains(logs, `"msg":"proxied"`) || !strings.Contains(logs, r.RequestID) || strings.Contains(logs, proxyUpstreamKey) ||
		strings.Contains(logs, env.good) || strings.Contains(logs, "Hello, Claude") {
		t.Fatalf("log line: %s", logs)
	}
}

func TestProxyBothAuthHeaders(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	req := env.newRequest(context.Background(), "/v1/messages", proxyReqBody)
	req.Header.Del("x-api-key")
	req.Header.Set("Authorization", "Bearer "+env.good)
	if resp, b := proxyDo(t, req); resp.StatusCode != 200 {
		t.Fatalf("bearer: %d %s", resp.StatusCode, b)
	}
	if env.fake.Last().Header.Get("Authorization") != "" || env.fake.Last().Header.Get("x-api-key") != proxyUpstreamKey {
		t.Fatal("client credentials reached the upstream")
	}
}

func TestProxyAuthFailuresSendNothingUpstream(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	cases := []struct {
		key    string
		status int
		typ    string
	}{
		{"", 401, "authentication_error"},
		{"sk-proxy-nope", 401, "authentication_error"},
		{proxyRawKey(20), 401, "authentication_error"}, // unknown
		{proxyRawKey(1), 401, "authentication_error"},  // disabled
		{proxyRawKey(2), 401, "authentication_error"},  // expired
		{proxyRawKey(4), 401, "authentication_error"},  // deleted
		{proxyRawKey(3), 403, "permission_error"},      // IP allow-list
	}
	for _, c := range cases {
		for _, bearer := range []bool{false, true} {
			req := env.newRequest(context.Background(), "/v1/messages", proxyReqBody)
			req.Header.Del("x-api-key")
			if c.key != "" {
				if bearer {
					req.Header.Set("Authorization", "Bearer "+c.key)
				} else {
					req.Header.Set("x-api-key", c.key)
				}
			}
			resp, b := proxyDo(t, req)
			var eb httpx.ErrorBody
			_ = json.Unmarshal(b, &eb)
			if resp.StatusCode != c.status || eb.Type != "error" || eb.Error.Type != c.typ || eb.RequestID == "" {
				t.Errorf("key %q: %d %s", c.key, resp.StatusCode, b)
			}
		}
	}
	if n := env.fake.Count(); n != 0 {
		t.Fatalf("upstream saw %d requests", n)
	}
	// Refusals of known keys (disabled, expired, deleted, IP) are recorded
	// with zero tokens, twice each (x-api-key and bearer); unknown keys are not.
	recs := env.waitRecords(8)
	for _, r := range recs {
		if r.Usage.Total() != 0 || (r.Status != 401 && r.Status != 403) || r.ErrorType == "" || r.KeyID == uuid.Nil {
			t.Fatalf("refusal record %+v", r)
		}
	}
}

func TestProxyRateLimited(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	for i, want := range []int{200, 429} {
		req := env.newRequest(context.Background(), "/v1/messages", proxyReqBody)
		req.Header.Set("x-api-key", proxyRawKey(5)) // tier "tiny": 1 per hour
		resp, b := proxyDo(t, req)
		if resp.StatusCode != want {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
		if want == 429 && (resp.Header.Get("retry-after") == "" || !strings.Contains(string(b), "rate_limit_error")) {
			t.Fatalf("429 without retry-after: %v %s", resp.Header, b)
		}
	}
}

func TestProxyUpstreamNotConfigured(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{upstreams: func(u string) []upstream.Config {
		return []upstream.Config{{Name: "primary", URL: u}}
	}})
	for _, path := range []string{"/v1/messages", "/v1/models"} {
		resp, b := proxyDo(t, env.newRequest(context.Background(), path, proxyReqBody))
		if resp.StatusCode != 503 || !strings.Contains(string(b), `"api_error"`) || !strings.Contains(string(b), "upstream is not configured") {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
	}
}

func TestProxyUpstreamErrorBodyPassesThrough(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	errBody := `{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}`
	env.fake.Script(fakeanthropic.Step{Status: 400, Body: errBody})
	resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
	if resp.StatusCode != 400 || string(b) != errBody {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	r := env.waitRecords(1)[0]
	if r.Status != 400 || r.ErrorType != "invalid_request_error" || r.Usage.Total() != 0 {
		t.Fatalf("record %+v", r)
	}
}

func TestProxyBodyTooLarge(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{maxBody: 1024})
	resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", `{"x":"`+strings.Repeat("a", 2000)+`"}`))
	if resp.StatusCode != 413 || !strings.Contains(string(b), "request_too_large") || env.fake.Count() != 0 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
}

func TestProxyAuxCallsChargeNothing(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages/count_tokens", proxyReqBody))
	if resp.StatusCode != 200 || string(b) != `{"input_tokens":42}` {
		t.Fatalf("count_tokens: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest("GET", env.relayURL+"/v1/models", nil)
	req.Header.Set("Authorization", "Bearer "+env.good)
	resp, b = proxyDo(t, req)
	if resp.StatusCode != 200 || !strings.Contains(string(b), fakeanthropic.Model) {
		t.Fatalf("models: %d %s", resp.StatusCode, b)
	}
	for _, r := range env.waitRecords(2) {
		if r.Usage.Total() != 0 || r.Status != 200 {
			t.Fatalf("aux record %+v", r)
		}
	}
}

// sseEvent is one event as the client saw it.
type sseEvent struct {
	name string
	data string
	at   time.Time
}

func readSSE(t testing.TB, r io.Reader, onEvent func(sseEvent) bool) (raw []byte, err error) {
	t.Helper()
	var buf bytes.Buffer
	br := bufio.NewReader(io.TeeReader(r, &buf))
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return buf.Bytes(), err
		}
		line = strings.TrimRight(line, "\r\n")
		switch {
		case line == "":
			ev.at = time.Now()
			if ev.name != "" && !onEvent(ev) {
				return buf.Bytes(), nil
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			ev.name = line[7:]
		case strings.HasPrefix(line, "data: "):
			ev.data = line[6:]
		}
	}
}

func streamBody() string {
	return `{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"Hello"}]}`
}

// An event stream is relayed byte for byte and metered exactly, also when
// each event is far larger than the 4 KB buffer a stream is copied through
// (every event then arrives in pieces).
func TestProxyStreamingExactUsageAndBytes(t *testing.T) {
	for _, tc := range []struct {
		name string
		text string
	}{{"small events", ""}, {"events larger than the copy buffer", strings.Repeat("wide ", 4000)}} {
		t.Run(tc.name, func(t *testing.T) {
			env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 15, DeltaText: tc.text}})
			resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", streamBody()))
			direct := httptest.NewRecorder()
			dreq := httptest.NewRequest("POST", "/v1/messages", strings.NewReader(streamBody()))
			dreq.Header.Set("x-api-key", "k")
			env.fake.ServeHTTP(direct, dreq)
			if resp.StatusCode != 200 || !bytes.Equal(b, direct.Body.Bytes()) {
				t.Fatalf("stream not byte-exact:\n%.2000s\nwant\n%.2000s", b, direct.Body.Bytes())
			}
			if len(b) < 15*len(tc.text) {
				t.Fatalf("stream of %d bytes, want at least %d", len(b), 15*len(tc.text))
			}
			if ct := resp.Header.Get("content-type"); ct != "text/event-stream; charset=utf-8" {
				t.Fatalf("content-type %q", ct)
			}
			r := env.waitRecords(1)[0]
			u := env.fake.StreamUsage()
			want := domain.Usage{InputTokens: u.InputTokens, OutputTokens: 15, CacheCreationInputTokens: u.CacheCreationInputTokens,
				CacheReadInputTokens: u.CacheReadInputTokens, CacheCreation5mTokens: u.CacheCreation5m, CacheCreation1hTokens: u.CacheCreation1h}
			if r.Usage != want || r.Estimated || !r.Stream || r.Model != fakeanthropic.Model || r.ErrorType != "" {
				t.Fatalf("record %+v", r)
			}
		})
	}
}

// TestProxyStreamingTiming is the regression test: 20 events 100 ms
// apart must each reach the client within a few milliseconds of leaving the
// upstream, i.e. nothing in the relay buffers them.
func TestProxyStreamingTiming(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 20, Spacing: 100 * time.Millisecond}})
	resp, err := http.DefaultClient.Do(env.newRequest(context.Background(), "/v1/messages", streamBody()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var arrivals []time.Time
	_, err = readSSE(t, resp.Body, func(e sseEvent) bool {
		if e.name == "content_block_delta" {
			arrivals = append(arrivals, e.at)
		}
		return true
	})
	if !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	up := env.fake.Snapshot(env.fake.Last())
	if len(arrivals) != 20 || len(up.Events) != 20 {
		t.Fatalf("%d arrivals, %d emissions", len(arrivals), len(up.Events))
	}
	// "A few ms": generous enough for -race on a shared 2-core machine, far
	// below the 100 ms spacing any buffering would show up as.
	const budget = 25 * time.Millisecond
	var worst time.Duration
	for i := range arrivals {
		d := arrivals[i].Sub(up.Events[i])
		worst = max(worst, d)
		if d > budget {
			t.Errorf("event %d arrived %v after emission", i, d)
		}
	}
	t.Logf("worst per-event delay through the relay: %v", worst)
}

func TestProxyInterruptedStreams(t *testing.T) {
	u := fakeanthropic.DefaultUsage
	t.Run("client hangs up", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 50, Spacing: 20 * time.Millisecond, DeltaText: "hello world "}})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		resp, err := http.DefaultClient.Do(env.newRequest(ctx, "/v1/messages", streamBody()))
		if err != nil {
			t.Fatal(err)
		}
		seen := 0
		_, _ = readSSE(t, resp.Body, func(e sseEvent) bool {
			if e.name == "content_block_delta" {
				seen++
			}
			return seen < 5
		})
		cancel()
		_ = resp.Body.Close()
		r := env.waitRecords(1)[0]
		if !r.Estimated || r.Usage.InputTokens != u.InputTokens || r.Usage.CacheReadInputTokens != u.CacheReadInputTokens ||
			r.Usage.OutputTokens < 10 || r.Usage.OutputTokens > 40 || r.ErrorType != "client_closed" {
			t.Fatalf("record %+v", r)
		}
		// The upstream saw the cancellation.
		deadline := time.Now().Add(3 * time.Second)
		for !env.fake.Snapshot(env.fake.Last()).Cancelled {
			if time.Now().After(deadline) {
				t.Fatal("upstream request was not cancelled")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	t.Run("upstream drops", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 10, DeltaText: "hello world "}})
		env.fake.Script(fakeanthropic.Step{DropAfter: 4})
		resp, err := http.DefaultClient.Do(env.newRequest(context.Background(), "/v1/messages", streamBody()))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if n := strings.Count(string(raw), "event: content_block_delta"); n != 4 {
			t.Fatalf("client saw %d deltas", n)
		}
		r := env.waitRecords(1)[0]
		if !r.Estimated || r.Usage.InputTokens != u.InputTokens || r.Usage.OutputTokens < 6 || r.ErrorType != "upstream_disconnected" {
			t.Fatalf("record %+v", r)
		}
		// No retry once bytes went to the client.
		if env.fake.Count() != 1 {
			t.Fatalf("upstream saw %d requests: a stream was retried", env.fake.Count())
		}
	})
	t.Run("no final message_delta", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 8, DeltaText: "hello world "}})
		env.fake.Script(fakeanthropic.Step{NoFinal: true})
		resp, _ := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", streamBody()))
		if resp.StatusCode != 200 {
			t.Fatal(resp.StatusCode)
		}
		r := env.waitRecords(1)[0]
		if !r.Estimated || r.Usage.InputTokens != u.InputTokens || r.Usage.OutputTokens < 12 || r.Usage.OutputTokens > 30 {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{idle: 150 * time.Millisecond, fake: fakeanthropic.Options{Deltas: 10}})
		env.fake.Script(fakeanthropic.Step{DropAfter: 3, Stall: 5 * time.Second})
		start := time.Now()
		resp, err := http.DefaultClient.Do(env.newRequest(context.Background(), "/v1/messages", streamBody()))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		r := env.waitRecords(1)[0]
		if time.Since(start) > 3*time.Second || r.ErrorType != "idle_timeout" || !r.Estimated {
			t.Fatalf("after %v: record %+v", time.Since(start), r)
		}
	})
}

func TestProxyRetriesAndFailover(t *testing.T) {
	t.Run("529,529,200", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{})
		env.fake.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{Status: 529, Header: http.Header{"Retry-After": {"0"}}})
		resp, _ := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
		if resp.StatusCode != 200 || env.fake.Count() != 3 {
			t.Fatalf("%d after %d upstream requests", resp.StatusCode, env.fake.Count())
		}
		for _, r := range env.fake.Requests() {
			if string(r.Body) != proxyReqBody {
				t.Fatalf("replayed body %q", r.Body)
			}
		}
		if r := env.waitRecords(1)[0]; r.Usage.OutputTokens != fakeanthropic.DefaultUsage.OutputTokens ||
			r.Attempts != 3 || len(r.TriedUpstreams) != 0 {
			t.Fatalf("record %+v", r)
		}
		if logs := env.waitLog(1); !strings.Contains(logs, `"retries":2`) {
			t.Fatalf("log line lacks retries: %s", logs)
		}
	})
	t.Run("all failing returns the last upstream error", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{})
		for range 4 {
			env.fake.Script(fakeanthropic.Step{Status: 529, Header: http.Header{"X-Should-Retry": {"true"}}})
		}
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
		if resp.StatusCode != 529 || string(b) != fakeanthropic.ErrorBody(529, "req_fake_4") || env.fake.Count() != 4 {
			t.Fatalf("%d %s after %d", resp.StatusCode, b, env.fake.Count())
		}
		if r := env.waitRecords(1)[0]; r.ErrorType != "overloaded_error" || r.Status != 529 {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("failover", func(t *testing.T) {
		backup := fakeanthropic.New(fakeanthropic.Options{})
		bs := httptest.NewServer(backup)
		defer bs.Close()
		env := newProxyEnv(t, proxyEnvOptions{upstreams: func(u string) []upstream.Config {
			return []upstream.Config{{Name: "primary", URL: u, APIKey: proxyUpstreamKey, MaxRetries: 1},
				{Name: "backup", URL: bs.URL, APIKey: proxyUpstreamKey + "-b", MaxRetries: 1}}
		}})
		env.fake.Script(fakeanthropic.Step{Status: 503})
		resp, _ := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
		if resp.StatusCode != 200 || backup.Count() != 1 {
			t.Fatalf("%d, backup saw %d", resp.StatusCode, backup.Count())
		}
		if r := env.waitRecords(1)[0]; r.Upstream != "backup" || r.Attempts != 2 || !slices.Equal(r.TriedUpstreams, []string{"primary"}) {
			t.Fatalf("record %+v", r)
		}
	})
	t.Run("unreachable is 502", func(t *testing.T) {
		env := newProxyEnv(t, proxyEnvOptions{upstreams: func(string) []upstream.Config {
			return []upstream.Config{{Name: "primary", URL: "http://127.0.0.1:1", APIKey: proxyUpstreamKey}}
		}})
		resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
		if resp.StatusCode != 502 || !strings.Contains(string(b), `"api_error"`) || strings.Contains(string(b), proxyUpstreamKey) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		if r := env.waitRecords(1)[0]; r.Status != 502 || r.Usage.Total() != 0 || r.Attempts == 0 {
			t.Fatalf("record %+v", r)
		}
	})
}

func TestProxyClientDisconnectCancelsUpstream(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{})
	env.fake.Script(fakeanthropic.Step{Stall: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := http.DefaultClient.Do(env.newRequest(ctx, "/v1/messages", proxyReqBody))
	if err == nil {
		t.Fatal("expected the client to time out")
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		if l := env.fake.Last(); l != nil && env.fake.Snapshot(l).Cancelled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("upstream request not cancelled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r := env.waitRecords(1)[0]; r.Status != 499 || r.ErrorType != "client_closed" {
		t.Fatalf("record %+v", r)
	}
}

type panicTransport struct{}

func (panicTransport) RoundTrip(*http.Request) (*http.Response, error) { panic("boom") }

func TestProxyPanicSettlesOnce(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{transport: panicTransport{}, noLog: true})
	resp, err := http.DefaultClient.Do(env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
	if err == nil {
		_ = resp.Body.Close()
	}
	r := env.waitRecords(1)[0]
	if r.Status != 500 || r.ErrorType != "panic" {
		t.Fatalf("record %+v", r)
	}
	time.Sleep(50 * time.Millisecond)
	env.waitRecords(1)
}

func TestRequestIDIsNeverTakenFromTheClient(t *testing.T) {
	var seen string
	h := httpx.RequestIDMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = httpx.RequestIDFrom(r.Context())
	}))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, "/v1/messages", nil)
	req.Header.Set("x-request-id", "req_chosen_by_the_client_123")
	h.ServeHTTP(rec, req)
	if seen == "" || seen == "req_chosen_by_the_client_123" || rec.Header().Get("x-request-id") != seen {
		t.Fatalf("request id %q (header %q)", seen, rec.Header().Get("x-request-id"))
	}
}

func mustEstimator(tb testing.TB) *anthropic.Estimator {
	tb.Helper()
	e, err := anthropic.NewEstimator(anthropic.EstimatorConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
