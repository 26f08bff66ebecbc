package upstream

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

const secretKey = "sk-ant-api03-SECRET-upstream-key"

type recObserver struct {
	NopObserver
	mu        sync.Mutex
	attempts  []string
	retries   int
	failovers []string
}

func (o *recObserver) Attempt(u string, out Outcome) {
	o.mu.Lock()
	o.attempts = append(o.attempts, u+":"+string(out))
	o.mu.Unlock()
}
func (o *recObserver) Retry(string) { o.mu.Lock(); o.retries++; o.mu.Unlock() }
func (o *recObserver) Failover(a, b string) {
	o.mu.Lock()
	o.failovers = append(o.failovers, a+">"+b)
	o.mu.Unlock()
}

var _ Observer = (*recObserver)(nil)

func newFake(t *testing.T) (*fakeanthropic.Server, string) {
	t.Helper()
	f := fakeanthropic.New(fakeanthropic.Options{})
	s := httptest.NewServer(f)
	t.Cleanup(s.Close)
	return f, s.URL
}

func mustNew(t *testing.T, opts Options) *Transport {
	t.Helper()
	if opts.BaseDelay == 0 {
		opts.BaseDelay = time.Millisecond
		opts.MaxDelay = 5 * time.Millisecond
	}
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func post(t *testing.T, tr http.RoundTripper, body string) (*http.Response, *Info, error) {
	t.Helper()
	return send(t, tr, http.MethodPost, "/v1/messages?beta=true", body)
}

// send makes a client request through tr, as the proxy does.
func send(t *testing.T, tr http.RoundTripper, method, target, body string) (*http.Response, *Info, error) {
	t.Helper()
	info := &Info{}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	req = req.WithContext(WithInfo(context.Background(), info))
	req.RequestURI = ""
	req.Header.Set("x-api-key", "sk-proxy-client")
	req.Header.Set("Authorization", "Bearer sk-proxy-client")
	resp, err := tr.RoundTrip(req)
	return resp, info, err
}

func TestRewritesURLAndKey(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	for _, base := range []string{url, url + "/", url + "/v1", url + "/v1/"} {
		tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: base, APIKey: secretKey}}})
		resp, info, err := post(t, tr, `{"model":"m"}`)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		got := f.Last()
		if got.Path != "/v1/messages" || got.RawQuery != "beta=true" {
			t.Fatalf("base %q: path %q query %q", base, got.Path, got.RawQuery)
		}
		if got.Header.Get("x-api-key") != secretKey || got.Header.Get("Authorization") != "" {
			t.Fatalf("base %q: headers %v", base, got.Header)
		}
		if info.Upstream != "primary" || info.Attempts != 1 || info.Retries != 0 {
			t.Fatalf("info %+v", info)
		}
	}
	if p := NormalizeBasePath("/anthropic/v1/"); p != "/anthropic" {
		t.Fatalf("NormalizeBasePath = %q", p)
	}
}

func TestRetryCountsPerStatusClass(t *testing.T) {
	t.Parallel()
	retryNow := http.Header{"Retry-After": {"0"}}
	cases := []struct {
		status       int
		header       http.Header
		wantAttempts int
	}{
		{429, retryNow, 4}, {500, nil, 4}, {502, nil, 4}, {503, nil, 4}, {504, nil, 4}, {529, nil, 4},
		// A 429 without retry-after does not say the limit lifts soon.
		{429, nil, 1},
		{400, nil, 1}, {401, nil, 1}, {403, nil, 1}, {404, nil, 1}, {413, nil, 1}, {422, nil, 1}, {501, nil, 1},
	}
	for _, c := range cases {
		f, url := newFake(t)
		obs := &recObserver{}
		tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, MaxRetries: 3}}, Observer: obs})
		for range 10 {
			f.Script(fakeanthropic.Step{Status: c.status, Header: c.header})
		}
		body := `{"model":"m","messages":[]}`
		resp, info, err := post(t, tr, body)
		if err != nil {
			t.Fatalf("%d: %v", c.status, err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), `"type":"error"`) {
			t.Fatalf("%d: got %d %s", c.status, resp.StatusCode, b)
		}
		if int(f.Count()) != c.wantAttempts || info.Attempts != c.wantAttempts || info.Retries != c.wantAttempts-1 || len(obs.attempts) != c.wantAttempts {
			t.Fatalf("%d: upstream saw %d, info %+v, observed %v", c.status, f.Count(), info, obs.attempts)
		}
		for _, r := range f.Requests() {
			if string(r.Body) != body {
				t.Fatalf("%d: replayed body %q", c.status, r.Body)
			}
		}
	}
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, MaxRetries: 3}}})
	f.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{Status: 529})
	resp, info, err := post(t, tr, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || info.Retries != 2 || f.Count() != 3 {
		t.Fatalf("status %d info %+v count %d", resp.StatusCode, info, f.Count())
	}
}

// TestShouldRetryFalseAndRetryAfter: each answer goes to a transport of its
// own, since a 529 or 429 cools the upstream for the requests after it.
func TestShouldRetryFalseAndRetryAfter(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	fresh := func(opts Options) *Transport {
		opts.Upstreams = []Config{{Name: "primary", URL: url, APIKey: secretKey, MaxRetries: 3}}
		return mustNew(t, opts)
	}
	f.Script(fakeanthropic.Step{Status: 529, Header: http.Header{"X-Should-Retry": {"false"}}})
	resp, info, _ := post(t, fresh(Options{}), `{}`)
	_ = resp.Body.Close()
	if resp.StatusCode != 529 || info.Attempts != 1 {
		t.Fatalf("x-should-retry false: %d %+v", resp.StatusCode, info)
	}
	// x-should-retry: true does not make a 4xx, or a 429 without
	// retry-after, retryable.
	for _, status := range []int{400, 409, 429} {
		f.Script(fakeanthropic.Step{Status: status, Header: http.Header{"X-Should-Retry": {"true"}}})
		resp, info, _ = post(t, fresh(Options{}), `{}`)
		_ = resp.Body.Close()
		if resp.StatusCode != status || info.Attempts != 1 {
			t.Fatalf("x-should-retry true on %d: %d %+v", status, resp.StatusCode, info)
		}
	}
	// retry-after is waited for.
	f.Script(fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"1"}}})
	start := time.Now()
	resp, info, _ = post(t, fresh(Options{}), `{}`)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || info.Retries != 1 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("retry-after: %d %+v after %v", resp.StatusCode, info, time.Since(start))
	}
	// A retry-after beyond the deadline is not waited for: the 429 goes back.
	short := fresh(Options{Deadline: 500 * time.Millisecond})
	f.Script(fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"30"}}})
	resp, info, _ = post(t, short, `{}`)
	_ = resp.Body.Close()
	if resp.StatusCode != 429 || info.Attempts != 1 || resp.Header.Get("retry-after") != "30" {
		t.Fatalf("deadline: %d %+v", resp.StatusCode, info)
	}
}

func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

// TestFailoverAndCooling: a 529 fails over and cools the primary; it takes
// traffic again once its cooling has ended and a probe has found it well,
// not before (the fixed cooldown this replaced let traffic back at once).
func TestFailoverAndCooling(t *testing.T) {
	t.Parallel()
	fPrimary, primaryURL := newFake(t)
	fBackup, backupURL := newFake(t)
	obs := &recObserver{}
	clock := newTestClock()
	tr := mustNew(t, Options{Observer: obs, Cooldown: 300 * time.Millisecond, Now: clock.Now, Upstreams: []Config{
		{Name: "primary", URL: primaryURL, APIKey: secretKey + "-1", MaxRetries: 2},
		{Name: "backup", URL: backupURL, APIKey: secretKey + "-2", MaxRetries: 2},
	}})
	fPrimary.Script(fakeanthropic.Step{Status: 529})
	resp, info, err := post(t, tr, `{"x":1}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || info.Upstream != "backup" || info.Failovers != 1 || info.Retries != 1 {
		t.Fatalf("failover: %d %+v", resp.StatusCode, info)
	}
	if fBackup.Last().Header.Get("x-api-key") != secretKey+"-2" || string(fBackup.Last().Body) != `{"x":1}` {
		t.Fatal("backup got the wrong key or body")
	}
	// The primary cools: the next request goes straight to the backup.
	resp, info, _ = post(t, tr, `{}`)
	_ = resp.Body.Close()
	if info.Upstream != "backup" || info.Attempts != 1 || fPrimary.Count() != 1 {
		t.Fatalf("cooling: %+v, primary saw %d", info, fPrimary.Count())
	}
	// Its cooling ended, but until a probe says so it takes no traffic.
	clock.Advance(350 * time.Millisecond)
	resp, info, _ = post(t, tr, `{}`)
	_ = resp.Body.Close()
	if info.Upstream != "backup" || fPrimary.Count() != 1 || len(info.Skips) != 1 || info.Skips[0].Reason != pool.SkipProbing {
		t.Fatalf("before the probe: %+v", info)
	}
	tr.ProbeOnce(context.Background())
	if fPrimary.CountPath("/v1/models") != 1 || fPrimary.Last().Header.Get("x-api-key") != secretKey+"-1" {
		t.Fatalf("probe: primary saw %d model listings", fPrimary.CountPath("/v1/models"))
	}
	resp, info, _ = post(t, tr, `{}`)
	_ = resp.Body.Close()
	if info.Upstream != "primary" || fPrimary.CountPath("/v1/messages") != 2 {
		t.Fatalf("after the probe: %+v", info)
	}
	if len(obs.failovers) != 1 || obs.failovers[0] != "primary>backup" {
		t.Fatalf("failovers observed: %v", obs.failovers)
	}
}

func TestAllFailingConnection(t *testing.T) {
	t.Parallel()
	tr := mustNew(t, Options{Upstreams: []Config{
		{Name: "primary", URL: deadURL(t), APIKey: secretKey, MaxRetries: 1},
		{Name: "backup", URL: deadURL(t), APIKey: secretKey, MaxRetries: 1},
	}})
	_, info, err := post(t, tr, `{}`)
	de := domain.AsError(err)
	if de == nil || de.Kind != domain.KindUpstream || info.Attempts != 4 || info.Written {
		t.Fatalf("err %v info %+v", err, info)
	}
	if strings.Contains(err.Error(), secretKey) || !strings.Contains(de.Message, "connection failed") {
		t.Fatalf("message %q", de.Message)
	}
	// A failed connection after a 529 returns the 529, body intact.
	f, url := newFake(t)
	tr = mustNew(t, Options{Upstreams: []Config{
		{Name: "primary", URL: url, APIKey: secretKey},
		{Name: "backup", URL: deadURL(t), APIKey: secretKey},
	}})
	f.Script(fakeanthropic.Step{Status: 529})
	resp, _, err := post(t, tr, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 529 || string(b) != fakeanthropic.ErrorBody(529, "req_fake_1") {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
}

// TestTimeoutIs504: a written POST that times out is not sent again.
func TestTimeoutIs504(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, Timeout: 50 * time.Millisecond, MaxRetries: 1}}})
	f.Script(fakeanthropic.Step{Stall: time.Second}, fakeanthropic.Step{Stall: time.Second})
	_, info, err := post(t, tr, `{}`)
	if domain.KindOf(err) != domain.KindTimeout || info.Attempts != 1 || f.Count() != 1 || !info.Written {
		t.Fatalf("err %v info %+v, upstream saw %d", err, info, f.Count())
	}
	if de := domain.AsError(err); de.Reason != domain.ReasonUpstreamTimeout {
		t.Fatalf("reason %q", de.Reason)
	}
}

func TestBodyLimitAndNotConfigured(t *testing.T) {
	t.Parallel()
	_, url := newFake(t)
	tr := mustNew(t, Options{MaxBodyBytes: 10, Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey}}})
	_, _, err := post(t, tr, strings.Repeat("x", 11))
	if domain.KindOf(err) != domain.KindTooLarge {
		t.Fatalf("err %v", err)
	}
	// Unknown length, over the limit.
	req := httptest.NewRequest("POST", "/v1/messages", io.MultiReader(strings.NewReader(strings.Repeat("y", 20))))
	req.ContentLength = -1
	req.RequestURI = ""
	if _, err := tr.RoundTrip(req); domain.KindOf(err) != domain.KindTooLarge {
		t.Fatalf("err %v", err)
	}
	none := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url}}})
	if none.Configured() {
		t.Fatal("configured without a key")
	}
	if _, _, err := post(t, none, `{}`); !errors.Is(err, ErrNotConfigured) {
		t.Fatalf("err %v", err)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, MaxRetries: 3}}})
	f.Script(fakeanthropic.Step{Status: 529, Header: http.Header{"Retry-After": {"10"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://client/v1/messages", strings.NewReader("{}"))
	start := time.Now()
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("err %v after %v", err, time.Since(start))
	}
}

// With Route.OwnHeader the first attempt is sent with the caller's header
// itself, its key set in place; a failover still sends the next upstream
// its own key. Without it the caller's header is left as it was.
func TestOwnHeaderFirstAttemptOnly(t *testing.T) {
	t.Parallel()
	for _, own := range []bool{false, true} {
		fPrimary, primaryURL := newFake(t)
		fBackup, backupURL := newFake(t)
		tr := mustNew(t, Options{Upstreams: []Config{
			{Name: "primary", URL: primaryURL, APIKey: secretKey + "-1", MaxRetries: 2},
			{Name: "backup", URL: backupURL, APIKey: secretKey + "-2", MaxRetries: 2},
		}})
		fPrimary.Script(fakeanthropic.Step{Status: 529})
		info := &Info{}
		ctx := WithRoute(WithInfo(context.Background(), info), &Route{OwnHeader: own})
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/v1/messages", strings.NewReader(`{"x":1}`))
		req.RequestURI = ""
		req.Header.Set("x-api-key", "sk-proxy-client")
		req.Header.Set("Authorization", "Bearer sk-proxy-client")
		req.Header.Set("Anthropic-Version", "2023-06-01")
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || info.Upstream != "backup" || info.Attempts != 2 {
			t.Fatalf("own %v: %d %+v", own, resp.StatusCode, info)
		}
		for _, c := range []struct {
			f   *fakeanthropic.Server
			key string
		}{{fPrimary, secretKey + "-1"}, {fBackup, secretKey + "-2"}} {
			h := c.f.Last().Header
			if h.Get("x-api-key") != c.key || h.Get("Authorization") != "" || h.Get("Anthropic-Version") != "2023-06-01" || string(c.f.Last().Body) != `{"x":1}` {
				t.Fatalf("own %v: upstream got %v %q", own, h, c.f.Last().Body)
			}
		}
		if !own && (req.Header.Get("x-api-key") != "sk-proxy-client" || req.Header.Get("Authorization") != "Bearer sk-proxy-client") {
			t.Fatalf("the caller's header was changed: %v", req.Header)
		}
		if own && req.Header.Get("x-api-key") != secretKey+"-1" {
			t.Fatalf("own: the first attempt was not sent with the caller's header: %v", req.Header)
		}
	}
}
