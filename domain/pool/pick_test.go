package pool_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain/pool"
)

func TestStickySessionStaysOnItsUpstream(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1), up("b", 0, 1), up("c", 0, 1))
	ps := pins{}
	first, _ := ps.pick(p, pool.PickInput{Session: "s1", Model: "claude-sonnet-4-5"})
	if first.Why != pool.WhyBalanced || !first.Pin || first.PinTTL != time.Hour {
		t.Fatalf("first request: %+v, want a balanced choice pinned for 1h", first)
	}
	for i := range 99 {
		c, skips := ps.pick(p, pool.PickInput{Session: "s1", Model: "claude-sonnet-4-5"})
		if c.Upstream != first.Upstream || c.Why != pool.WhyPinned || !c.Pin || skips != nil {
			t.Fatalf("request %d: %+v %v, want pinned to %s and renewed", i+2, c, skips, first.Upstream)
		}
	}
}

// TestNewSessionsSpreadByWeight: 2,000 new sessions over weights 5:3:2
// land within 4 percentage points of 50/30/20 %. One binomial standard
// deviation is at most 1.12 points here, so the bound is about 3.6σ:
// chance almost never fails it (the worst of 200 seeds was 2.9 points, and
// the draw is seeded anyway), while a real skew such as 4:4:2 is 10 points
// off.
func TestNewSessionsSpreadByWeight(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 5), up("b", 0, 3), up("c", 0, 2))
	ps := pins{}
	const n = 2000
	got := map[string]int{}
	for i := range n {
		c, _ := ps.pick(p, pool.PickInput{Session: fmt.Sprint("s", i)})
		got[c.Upstream]++
	}
	for id, want := range map[string]float64{"a": 0.5, "b": 0.3, "c": 0.2} {
		share := float64(got[id]) / n
		if math.Abs(share-want) > 0.04 {
			t.Errorf("%s took %.1f%% of new sessions, want %.0f%% ± 4", id, 100*share, 100*want)
		}
	}
}

func TestLeastLoadedPerUnitOfWeight(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 2), up("b", 0, 1))
	ra, _ := p.Acquire("a")
	rb, _ := p.Acquire("b")
	// a: 1 in flight per 2 units of weight; b: 1 per 1.
	for range 20 {
		mustChoose(t, p, pool.PickInput{}, "a")
	}
	ra2, _ := p.Acquire("a")
	ra3, _ := p.Acquire("a")
	// a: 3 per 2, b: 1 per 1.
	mustChoose(t, p, pool.PickInput{}, "b")
	for _, release := range []func(){ra, ra2, ra3, rb} {
		release()
	}
}

func TestPriorityTiers(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1), up("b", 1, 100))
	skips := mustChoose(t, p, pool.PickInput{}, "a")
	mustSkip(t, skips, "b", pool.SkipLowerTier)
	p.Observe(pool.Observation{Upstream: "a", Status: 401})
	skips = mustChoose(t, p, pool.PickInput{}, "b")
	mustSkip(t, skips, "a", pool.SkipDisabled)
}

func TestFailoverOrderRepinsTheSession(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1), up("b", 0, 1), up("c", 1, 1))
	ps := pins{}
	in := pool.PickInput{Session: "s", Model: "claude-opus-4-1"}
	first, _ := ps.pick(p, in)
	other := map[string]string{"a": "b", "b": "a"}[first.Upstream]

	in.Exclude = []string{first.Upstream}
	second, skips := ps.pick(p, in)
	if second.Upstream != other || second.Why != pool.WhyMoved || !second.Pin {
		t.Fatalf("failover: %+v, want %s, moved and re-pinned", second, other)
	}
	mustSkip(t, skips, first.Upstream, pool.SkipTried)
	if ps["s"] != other {
		t.Fatalf("pin = %q after failover, want %q", ps["s"], other)
	}

	in.Exclude = append(in.Exclude, other)
	third, _ := ps.pick(p, in)
	if third.Upstream != "c" {
		t.Fatalf("with tier 0 tried: %+v, want c", third)
	}
	in.Exclude = append(in.Exclude, "c")
	none, skips := ps.pick(p, in)
	if none.Upstream != "" || len(skips) != 3 {
		t.Fatalf("with all tried: %+v %v, want no upstream and three skips", none, skips)
	}
	if ps["s"] != "c" {
		t.Errorf("a request no upstream took moved the pin to %q", ps["s"])
	}
	// The next request starts over from its pin.
	in.Exclude = nil
	if c, _ := ps.pick(p, in); c.Upstream != "c" || c.Why != pool.WhyPinned {
		t.Errorf("next request: %+v, want pinned to c", c)
	}
}

// TestMaxConcurrencyUnderBurst: caps of 2 and 3 hold, first for a burst
// that holds every slot, then for 64 goroutines racing Pick and Acquire.
func TestMaxConcurrencyUnderBurst(t *testing.T) {
	t.Parallel()
	a, b := up("a", 0, 1), up("b", 0, 1)
	a.MaxConcurrency, b.MaxConcurrency = 2, 3
	p, _ := MustPool(t, a, b)

	var releases []func()
	held := map[string]int{}
	for range 5 {
		c, _ := p.Pick(pool.PickInput{})
		rel, ok := p.Acquire(c.Upstream)
		if !ok {
			t.Fatalf("Acquire(%s) refused below the cap", c.Upstream)
		}
		held[c.Upstream]++
		releases = append(releases, rel)
	}
	if held["a"] != 2 || held["b"] != 3 {
		t.Fatalf("slots held %v, want a:2 b:3", held)
	}
	c, skips := p.Pick(pool.PickInput{})
	if c.Upstream != "" {
		t.Fatalf("sixth request went to %s past the caps", c.Upstream)
	}
	mustSkip(t, skips, "a", pool.SkipBusy)
	mustSkip(t, skips, "b", pool.SkipBusy)
	if _, ok := p.Acquire("a"); ok {
		t.Fatal("Acquire granted a third slot on a")
	}
	releases[0]()
	releases[0]() // a second release is a no-op
	if st := p.Status(); st[0].InFlight+st[1].InFlight != 4 {
		t.Fatalf("in flight %d + %d after one release, want 4", st[0].InFlight, st[1].InFlight)
	}
	for _, r := range releases[1:] {
		r()
	}

	var inFlight [2]atomic.Int32
	var peak [2]atomic.Int32
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for range 50 {
				c, _ := p.Pick(pool.PickInput{Session: fmt.Sprint("g", g)})
				if c.Upstream == "" {
					continue
				}
				rel, ok := p.Acquire(c.Upstream)
				if !ok {
					continue // lost the race for the last slot: the caller would exclude it and pick again
				}
				i := map[string]int{"a": 0, "b": 1}[c.Upstream]
				n := inFlight[i].Add(1)
				for {
					old := peak[i].Load()
					if n <= old || peak[i].CompareAndSwap(old, n) {
						break
					}
				}
				time.Sleep(10 * time.Microsecond)
				inFlight[i].Add(-1)
				rel()
			}
		})
	}
	wg.Wait()
	if peak[0].Load() > 2 || peak[1].Load() > 3 {
		t.Fatalf("peak in flight a:%d b:%d, caps 2 and 3", peak[0].Load(), peak[1].Load())
	}
}

func lowOn(output int64, reset time.Time) pool.Limits {
	return pool.Limits{
		Requests:     pool.Budget{Limit: 50, Remaining: 40, Reset: reset},
		OutputTokens: pool.Budget{Limit: 100, Remaining: output, Reset: reset},
	}
}

func TestHeadroomSteersNewSessions(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	const model = "claude-sonnet-4-5"
	ps := pins{"old": "a"}
	reset := clock.Now().Add(30 * time.Second)
	p.Observe(pool.Observation{Upstream: "a", Model: model, Status: 200, Limits: lowOn(5, reset)})

	for i := range 200 {
		c, skips := ps.pick(p, pool.PickInput{Session: fmt.Sprint("new", i), Model: model})
		if c.Upstream != "b" {
			t.Fatalf("new session %d went to %s with 5%% of its output tokens left", i, c.Upstream)
		}
		s := mustSkip(t, skips, "a", pool.SkipLowHeadroom)
		if s.Detail != "output_tokens" || !s.Until.Equal(reset) {
			t.Fatalf("low-headroom skip %+v, want output_tokens until the reset", s)
		}
	}
	// A pinned session keeps its cache while there is any headroom left.
	if c, _ := ps.pick(p, pool.PickInput{Session: "old", Model: model}); c.Upstream != "a" || c.Why != pool.WhyPinned {
		t.Fatalf("pinned session on a low upstream: %+v, want it kept", c)
	}
	// Other models have limits of their own.
	if c, _ := p.Pick(pool.PickInput{Model: "claude-haiku-4-5", Exclude: []string{"b"}}); c.Upstream != "a" {
		t.Fatalf("haiku: %+v, want a (its sonnet limit says nothing of haiku)", c)
	}

	// Exhausted, the pinned session moves.
	p.Observe(pool.Observation{Upstream: "a", Model: model, Status: 200, Limits: lowOn(0, reset)})
	c, skips := ps.pick(p, pool.PickInput{Session: "old", Model: model})
	if c.Upstream != "b" || c.Why != pool.WhyMoved {
		t.Fatalf("pinned session on an exhausted upstream: %+v, want moved to b", c)
	}
	mustSkip(t, skips, "a", pool.SkipLowHeadroom)

	// Headroom steers, it never refuses: with both low, a request still goes.
	p.Observe(pool.Observation{Upstream: "b", Model: model, Status: 200, Limits: lowOn(3, reset)})
	if c, _ := p.Pick(pool.PickInput{Model: model}); c.Upstream != "b" {
		t.Fatalf("a exhausted, b low: %+v, want b", c)
	}
	p.Observe(pool.Observation{Upstream: "b", Model: model, Status: 200, Limits: lowOn(0, reset)})
	if c, _ := p.Pick(pool.PickInput{Model: model}); c.Upstream == "" {
		t.Fatal("both exhausted: no upstream, want one anyway (the upstream's 429 decides)")
	}

	// At the reset the readings lapse, with no new response needed.
	clock.Advance(30 * time.Second)
	seen := map[string]bool{}
	for i := range 50 {
		c, _ := ps.pick(p, pool.PickInput{Session: fmt.Sprint("later", i), Model: model})
		seen[c.Upstream] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("after the reset new sessions went to %v, want both", seen)
	}
}

func TestObjectAffinity(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("u1", 0, 1), up("u2", 1, 1))
	in := pool.PickInput{Session: "s", Pinned: "u1", Require: "u2"}
	c, _ := p.Pick(in)
	if c.Upstream != "u2" || c.Why != pool.WhyAffinity || c.Pin {
		t.Fatalf("batch on u2 while u1 is preferred: %+v, want u2 by affinity, no re-pin", c)
	}
	// Even cooling: no other upstream can serve the object.
	p.Observe(pool.Observation{Upstream: "u2", Status: 429, RetryAt: clock.Now().Add(time.Minute)})
	_, skips := p.Pick(pool.PickInput{Exclude: []string{"u1"}})
	mustSkip(t, skips, "u2", pool.SkipCooling)
	mustChoose(t, p, in, "u2")

	in.Exclude = []string{"u2"}
	c, skips = p.Pick(in)
	if c.Upstream != "" {
		t.Fatalf("affinity upstream already tried: %+v, want none (no failover elsewhere)", c)
	}
	mustSkip(t, skips, "u2", pool.SkipTried)

	p.Observe(pool.Observation{Upstream: "u2", Status: 403, Message: "permission denied"})
	in.Exclude = nil
	c, skips = p.Pick(in)
	if c.Upstream != "" {
		t.Fatalf("affinity upstream disabled: %+v, want none", c)
	}
	mustSkip(t, skips, "u2", pool.SkipDisabled)

	_, skips = p.Pick(pool.PickInput{Require: "gone"})
	mustSkip(t, skips, "gone", pool.SkipUnknown)
}

func TestSkipReasonsExplainTheChoice(t *testing.T) {
	t.Parallel()
	off := up("off", 0, 1)
	off.Enabled = false
	other := up("other-group", 0, 1)
	other.Group = "team-b"
	haiku := up("haiku-only", 0, 1)
	haiku.Models = []string{"claude-haiku-*"}
	p, clock := MustPool(t, off, other, haiku, up("cool", 0, 1), up("hot-model", 0, 1), up("dead", 0, 1), up("fallback", 1, 1))
	const model = "claude-sonnet-4-5"
	p.Observe(pool.Observation{Upstream: "cool", Status: 429, RetryAt: clock.Now().Add(2 * time.Second)})
	p.Observe(pool.Observation{Upstream: "hot-model", Model: model, Status: 529})
	p.Observe(pool.Observation{Upstream: "dead", Status: 401, Message: "invalid x-api-key"})

	c, skips := p.Pick(pool.PickInput{Model: model, Session: "s", Pinned: "removed"})
	if c.Upstream != "fallback" || c.Why != pool.WhyMoved {
		t.Fatalf("choice %+v, want fallback (moved from a removed pin)", c)
	}
	want := map[string]string{
		"removed":     "removed: not in the pool",
		"off":         "off: turned off by an operator",
		"other-group": "other-group: not in the key's group",
		"haiku-only":  "haiku-only: does not serve model claude-sonnet-4-5",
		"cool":        "cool: cooling until 2027-01-04T12:00:02.000Z (rate_limited 429)",
		"hot-model":   "hot-model: model claude-sonnet-4-5 cooling until 2027-01-04T12:00:30.000Z (overloaded 529)",
		"dead":        "dead: disabled: 401 invalid x-api-key",
	}
	if len(skips) != len(want) {
		t.Errorf("skips %v, want %d", skips, len(want))
	}
	for _, s := range skips {
		if w := want[s.Upstream]; s.String() != w {
			t.Errorf("skip %q, want %q", s.String(), w)
		}
	}
}

func TestNoUpstreamSaysWhenToRetry(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Status: 429, RetryAt: clock.Now().Add(5 * time.Second)})
	p.Observe(pool.Observation{Upstream: "b", Status: 429, RetryAt: clock.Now().Add(3 * time.Second)})
	c, skips := p.Pick(pool.PickInput{})
	if c.Upstream != "" || !c.RetryAt.Equal(clock.Now().Add(3*time.Second)) {
		t.Fatalf("every upstream cooling: %+v, want none and retry in 3s", c)
	}
	for _, s := range skips {
		if !strings.Contains(s.String(), "cooling until") {
			t.Errorf("skip %q", s)
		}
	}
}

// The pool sits on every request's path: Pick must stay a small fraction
// of a request's CPU.
func BenchmarkPick(b *testing.B) {
	p, _ := MustPool(b, up("a", 0, 3), up("b", 0, 2), up("c", 1, 1))
	b.Run("pinned", func(b *testing.B) {
		in := pool.PickInput{Model: "claude-sonnet-4-5", Session: "s", Pinned: "b"}
		b.ReportAllocs()
		for b.Loop() {
			p.Pick(in)
		}
	})
	b.Run("balanced", func(b *testing.B) {
		in := pool.PickInput{Model: "claude-sonnet-4-5", Session: "s"}
		b.ReportAllocs()
		for b.Loop() {
			p.Pick(in)
		}
	})
}

// TestLastResortWhenEveryCoolingIsGuessed: with every upstream cooling on
// the relay's own backoff (a 529 without retry-after), the request goes to
// the one whose cooling ends first rather than being refused; a time the
// upstream stated is kept.
func TestLastResortWhenEveryCoolingIsGuessed(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Model: "m", Status: 529})
	clock.Advance(time.Second)
	p.Observe(pool.Observation{Upstream: "b", Model: "m", Status: 529})
	c, _ := p.Pick(pool.PickInput{Model: "m"})
	if c.Upstream != "a" || c.Why != pool.WhyLastResort {
		t.Fatalf("every cooling guessed: %+v, want a (its cooling ends first) as a last resort", c)
	}
	// A single upstream keeps serving through its guessed cooling.
	one, _ := MustPool(t, up("only", 0, 1))
	one.Observe(pool.Observation{Upstream: "only", Model: "m", Status: 529})
	if c, _ := one.Pick(pool.PickInput{Model: "m"}); c.Upstream != "only" || c.Why != pool.WhyLastResort {
		t.Fatalf("single upstream after a 529: %+v", c)
	}
	// One stated time among them keeps the refusal: that upstream said
	// when to come back.
	p2, clock2 := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	p2.Observe(pool.Observation{Upstream: "a", Model: "m", Status: 429, RetryAt: clock2.Now().Add(time.Minute)})
	p2.Observe(pool.Observation{Upstream: "b", Model: "m", Status: 529})
	if c, _ := p2.Pick(pool.PickInput{Model: "m"}); c.Upstream != "" {
		t.Fatalf("a stated cooling among them: %+v, want a refusal", c)
	}
}
