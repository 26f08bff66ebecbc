package pool_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain/pool"
)

const (
	sonnet = "claude-sonnet-4-5"
	haiku  = "claude-haiku-4-5"
)

// TestRetryAfterCoolsThenProbeRestores: a 429 with retry-after: 2 cools
// for 2 s; then exactly one probe is due, and its success brings the
// upstream back with no operator.
func TestRetryAfterCoolsThenProbeRestores(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 1, 1))
	ps := pins{"s": "a"}
	start := clock.Now()

	ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: start.Add(2 * time.Second)}),
		pool.Healthy, pool.Cooling, pool.CauseRateLimited)
	if !ev.Until.Equal(start.Add(2*time.Second)) || ev.Model != sonnet {
		t.Fatalf("event %v, want %s cooling until +2s", ev, sonnet)
	}
	c, skips := ps.pick(p, pool.PickInput{Session: "s", Model: sonnet})
	if c.Upstream != "b" || c.Why != pool.WhyMoved {
		t.Fatalf("while a cools: %+v, want moved to b", c)
	}
	mustSkip(t, skips, "a", pool.SkipCooling)

	clock.Advance(2*time.Second - time.Millisecond)
	if probes, evs := p.Probes(); len(probes) != 0 || len(evs) != 0 {
		t.Fatalf("probes before the stated time: %v %v", probes, evs)
	}
	_, skips = p.Pick(pool.PickInput{Model: sonnet})
	mustSkip(t, skips, "a", pool.SkipCooling)

	clock.Advance(time.Millisecond)
	probes, evs := p.Probes()
	if len(probes) != 1 || probes[0] != (pool.Probe{Upstream: "a", Model: sonnet}) {
		t.Fatalf("probes at +2s: %v, want exactly one for a/%s", probes, sonnet)
	}
	mustEvent(t, evs, pool.Cooling, pool.Probing, pool.CauseCoolingEnded)
	if probes, _ := p.Probes(); len(probes) != 0 {
		t.Fatalf("a second probe was handed out: %v", probes)
	}
	_, skips = p.Pick(pool.PickInput{Model: sonnet})
	mustSkip(t, skips, "a", pool.SkipProbing)

	mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200, Probe: true}),
		pool.Probing, pool.Healthy, pool.CauseProbeOK)
	mustChoose(t, p, pool.PickInput{Model: sonnet}, "a")
	if st := p.Status()[0].Models[sonnet]; !st.LastProbeOK || !st.LastProbe.Equal(clock.Now()) {
		t.Errorf("model status %+v, want the successful probe recorded", st)
	}
	// The moved session stays where its cache now is.
	if c, _ := ps.pick(p, pool.PickInput{Session: "s", Model: sonnet}); c.Upstream != "b" {
		t.Errorf("moved session: %+v, want it to stay on b", c)
	}
}

// TestRateLimitCoolsOnlyThatModel: Anthropic limits are per model class,
// so a 429 for Sonnet leaves Haiku on the same key in use. A 429 for a
// request without a model cools the upstream.
func TestRateLimitCoolsOnlyThatModel(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 1, 1))
	p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: clock.Now().Add(time.Minute)})
	mustChoose(t, p, pool.PickInput{Model: haiku}, "a")
	mustChoose(t, p, pool.PickInput{Model: sonnet}, "b")

	p.Observe(pool.Observation{Upstream: "a", Status: 429, RetryAt: clock.Now().Add(time.Minute)})
	mustChoose(t, p, pool.PickInput{Model: haiku}, "b")
}

func TestCoolingLastsUntilTheStatedTime(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	now := clock.Now()
	for name, tc := range map[string]struct {
		o    pool.Observation
		want time.Duration
	}{
		"retry-after": {pool.Observation{Status: 429, RetryAt: now.Add(7 * time.Second),
			Limits: pool.Limits{OutputTokens: pool.Budget{Limit: 10, Remaining: 0, Reset: now.Add(40 * time.Second)}}}, 7 * time.Second},
		"reset of the limit that ran out": {pool.Observation{Status: 429, Limits: pool.Limits{
			Requests:     pool.Budget{Limit: 50, Remaining: 3, Reset: now.Add(time.Second)},
			InputTokens:  pool.Budget{Limit: 1000, Remaining: 0, Reset: now.Add(12 * time.Second)},
			OutputTokens: pool.Budget{Limit: 1000, Remaining: 0, Reset: now.Add(9 * time.Second)},
		}}, 12 * time.Second},
		"neither: the default":            {pool.Observation{Status: 429}, pool.DefaultCooldown},
		"529 with retry-after":            {pool.Observation{Status: 529, RetryAt: now.Add(4 * time.Second)}, 4 * time.Second},
		"a bogus far reset is capped":     {pool.Observation{Status: 429, RetryAt: now.Add(72 * time.Hour)}, pool.DefaultMaxCooldown},
		"a reset in the past: probe soon": {pool.Observation{Status: 429, RetryAt: now.Add(-time.Minute)}, 0},
	} {
		tc.o.Upstream, tc.o.Model = "a", name // a model of its own per case
		ev := mustEvent(t, p.Observe(tc.o), pool.Healthy, pool.Cooling, map[int]pool.Cause{429: pool.CauseRateLimited, 529: pool.CauseOverloaded}[tc.o.Status])
		if got := ev.Until.Sub(now); got != tc.want {
			t.Errorf("%s: cooling for %v, want %v", name, got, tc.want)
		}
	}
}

func TestFailuresWhileCoolingOnlyExtend(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	now := clock.Now()
	p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: now.Add(10 * time.Second)})
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: now.Add(5 * time.Second)}))
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200}))
	if until := p.Status()[0].Models[sonnet].Until; !until.Equal(now.Add(10 * time.Second)) {
		t.Fatalf("until %v: an earlier stated time or a success must not shorten the cooling", until)
	}
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: now.Add(20 * time.Second)}))
	if until := p.Status()[0].Models[sonnet].Until; !until.Equal(now.Add(20 * time.Second)) {
		t.Fatalf("until %v, want extended to the later stated time", until)
	}
}

// TestProbeFailureBacksOff: without a stated time each failed probe doubles
// the cooling up to the cap; a probe's success does not reset the backoff,
// a real success does.
func TestProbeFailureBacksOff(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 529}), pool.Healthy, pool.Cooling, pool.CauseOverloaded)
	wait := ev.Until.Sub(clock.Now())
	for _, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 10 * time.Minute, 10 * time.Minute} {
		if wait != want {
			t.Fatalf("cooling for %v, want %v", wait, want)
		}
		clock.Advance(wait)
		if probes, _ := p.Probes(); len(probes) != 1 {
			t.Fatalf("probes %v, want one", probes)
		}
		ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 529, Probe: true}),
			pool.Probing, pool.Cooling, pool.CauseProbeFailed)
		wait = ev.Until.Sub(clock.Now())
	}

	clock.Advance(wait)
	p.Probes()
	mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200, Probe: true}), pool.Probing, pool.Healthy, pool.CauseProbeOK)
	ev = mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 529}), pool.Healthy, pool.Cooling, pool.CauseOverloaded)
	if got := ev.Until.Sub(clock.Now()); got != pool.DefaultMaxCooldown {
		t.Fatalf("529 right after a probe's success cools %v, want the backoff kept (%v)", got, pool.DefaultMaxCooldown)
	}
	clock.Advance(pool.DefaultMaxCooldown)
	p.Probes()
	p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200, Probe: true})
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200}))
	ev = mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 529}), pool.Healthy, pool.Cooling, pool.CauseOverloaded)
	if got := ev.Until.Sub(clock.Now()); got != pool.DefaultCooldown {
		t.Fatalf("529 after a real success cools %v, want the default again", got)
	}
}

func TestLostProbeCountsAsFailed(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Status: 429, RetryAt: clock.Now().Add(time.Second)})
	clock.Advance(time.Second)
	if probes, _ := p.Probes(); len(probes) != 1 || probes[0].Model != "" {
		t.Fatalf("probes %v, want one for the upstream itself", probes)
	}
	clock.Advance(pool.DefaultProbeTimeout - time.Millisecond)
	if probes, evs := p.Probes(); len(probes)+len(evs) != 0 {
		t.Fatalf("before the probe timeout: %v %v", probes, evs)
	}
	clock.Advance(time.Millisecond)
	probes, evs := p.Probes()
	if len(probes) != 0 {
		t.Fatalf("a lost probe was replaced at once: %v", probes)
	}
	ev := mustEvent(t, evs, pool.Probing, pool.Cooling, pool.CauseProbeLost)
	clock.Advance(ev.Until.Sub(clock.Now()))
	if probes, _ := p.Probes(); len(probes) != 1 {
		t.Fatalf("after the backoff: %v, want a new probe", probes)
	}
	// The lost probe's answer, arriving late, is stale only if the state
	// moved on; here the new probe is out, so any probe answer decides.
	mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Status: 200, Probe: true}), pool.Probing, pool.Healthy, pool.CauseProbeOK)
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Status: 529, Probe: true}))
}

func TestRealSuccessWhileProbingHeals(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 529, RetryAt: clock.Now().Add(time.Second)})
	clock.Advance(time.Second)
	p.Probes()
	mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 200}), pool.Probing, pool.Healthy, pool.CauseSuccess)
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 500, Probe: true})) // the probe's late answer
}

// TestOverloadOnOneModelLeavesOthers: a 529 on model A cools A on that
// upstream; model B there stays in use, pinned sessions included.
func TestOverloadOnOneModelLeavesOthers(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("u1", 0, 1), up("u2", 1, 1))
	ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "u1", Model: sonnet, Status: 529}), pool.Healthy, pool.Cooling, pool.CauseOverloaded)
	if ev.Model != sonnet {
		t.Fatalf("event %v, want it scoped to %s", ev, sonnet)
	}
	skips := mustChoose(t, p, pool.PickInput{Model: sonnet, Session: "s", Pinned: "u1"}, "u2")
	if s := mustSkip(t, skips, "u1", pool.SkipCooling); s.Model != sonnet {
		t.Fatalf("skip %+v, want the model named", s)
	}
	c, _ := p.Pick(pool.PickInput{Model: haiku, Session: "s", Pinned: "u1"})
	if c.Upstream != "u1" || c.Why != pool.WhyPinned {
		t.Fatalf("model B pinned to u1: %+v, want it kept", c)
	}
	if st := p.Status()[0]; st.Health.State != pool.Healthy || st.Models[sonnet].State != pool.Cooling {
		t.Fatalf("status %+v, want u1 healthy with %s cooling", st, sonnet)
	}
}

func TestServerErrorBurst(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	fail := func(model string) []pool.Event {
		return p.Observe(pool.Observation{Upstream: "a", Model: model, Status: 500})
	}
	// Scattered among successes: never a burst.
	for range 10 {
		mustNoEvent(t, fail("scattered"))
		mustNoEvent(t, fail("scattered"))
		p.Observe(pool.Observation{Upstream: "a", Model: "scattered", Status: 200})
	}
	// Spread wider than the window: no burst.
	for range 5 {
		mustNoEvent(t, fail("slow"))
		clock.Advance(6 * time.Second)
	}
	// Three in a row within 10 s.
	mustNoEvent(t, fail(sonnet))
	clock.Advance(4 * time.Second)
	mustNoEvent(t, fail(sonnet))
	clock.Advance(4 * time.Second)
	ev := mustEvent(t, fail(sonnet), pool.Healthy, pool.Cooling, pool.CauseServerErrors)
	if ev.Model != sonnet || ev.Status != 500 {
		t.Fatalf("event %v", ev)
	}
	mustChoose(t, p, pool.PickInput{Model: haiku}, "a")
}

func TestNetworkErrorsCoolTheUpstream(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 1, 1))
	for i := range 2 {
		mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: fmt.Sprint("m", i)}))
	}
	ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet}), pool.Healthy, pool.Cooling, pool.CauseNetworkErrors)
	if ev.Model != "" {
		t.Fatalf("event %v, want the upstream itself cooled", ev)
	}
	mustChoose(t, p, pool.PickInput{Model: haiku}, "b")
	// While the upstream cools, its models' probes wait.
	p.Observe(pool.Observation{Upstream: "a", Model: haiku, Status: 529, RetryAt: clock.Now().Add(time.Second)})
	clock.Advance(pool.DefaultCooldown)
	probes, _ := p.Probes()
	if len(probes) != 1 || probes[0].Model != "" {
		t.Fatalf("probes %v, want only the upstream's", probes)
	}
	p.Observe(pool.Observation{Upstream: "a", Status: 200, Probe: true})
	if probes, _ := p.Probes(); len(probes) != 1 || probes[0].Model != haiku {
		t.Fatalf("probes %v, want the model's now", probes)
	}
}

// TestAuthFailureDisables: a 401 disables the upstream with its reason,
// traffic moves on, nothing brings it back but Enable.
func TestAuthFailureDisables(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	ps := pins{"s": "a"}
	ev := mustEvent(t, p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 401, Message: "invalid x-api-key"}),
		pool.Healthy, pool.Disabled, pool.CauseAuth)
	if ev.Model != "" || ev.Detail != "invalid x-api-key" || ev.Status != 401 {
		t.Fatalf("event %v, want the upstream disabled with the reason", ev)
	}
	for i := range 20 {
		c, skips := ps.pick(p, pool.PickInput{Session: fmt.Sprint("s", i%3), Model: haiku})
		if c.Upstream != "b" {
			t.Fatalf("request %d went to %s after its 401", i, c.Upstream)
		}
		if s, ok := findSkip(skips, "a"); ok && s.String() != "a: disabled: 401 invalid x-api-key" {
			t.Fatalf("skip %q", s)
		}
	}
	clock.Advance(24 * time.Hour)
	if probes, _ := p.Probes(); len(probes) != 0 {
		t.Fatalf("a disabled upstream was probed: %v", probes)
	}
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Status: 200}))
	mustNoEvent(t, p.Observe(pool.Observation{Upstream: "a", Status: 200, Probe: true}))
	if st := p.Status()[0].Health; st.State != pool.Disabled || st.Detail != "invalid x-api-key" {
		t.Fatalf("status %+v", st)
	}

	evs, err := p.Enable("a")
	if err != nil {
		t.Fatal(err)
	}
	mustEvent(t, evs, pool.Disabled, pool.Healthy, pool.CauseOperator)
	mustChoose(t, p, pool.PickInput{Exclude: []string{"b"}}, "a")
	if _, err := p.Enable("nope"); err == nil {
		t.Error("Enable of an unknown upstream succeeded")
	}
}

func TestDisableReasonIsBounded(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1))
	evs := p.Observe(pool.Observation{Upstream: "a", Status: 403, Message: strings.Repeat("é", 300)})
	if d := evs[0].Detail; len(d) > 200 || !strings.HasPrefix(d, "éé") || strings.ContainsRune(d, '\uFFFD') {
		t.Fatalf("detail of %d bytes, want at most 200 of whole runes", len(d))
	}
}

func TestModelStatesAreBounded(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1))
	for i := range 1000 {
		p.Observe(pool.Observation{Upstream: "a", Model: fmt.Sprint("bogus-", i), Status: 529})
		p.Observe(pool.Observation{Upstream: "a", Model: fmt.Sprint("read-", i), Status: 200,
			Limits: pool.Limits{Requests: pool.Budget{Limit: 10, Remaining: 9}}})
	}
	if n := len(p.Status()[0].Models); n > 64 {
		t.Fatalf("%d model states kept, want at most 64", n)
	}
}

func TestEventsLogWithTheirReason(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	ev := p.Observe(pool.Observation{Upstream: "a", Model: sonnet, Status: 429, RetryAt: clock.Now().Add(2 * time.Second)})[0]
	if want := "upstream a model claude-sonnet-4-5: healthy -> cooling (rate_limited 429) until 2027-01-04T12:00:02.000Z"; ev.String() != want {
		t.Errorf("String() = %q, want %q", ev.String(), want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("upstream state", "event", ev)
	for _, want := range []string{"event.upstream=a", "event.to=cooling", "event.cause=rate_limited", "event.model=claude-sonnet-4-5", "event.status=429"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log line %q lacks %q", buf.String(), want)
		}
	}
}
