package upstream

import (
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
)

// testClock is the fake clock the pool, the pins and the transport share:
// cooling, probing and pins move only when a test moves it.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// poolEnv is a transport over a pool of fake upstreams, each an httptest
// server, on one fake clock.
type poolEnv struct {
	t     *testing.T
	clock *testClock
	pool  *pool.Pool
	pins  *memory.SessionPins
	tr    *Transport
	fakes map[string]*fakeanthropic.Server
	// disabled receives OnDisable's calls.
	disabled chan [2]string
	obs      *stateObserver
}

// stateObserver records picks and the last States report.
type stateObserver struct {
	NopObserver
	mu     sync.Mutex
	picks  map[string]int // "upstream/why"
	states []UpstreamState
	events []pool.Event
}

func (o *stateObserver) Picked(u string, why pool.Why) {
	o.mu.Lock()
	o.picks[u+"/"+string(why)]++
	o.mu.Unlock()
}
func (o *stateObserver) StateChanged(_ string, ev pool.Event) {
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
}
func (o *stateObserver) States(s []UpstreamState) {
	o.mu.Lock()
	o.states = s
	o.mu.Unlock()
}

func (o *stateObserver) state(id string) UpstreamState {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, s := range o.states {
		if s.ID == id {
			return s
		}
	}
	return UpstreamState{}
}

func up(id string, priority, weight int) pool.Upstream {
	return pool.Upstream{ID: id, Name: "name-" + id, Priority: priority, Weight: weight, Enabled: true}
}

// newPoolEnv serves each of ups from a fake of its own; cfg adjusts each
// upstream's endpoint.
func newPoolEnv(t *testing.T, ups []pool.Upstream, cfg func(*Config)) *poolEnv {
	t.Helper()
	e := &poolEnv{t: t, clock: newTestClock(), fakes: map[string]*fakeanthropic.Server{}, disabled: make(chan [2]string, 8),
		obs: &stateObserver{picks: map[string]int{}}}
	p, err := pool.New(pool.Config{Clock: e.clock, Rand: rand.New(rand.NewPCG(1, 2))}, ups)
	if err != nil {
		t.Fatal(err)
	}
	e.pool = p
	e.pins, err = memory.NewSessionPins(10_000, memory.WithClock(e.clock))
	if err != nil {
		t.Fatal(err)
	}
	var cfgs []Config
	for _, u := range ups {
		f, url := newFake(t)
		e.fakes[u.ID] = f
		c := Config{ID: u.ID, Name: u.Name, URL: url, APIKey: secretKey + "-" + u.ID, MaxRetries: 1}
		if cfg != nil {
			cfg(&c)
		}
		cfgs = append(cfgs, c)
	}
	e.tr = mustNew(t, Options{Pool: p, Pins: e.pins, Upstreams: cfgs, Now: e.clock.Now, Observer: e.obs,
		OnDisable: func(id, reason string) { e.disabled <- [2]string{id, reason} }})
	return e
}

// do sends a request through the transport with route, as the proxy does.
func (e *poolEnv) do(ctx context.Context, route *Route, method, target, body string) (*http.Response, *Info, error) {
	e.t.Helper()
	info := &Info{}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	ctx = WithInfo(ctx, info)
	if route != nil {
		ctx = WithRoute(ctx, route)
	}
	req := httptest.NewRequestWithContext(ctx, method, target, r)
	req.RequestURI = ""
	req.Header.Set("x-api-key", "sk-proxy-client")
	resp, err := e.tr.RoundTrip(req)
	return resp, info, err
}

// message sends a /v1/messages call for route's model and wants a 200.
func (e *poolEnv) message(route Route) *Info {
	e.t.Helper()
	resp, info, err := e.do(context.Background(), &route, http.MethodPost, "/v1/messages", `{"model":"`+route.Model+`"}`)
	if err != nil {
		e.t.Fatalf("%+v: %v (info %+v)", route, err, info)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%+v: status %d (info %+v)", route, resp.StatusCode, info)
	}
	return info
}

// messages is how many /v1/messages calls upstream id's fake has answered.
func (e *poolEnv) messages(id string) int { return e.fakes[id].CountPath("/v1/messages") }

func (e *poolEnv) health(id, model string) pool.Health {
	for _, s := range e.pool.Status() {
		if s.Upstream.ID == id {
			if model == "" {
				return s.Health
			}
			return s.Models[model]
		}
	}
	e.t.Fatalf("no upstream %s", id)
	return pool.Health{}
}

func session(n int) string {
	return pool.SessionKey("key-1", "claude-code-session-"+strconv.Itoa(n), "")
}

// TestPoolHealthyFirstAndWeights: new requests share the best tier by
// weight; an upstream that is not healthy for the model takes none, and
// the next tier takes over only when the whole first tier is out.
func TestPoolHealthyFirstAndWeights(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 0, 3), up("c", 1, 1)}, nil)
	const n = 400
	for range n {
		if info := e.message(Route{Model: "m"}); info.Why != pool.WhyBalanced {
			t.Fatalf("why %q", info.Why)
		}
	}
	// Weights 1:3 within tier 0, within 25 requests (three standard
	// deviations) of each share; tier 1 idle.
	if a, b, c := e.messages("a"), e.messages("b"), e.messages("c"); c != 0 || a < 75 || a > 125 || b < 275 || b > 325 {
		t.Fatalf("a %d, b %d, c %d of %d", a, b, c, n)
	}
	// b overloads for m: the request that meets the 529 fails over to a,
	// and b takes no more m.
	e.fakes["b"].Script(fakeanthropic.Step{Status: 529})
	for before := e.messages("b"); e.messages("b") == before; {
		e.message(Route{Model: "m"})
	}
	if h := e.health("b", "m"); h.State != pool.Cooling || h.Cause != pool.CauseOverloaded {
		t.Fatalf("b for m: %+v", h)
	}
	a, b := e.messages("a"), e.messages("b")
	for range 50 {
		e.message(Route{Model: "m"})
	}
	if e.messages("a") != a+50 || e.messages("b") != b || e.messages("c") != 0 {
		t.Fatalf("after b cooled: a +%d, b +%d, c %d", e.messages("a")-a, e.messages("b")-b, e.messages("c"))
	}
	// Tier fallback: with a overloaded too, tier 1 serves, and says why.
	e.fakes["a"].Script(fakeanthropic.Step{Status: 529})
	info := e.message(Route{Model: "m"})
	if info.UpstreamID != "c" || info.Failovers != 1 || e.messages("c") != 1 || !slices.Equal(info.Tried, []string{"a"}) {
		t.Fatalf("tier fallback: %+v", info)
	}
	info = e.message(Route{Model: "m"})
	if info.UpstreamID != "c" || info.Attempts != 1 || !strings.Contains(info.SkipSummary(), "a: model m cooling until") {
		t.Fatalf("tier 1: %+v, skips %q", info, info.SkipSummary())
	}
}

// TestPoolStickySessions: a session's requests stay on one upstream; when
// it rate-limits them (429 with retry-after) the request fails over and
// the pin moves with it, and stays moved after the first upstream
// recovers.
func TestPoolStickySessions(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 0, 1), up("c", 0, 2)}, nil)
	s := session(0)
	first := e.message(Route{Model: "m", Session: s})
	home := first.UpstreamID
	if first.Why != pool.WhyBalanced {
		t.Fatalf("first: %+v", first)
	}
	for range 99 {
		if info := e.message(Route{Model: "m", Session: s}); info.UpstreamID != home || info.Why != pool.WhyPinned {
			t.Fatalf("pinned to %s, went to %s (%s)", home, info.UpstreamID, info.Why)
		}
	}
	if e.messages(home) != 100 {
		t.Fatalf("%s served %d of 100", home, e.messages(home))
	}
	if id, ok, _ := e.pins.Get(context.Background(), s); !ok || id != home {
		t.Fatalf("pin %q %v, want %s", id, ok, home)
	}

	// 300 sessions spread 1:1:2, within three standard deviations of each
	// share (23 sessions for a and b, 26 for c), each staying where it
	// started.
	where := map[string]string{}
	for i := 1; i <= 300; i++ {
		where[session(i)] = e.message(Route{Model: "m", Session: session(i)}).UpstreamID
	}
	per := map[string]int{}
	for i := 1; i <= 300; i++ {
		if got := e.message(Route{Model: "m", Session: session(i)}).UpstreamID; got != where[session(i)] {
			t.Fatalf("session %d moved from %s to %s", i, where[session(i)], got)
		}
		per[where[session(i)]]++
	}
	if per["a"] < 52 || per["a"] > 98 || per["b"] < 52 || per["b"] > 98 || per["c"] < 124 || per["c"] > 176 {
		t.Fatalf("sessions per upstream %v", per)
	}

	// The home upstream rate-limits m for 30 s: the request fails over,
	// and the pin moves.
	e.fakes[home].Script(fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"30"}}})
	moved := e.message(Route{Model: "m", Session: s})
	if moved.UpstreamID == home || moved.Why != pool.WhyMoved || moved.Failovers != 1 {
		t.Fatalf("after the 429: %+v", moved)
	}
	if id, _, _ := e.pins.Get(context.Background(), s); id != moved.UpstreamID {
		t.Fatalf("pin %q, want %s", id, moved.UpstreamID)
	}
	// Cooling ends at the stated time; a probe brings home back, and the
	// session stays where its cache now is.
	e.clock.Advance(30 * time.Second)
	e.tr.ProbeOnce(context.Background())
	if h := e.health(home, "m"); h.State != pool.Healthy || !h.LastProbeOK {
		t.Fatalf("home after the probe: %+v", h)
	}
	for range 10 {
		if info := e.message(Route{Model: "m", Session: s}); info.UpstreamID != moved.UpstreamID || info.Why != pool.WhyPinned {
			t.Fatalf("after recovery: %+v", info)
		}
	}
}

// TestPool529CoolsOnlyThatModel: a 529 for one model leaves the upstream
// serving the others.
func TestPool529CoolsOnlyThatModel(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1), up("c", 2, 1)}, nil)
	e.fakes["a"].Script(fakeanthropic.Step{Status: 529})
	if info := e.message(Route{Model: "opus"}); info.UpstreamID != "b" || info.Failovers != 1 {
		t.Fatalf("529: %+v", info)
	}
	if info := e.message(Route{Model: "opus"}); info.UpstreamID != "b" {
		t.Fatalf("opus after the 529: %+v", info)
	}
	if info := e.message(Route{Model: "haiku"}); info.UpstreamID != "a" {
		t.Fatalf("haiku: %+v", info)
	}
	if h := e.health("a", ""); h.State != pool.Healthy {
		t.Fatalf("a itself: %+v", h)
	}
	if e.obs.state("a").ModelsUnhealthy != 1 || e.obs.state("a").State != pool.Healthy {
		t.Fatalf("reported state %+v", e.obs.state("a"))
	}
}

// TestPoolCoolingEndsAtTheStatedTime: a 429's retry-after, or without one
// the reset of the limit that ran out, ends the cooling; then exactly one
// free probe (count_tokens for the model) brings the upstream back.
func TestPoolCoolingEndsAtTheStatedTime(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		after time.Duration
		step  func(now time.Time) fakeanthropic.Step
	}{
		{"retry-after", 2 * time.Second, func(time.Time) fakeanthropic.Step {
			return fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"2"}}}
		}},
		{"ratelimit reset", 5 * time.Second, func(now time.Time) fakeanthropic.Step {
			return fakeanthropic.Step{Status: 429, Header: http.Header{
				"Anthropic-Ratelimit-Input-Tokens-Limit":     {"40000"},
				"Anthropic-Ratelimit-Input-Tokens-Remaining": {"0"},
				"Anthropic-Ratelimit-Input-Tokens-Reset":     {now.Add(5 * time.Second).Format(time.RFC3339)},
			}}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1), up("c", 2, 1)}, nil)
			e.fakes["a"].Script(c.step(e.clock.Now()))
			route := Route{Model: "claude-sonnet-4-5"}
			resp, _, err := e.do(context.Background(), &route, http.MethodPost, "/v1/messages", `{}`)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			// A 429 without retry-after is not retried (the rules), but it
			// cools a all the same.
			if h := e.health("a", route.Model); h.State != pool.Cooling || !h.Until.Equal(e.clock.Now().Add(c.after)) {
				t.Fatalf("a: %+v", h)
			}
			e.clock.Advance(c.after - time.Second)
			e.tr.ProbeOnce(context.Background())
			if n := e.fakes["a"].CountPath("/v1/messages/count_tokens"); n != 0 {
				t.Fatalf("probed %d times while cooling", n)
			}
			if info := e.message(route); info.UpstreamID != "b" {
				t.Fatalf("while cooling: %+v", info)
			}
			e.clock.Advance(time.Second)
			e.tr.ProbeOnce(context.Background())
			e.tr.ProbeOnce(context.Background())
			probes := 0
			for _, r := range e.fakes["a"].Requests() {
				if r.Path == "/v1/messages/count_tokens" {
					probes++
					if string(r.Body) != `{"model":"claude-sonnet-4-5","messages":[{"role":"user","content":"ping"}]}` ||
						r.Method != http.MethodPost || r.Header.Get("x-api-key") != secretKey+"-a" {
						t.Fatalf("probe %s %s %q", r.Method, r.Path, r.Body)
					}
				}
			}
			if probes != 1 {
				t.Fatalf("%d probes", probes)
			}
			if h := e.health("a", route.Model); h.State != pool.Healthy || h.Cause != pool.CauseProbeOK {
				t.Fatalf("after the probe: %+v", h)
			}
			if info := e.message(route); info.UpstreamID != "a" {
				t.Fatalf("after the probe: %+v", info)
			}
		})
	}
}

// TestPool401Disables: the upstream is disabled with its reason, OnDisable
// hears of it, traffic moves on, and only Enable brings it back.
func TestPool401Disables(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1), up("c", 2, 1)}, nil)
	refused := `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`
	e.fakes["a"].Script(fakeanthropic.Step{Status: 401, Body: refused})
	route := Route{Model: "m"}
	resp, info, err := e.do(context.Background(), &route, http.MethodPost, "/v1/messages", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	// The retry rules are unchanged: a 401 is answered, not retried.
	if resp.StatusCode != 401 || string(b) != refused || info.Attempts != 1 {
		t.Fatalf("%d %s %+v", resp.StatusCode, b, info)
	}
	select {
	case d := <-e.disabled:
		if d[0] != "a" || d[1] != "the upstream answered 401: authentication_error: invalid x-api-key" {
			t.Fatalf("OnDisable%q", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnDisable was not called")
	}
	if h := e.health("a", ""); h.State != pool.Disabled || h.Status != 401 || e.obs.state("a").State != pool.Disabled {
		t.Fatalf("a: %+v", h)
	}
	for range 5 {
		if info := e.message(route); info.UpstreamID != "b" {
			t.Fatalf("after the disable: %+v", info)
		}
	}
	// Probes never bring a disabled upstream back.
	e.clock.Advance(time.Hour)
	e.tr.ProbeOnce(context.Background())
	if info := e.message(route); info.UpstreamID != "b" {
		t.Fatalf("an hour later: %+v", info)
	}
	if err := e.tr.Enable("a"); err != nil {
		t.Fatal(err)
	}
	if info := e.message(route); info.UpstreamID != "a" || e.obs.state("a").State != pool.Healthy {
		t.Fatalf("after Enable: %+v", info)
	}
}

// TestPoolWrittenPostTimeoutIsNotResent: the pool changes nothing of the
// rules: a POST written to a and timed out goes to no other upstream.
func TestPoolWrittenPostTimeoutIsNotResent(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1), up("c", 2, 1)}, func(c *Config) {
		c.Timeout, c.MaxRetries = 100*time.Millisecond, 3
	})
	e.fakes["a"].Script(fakeanthropic.Step{Stall: 10 * time.Second})
	_, info, err := e.do(context.Background(), &Route{Model: "m"}, http.MethodPost, "/v1/messages", `{"model":"m"}`)
	if domain.KindOf(err) != domain.KindTimeout || !info.Written || info.Attempts != 1 || info.UpstreamID != "a" {
		t.Fatalf("err %v info %+v", err, info)
	}
	if e.messages("a") != 1 || e.messages("b") != 0 || e.messages("c") != 0 {
		t.Fatalf("a %d, b %d, c %d", e.messages("a"), e.messages("b"), e.messages("c"))
	}
}

// TestPoolObjectAffinity: a batch created on b is read from b, even when a
// is preferred, healthy, and even while b cools.
func TestPoolObjectAffinity(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1), up("c", 2, 1)}, nil)
	// a is overloaded when the batch is created: it lands on b.
	e.fakes["a"].Script(fakeanthropic.Step{Path: "/v1/messages/batches", Status: 529})
	resp, info, err := e.do(context.Background(), &Route{}, http.MethodPost, "/v1/messages/batches",
		`{"requests":[{"custom_id":"r1","params":{"model":"m","max_tokens":10,"messages":[]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var created struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&created); err != nil || info.UpstreamID != "b" || created.ID == "" {
		t.Fatalf("create: %v %+v %q", err, info, created.ID)
	}
	_ = resp.Body.Close()
	// a recovers and is preferred again.
	e.clock.Advance(time.Hour)
	e.tr.ProbeOnce(context.Background())
	if info := e.message(Route{Model: "m"}); info.UpstreamID != "a" {
		t.Fatalf("a not preferred: %+v", info)
	}
	get := func(ctx context.Context, route *Route, path string) (*Info, int) {
		t.Helper()
		resp, info, err := e.do(ctx, route, http.MethodGet, path, "")
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return info, resp.StatusCode
	}
	path := "/v1/messages/batches/" + created.ID
	// Without affinity a serves, and does not know the batch.
	if info, status := get(context.Background(), &Route{}, path); info.UpstreamID != "a" || status != 404 {
		t.Fatalf("without affinity: %d %+v", status, info)
	}
	for _, p := range []string{path, path + "/results"} {
		if info, status := get(context.Background(), &Route{Require: "b"}, p); info.UpstreamID != "b" || info.Why != pool.WhyAffinity || status != 200 {
			t.Fatalf("%s: %d %+v", p, status, info)
		}
	}
	// The batch reconciler names the upstream through the context.
	if info, status := get(relay.WithRequiredUpstream(context.Background(), "b"), nil, path); info.UpstreamID != "b" || status != 200 {
		t.Fatalf("reconciler: %d %+v", status, info)
	}
	// While b cools, its own answer still beats a refusal.
	e.pool.Observe(pool.Observation{Upstream: "b", Status: 529})
	if info, status := get(context.Background(), &Route{Require: "b"}, path); info.UpstreamID != "b" || status != 200 {
		t.Fatalf("b cooling: %d %+v", status, info)
	}
	// An upstream that is gone cannot serve its objects: 503, nothing sent.
	resp, _, err = e.do(context.Background(), &Route{Require: "gone"}, http.MethodGet, path, "")
	if resp != nil || domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("gone: %v %v", resp, err)
	}
}

// TestPoolHeadroomAndConcurrency: an upstream close to its rate limit gets
// no new sessions (its pinned ones stay), and one at max_concurrency
// none at all until a slot frees.
func TestPoolHeadroomAndConcurrency(t *testing.T) {
	t.Parallel()
	ups := []pool.Upstream{up("a", 0, 1), up("b", 0, 1)}
	ups[0].MaxConcurrency = 2
	e := newPoolEnv(t, ups, nil)
	// Pin a session to a.
	var onA string
	for i := 0; onA == ""; i++ {
		if e.message(Route{Model: "m", Session: session(i)}).UpstreamID == "a" {
			onA = session(i)
		}
	}
	// a reports 5 of 100 requests left (under the 10 % line).
	e.fakes["a"].Script(fakeanthropic.Step{Header: http.Header{
		"Anthropic-Ratelimit-Requests-Limit": {"100"}, "Anthropic-Ratelimit-Requests-Remaining": {"5"}}})
	if info := e.message(Route{Model: "m", Session: onA}); info.UpstreamID != "a" {
		t.Fatalf("pinned: %+v", info)
	}
	for i := 1000; i < 1020; i++ {
		info := e.message(Route{Model: "m", Session: session(i)})
		if info.UpstreamID != "b" || len(info.Skips) != 1 || info.Skips[0].Reason != pool.SkipLowHeadroom {
			t.Fatalf("new session %d: %+v", i, info)
		}
	}
	// The pinned session stays, low as a is: its cache is there.
	if info := e.message(Route{Model: "m", Session: onA}); info.UpstreamID != "a" || info.Why != pool.WhyPinned {
		t.Fatalf("pinned, low: %+v", info)
	}

	// max_concurrency 2: two answers still being read hold both slots.
	var open []*http.Response
	for len(open) < 2 {
		resp, info, err := e.do(context.Background(), &Route{Require: "a"}, http.MethodPost, "/v1/messages", `{}`)
		if err != nil || info.UpstreamID != "a" {
			t.Fatalf("%v %+v", err, info)
		}
		open = append(open, resp)
	}
	info := e.message(Route{Model: "other"})
	if info.UpstreamID != "b" || !strings.Contains(info.SkipSummary(), "a: at max_concurrency") {
		t.Fatalf("a full: %+v", info)
	}
	if _, _, err := e.do(context.Background(), &Route{Require: "a"}, http.MethodGet, "/v1/models", ""); domain.KindOf(err) != domain.KindOverloaded {
		t.Fatalf("affinity to a full upstream: %v", err)
	}
	_ = open[0].Body.Close()
	if info := e.message(Route{Require: "a"}); info.UpstreamID != "a" {
		t.Fatalf("a slot freed: %+v", info)
	}
	_ = open[1].Body.Close()
	if st := e.pool.Status()[0]; st.Upstream.ID != "a" || st.InFlight != 0 {
		t.Fatalf("slots not freed: %+v", st)
	}
}

// TestPoolNoUpstreamMayServe: when every upstream that could is cooling,
// the client is told when to come back, and nothing is sent.
func TestPoolNoUpstreamMayServe(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 0, 1), up("c", 0, 1)}, nil)
	for _, id := range []string{"a", "b", "c"} {
		e.pool.Observe(pool.Observation{Upstream: id, Model: "m", Status: 429, RetryAt: e.clock.Now().Add(7 * time.Second)})
	}
	_, info, err := e.do(context.Background(), &Route{Model: "m"}, http.MethodPost, "/v1/messages", `{}`)
	de := domain.AsError(err)
	if de == nil || de.Kind != domain.KindRateLimited || de.RetryAfter != 7*time.Second || info.Attempts != 0 || len(info.Skips) != 3 {
		t.Fatalf("err %v info %+v", err, info)
	}
	if strings.Contains(de.Message, "name-a") || e.messages("a")+e.messages("b")+e.messages("c") != 0 {
		t.Fatalf("message %q", de.Message)
	}
	// Another model is served.
	e.message(Route{Model: "n"})
	// A group without upstreams: 503 api_error.
	if _, _, err := e.do(context.Background(), &Route{Model: "m", Group: "team"}, http.MethodPost, "/v1/messages", `{}`); domain.KindOf(err) != domain.KindUnavailable {
		t.Fatalf("empty group: %v", err)
	}
}

// TestApplyAndTest: Apply swaps the endpoints at once and keeps the
// connections of those whose URL stayed; Test reaches an endpoint outside
// the pool and never shows its key.
func TestApplyAndTest(t *testing.T) {
	t.Parallel()
	e := newPoolEnv(t, []pool.Upstream{up("a", 0, 1), up("b", 1, 1)}, nil)
	before := *e.tr.targets.Load()
	f, newURL := newFake(t)
	err := e.tr.Apply([]ports.UpstreamEndpoint{
		{ID: "a", Name: "renamed", URL: before["a"].rawURL, APIKey: "sk-ant-new-a"},
		{ID: "b", Name: "b", URL: newURL, APIKey: "sk-ant-new-b"},
	})
	if err != nil {
		t.Fatal(err)
	}
	after := *e.tr.targets.Load()
	if after["a"].rt != before["a"].rt || after["b"].rt == before["b"].rt || after["a"].name != "renamed" {
		t.Fatal("a's transport should be kept, b's replaced")
	}
	e.message(Route{Model: "m"})
	if got := e.fakes["a"].Last().Header.Get("x-api-key"); got != "sk-ant-new-a" {
		t.Fatalf("a's key %q", got)
	}
	// b is reached at its new URL.
	e.pool.Observe(pool.Observation{Upstream: "a", Status: 529})
	if info := e.message(Route{Model: "m"}); info.UpstreamID != "b" || f.Count() != 1 {
		t.Fatalf("b: %+v, new b saw %d", info, f.Count())
	}
	for _, bad := range [][]ports.UpstreamEndpoint{
		{{ID: "", URL: newURL, APIKey: "k"}},
		{{ID: "x", URL: "ftp://host", APIKey: "k"}},
		{{ID: "x", URL: newURL, APIKey: "k"}, {ID: "x", URL: newURL, APIKey: "k"}},
	} {
		if err := e.tr.Apply(bad); err == nil {
			t.Fatalf("Apply(%+v) accepted", bad)
		}
	}
	if (*e.tr.targets.Load())["b"] == nil {
		t.Fatal("a refused Apply changed the endpoints")
	}
	// An endpoint whose key could not be opened is accepted, and never
	// picked: the request goes to the next upstream.
	if err := e.tr.Apply([]ports.UpstreamEndpoint{{ID: "a", URL: newURL}, {ID: "b", Name: "b", URL: newURL, APIKey: "sk-ant-new-b"}}); err != nil {
		t.Fatal(err)
	}
	if err := e.tr.Enable("a"); err != nil || e.health("a", "").State != pool.Healthy {
		t.Fatalf("enable a: %v", err)
	}
	if info := e.message(Route{Model: "m"}); info.UpstreamID != "b" || info.Attempts != 1 {
		t.Fatalf("keyless a: %+v", info)
	}

	ok := e.tr.Test(context.Background(), ports.UpstreamEndpoint{ID: "t", URL: newURL, APIKey: "sk-ant-test"})
	if !ok.OK || ok.Status != 200 || f.Last().Path != "/v1/models" || f.Last().Header.Get("x-api-key") != "sk-ant-test" {
		t.Fatalf("test: %+v", ok)
	}
	f.Script(fakeanthropic.Step{Path: "/v1/models", Status: 401,
		Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key sk-ant-test"}}`})
	refused := e.tr.Test(context.Background(), ports.UpstreamEndpoint{ID: "t", URL: newURL, APIKey: "sk-ant-test"})
	if refused.OK || refused.Status != 401 || strings.Contains(refused.Message, "sk-ant-test") || !strings.Contains(refused.Message, "invalid x-api-key [redacted]") {
		t.Fatalf("refused: %+v", refused)
	}
	dead := e.tr.Test(context.Background(), ports.UpstreamEndpoint{ID: "t", URL: deadURL(t), APIKey: "sk-ant-test"})
	if dead.OK || dead.Status != 0 || dead.Message != "could not reach the upstream: connection failed" {
		t.Fatalf("dead: %+v", dead)
	}
	if bad := e.tr.Test(context.Background(), ports.UpstreamEndpoint{ID: "t", URL: "no-scheme", APIKey: "k"}); bad.OK || bad.Message == "" {
		t.Fatalf("bad url: %+v", bad)
	}
	// Testing changed no state.
	if h := e.health("b", ""); h.State != pool.Healthy {
		t.Fatalf("b: %+v", h)
	}
}

func TestSkipSummaryIsBounded(t *testing.T) {
	t.Parallel()
	info := &Info{}
	for i := range maxInfoSkips {
		info.Skips = append(info.Skips, pool.Skip{Upstream: "upstream-" + strconv.Itoa(i), Reason: pool.SkipModel, Model: strings.Repeat("é", 40)})
	}
	s := info.SkipSummary()
	if len(s) > maxSkipSummary+len("…") || !strings.HasSuffix(s, "…") || !utf8.ValidString(s) {
		t.Fatalf("%d bytes: %q", len(s), s)
	}
	if (&Info{}).SkipSummary() != "" {
		t.Fatal("no skips, some summary")
	}
}
