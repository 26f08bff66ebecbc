// Package ratelimittest is the contract suite for ports.RateLimiter and
// ports.ConcurrencyLimiter adapters. The suites use real time (the Redis
// adapters take time from the server), with short periods, and assert
// bounds that hold however slowly the test machine runs.
package ratelimittest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Run runs the rate-limiter suite. Each newLimiter call must return a
// limiter with no history for the keys the test uses.
func Run(t *testing.T, newLimiter func(tb testing.TB) ports.RateLimiter) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, l ports.RateLimiter)
	}{
		{"BurstThenRefuse", testBurst},
		{"BurstWithUnevenInterval", testUnevenBurst},
		{"RetryAfterIsSensible", testRetryAfter},
		{"NoDoubleBurstAtEdges", testNoDoubleBurst},
		{"PeekDoesNotConsume", testPeek},
		{"ChargeIntoDebt", testCharge},
		{"CostAboveOne", testCost},
		{"KeysIndependent", testKeysIndependent},
		{"ConcurrentAllowExact", testConcurrentAllow},
		{"RejectsInvalidLimit", testInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newLimiter(t))
		})
	}
}

func mustAllow(t *testing.T, l ports.RateLimiter, key string, lim domain.Limit, cost int64) domain.RateDecision {
	t.Helper()
	d, err := l.Allow(ctxT(t), key, lim, cost)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	return d
}

func mustPeek(t *testing.T, l ports.RateLimiter, key string, lim domain.Limit) domain.RateDecision {
	t.Helper()
	d, err := l.Peek(ctxT(t), key, lim)
	if err != nil {
		t.Fatalf("Peek: %v", err)
	}
	return d
}

func testBurst(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 10, Period: 100 * time.Second} // one unit per 10s
	interval := lim.Period / 10
	for i := range 10 {
		d := mustAllow(t, l, "k", lim, 1)
		if !d.Allowed || d.Limit != 10 || d.Remaining != int64(9-i) || d.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i, d, 9-i)
		}
		// The budget is full again once every unit taken has drained.
		if want := time.Duration(i+1) * interval; d.ResetAfter > want || d.ResetAfter <= want-interval {
			t.Fatalf("request %d: ResetAfter %v, want about %v", i, d.ResetAfter, want)
		}
	}
	d := mustAllow(t, l, "k", lim, 1)
	if d.Allowed || d.Remaining != 0 || d.Limit != 10 {
		t.Fatalf("11th request: %+v, want refused with 0 remaining", d)
	}
	// One unit drains per interval; little time has passed since the burst.
	if d.RetryAfter <= 0 || d.RetryAfter > interval {
		t.Fatalf("RetryAfter %v, want in (0, %v]", d.RetryAfter, interval)
	}
	if d.ResetAfter <= lim.Period-interval || d.ResetAfter > lim.Period {
		t.Fatalf("ResetAfter %v, want about %v", d.ResetAfter, lim.Period)
	}
}

// testUnevenBurst: when Period/Count is not a whole number of time units,
// rounding must neither shrink the burst nor let one more through.
func testUnevenBurst(t *testing.T, l ports.RateLimiter) {
	for i, lim := range []domain.Limit{
		{Count: 3, Period: 2*time.Hour + time.Microsecond},
		{Count: 7, Period: time.Minute},
		{Count: 999, Period: 7 * time.Hour},
	} {
		key := fmt.Sprintf("k%d", i)
		for j := range lim.Count {
			if d := mustAllow(t, l, key, lim, 1); !d.Allowed {
				t.Fatalf("%+v: request %d of the burst refused: %+v", lim, j, d)
			}
		}
		if d := mustAllow(t, l, key, lim, 1); d.Allowed {
			t.Fatalf("%+v: request %d allowed: %+v", lim, lim.Count+1, d)
		}
	}
}

func testRetryAfter(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 5, Period: 500 * time.Millisecond} // one per 100ms
	// Take until refused: on a slow machine the budget refills meanwhile.
	var d domain.RateDecision
	for range 100 {
		if d = mustAllow(t, l, "k", lim, 1); !d.Allowed {
			break
		}
	}
	if d.Allowed {
		t.Fatal("never refused")
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 100*time.Millisecond {
		t.Fatalf("RetryAfter %v, want in (0, 100ms]", d.RetryAfter)
	}
	// Waiting as told must be enough.
	time.Sleep(d.RetryAfter + 5*time.Millisecond)
	if d := mustAllow(t, l, "k", lim, 1); !d.Allowed {
		t.Fatalf("refused after waiting RetryAfter: %+v", d)
	}
}

// testNoDoubleBurst hammers a key for over a period after its full burst. A
// fixed window admits a second full burst at its edge; GCRA and sliding
// windows admit at most Count + d/interval (+1 for rounding) in any span d.
// Each decision happened between the call's start and return, so the span
// between decision i and j is at most end[j]-start[i].
func testNoDoubleBurst(t *testing.T, l ports.RateLimiter) {
	const count = 20
	period := time.Second
	interval := period / count
	lim := domain.Limit{Count: count, Period: period}
	var starts, ends []time.Time
	stop := time.Now().Add(period + period/2)
	for time.Now().Before(stop) {
		s := time.Now()
		d := mustAllow(t, l, "k", lim, 1)
		if d.Allowed {
			starts = append(starts, s)
			ends = append(ends, time.Now())
		} else if d.RetryAfter <= 0 {
			t.Fatalf("refused with RetryAfter %v", d.RetryAfter)
		}
	}
	if len(starts) < count {
		t.Fatalf("only %d admitted in 1.5 periods; the burst alone is %d", len(starts), count)
	}
	for i := range starts {
		for j := i; j < len(starts); j++ {
			span := ends[j].Sub(starts[i])
			bound := count + int(span/interval) + 1
			if n := j - i + 1; n > bound {
				t.Fatalf("%d admitted within %v, bound is %d: a burst at a window edge", n, span, bound)
			}
		}
	}
	// Right after the burst, the second period's budget is not available at once.
	if len(starts) > count {
		if gap := ends[count].Sub(starts[0]); gap < interval/2 {
			t.Fatalf("request %d admitted %v after the burst began; want about one interval (%v)", count+1, gap, interval)
		}
	}
}

func testPeek(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 3, Period: time.Minute}
	for range 5 {
		if d := mustPeek(t, l, "k", lim); !d.Allowed || d.Remaining != 3 || d.ResetAfter != 0 || d.Limit != 3 {
			t.Fatalf("Peek on a fresh key: %+v", d)
		}
	}
	mustAllow(t, l, "k", lim, 2)
	if d := mustPeek(t, l, "k", lim); !d.Allowed || d.Remaining != 1 || d.ResetAfter <= 0 {
		t.Fatalf("Peek after taking 2 of 3: %+v", d)
	}
	mustAllow(t, l, "k", lim, 1)
	d := mustPeek(t, l, "k", lim)
	if d.Allowed || d.Remaining != 0 || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Second {
		t.Fatalf("Peek on an empty budget: %+v, want refused, retry within one interval", d)
	}
}

func testCharge(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 10, Period: 2 * time.Second} // one per 200ms
	start := time.Now()
	if err := l.Charge(ctxT(t), "k", lim, 15); err != nil {
		t.Fatalf("Charge: %v", err)
	}
	// 15 units charged against a budget of 10: 5 in debt, plus one more for
	// the next request, is 1.2s of draining.
	d := mustAllow(t, l, "k", lim, 1)
	elapsed := time.Since(start)
	if d.Allowed || d.Remaining != 0 {
		t.Fatalf("Allow after charging past the limit: %+v, want refused", d)
	}
	if d.RetryAfter < 1200*time.Millisecond-elapsed || d.RetryAfter > 1200*time.Millisecond {
		t.Fatalf("RetryAfter %v, want 1.2s less at most %v elapsed", d.RetryAfter, elapsed)
	}
	if d.ResetAfter < 3*time.Second-elapsed || d.ResetAfter > 3*time.Second {
		t.Fatalf("ResetAfter %v, want 3s less at most %v elapsed", d.ResetAfter, elapsed)
	}
	if p := mustPeek(t, l, "k", lim); p.Allowed {
		t.Fatalf("Peek while in debt: %+v", p)
	}
	time.Sleep(d.RetryAfter + 10*time.Millisecond)
	if d := mustAllow(t, l, "k", lim, 1); !d.Allowed {
		t.Fatalf("refused after the debt drained: %+v", d)
	}
	// Charging nothing is a no-op.
	if err := l.Charge(ctxT(t), "other", lim, 0); err != nil {
		t.Fatalf("Charge 0: %v", err)
	}
	if p := mustPeek(t, l, "other", lim); p.Remaining != 10 {
		t.Fatalf("Charge 0 took budget: %+v", p)
	}
}

func testCost(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 1000, Period: time.Hour}
	if d := mustAllow(t, l, "k", lim, 400); !d.Allowed || d.Remaining != 600 {
		t.Fatalf("Allow 400 of 1000: %+v", d)
	}
	if d := mustAllow(t, l, "k", lim, 601); d.Allowed || d.Remaining != 600 || d.RetryAfter <= 0 {
		t.Fatalf("Allow 601 with 600 left: %+v, want refused with 600 remaining", d)
	}
	if d := mustAllow(t, l, "k", lim, 600); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("Allow 600 with 600 left: %+v", d)
	}
	// More than the whole budget can never pass; it must still say when to retry.
	if d := mustAllow(t, l, "big", lim, 1001); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("Allow above the limit: %+v", d)
	}
	if d := mustPeek(t, l, "big", lim); d.Remaining != 1000 {
		t.Fatalf("a refused Allow took budget: %+v", d)
	}
}

func testKeysIndependent(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 1, Period: time.Hour}
	mustAllow(t, l, "a", lim, 1)
	if d := mustAllow(t, l, "a", lim, 1); d.Allowed {
		t.Fatalf("second request on a: %+v", d)
	}
	if d := mustAllow(t, l, "b", lim, 1); !d.Allowed {
		t.Fatalf("first request on b refused: %+v", d)
	}
}

func testConcurrentAllow(t *testing.T, l ports.RateLimiter) {
	lim := domain.Limit{Count: 50, Period: time.Hour} // nothing refills during the test
	var (
		wg      sync.WaitGroup
		allowed atomic.Int64
		failed  atomic.Value
		start   = make(chan struct{})
	)
	for range 200 {
		wg.Go(func() {
			<-start
			d, err := l.Allow(context.Background(), "k", lim, 1)
			if err != nil {
				failed.Store(err)
				return
			}
			if d.Allowed {
				allowed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("Allow: %v", err)
	}
	if n := allowed.Load(); n != 50 {
		t.Fatalf("%d of 200 concurrent requests allowed, want exactly 50", n)
	}
}

func testInvalid(t *testing.T, l ports.RateLimiter) {
	for _, lim := range []domain.Limit{{Count: 0, Period: time.Second}, {Count: 1}} {
		if _, err := l.Allow(ctxT(t), "k", lim, 1); domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("Allow with %+v: err = %v, want kind invalid", lim, err)
		}
	}
	if _, err := l.Allow(ctxT(t), "k", domain.Limit{Count: 1, Period: time.Second}, -1); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("Allow with negative cost: err = %v, want kind invalid", err)
	}
}

// RunConcurrency runs the concurrency-limiter suite. Each newLimiter call
// must return a limiter with no slots held for the keys the test uses.
func RunConcurrency(t *testing.T, newLimiter func(tb testing.TB) ports.ConcurrencyLimiter) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, l ports.ConcurrencyLimiter)
	}{
		{"CapAndRelease", testCap},
		{"ReleaseIdempotent", testReleaseTwice},
		{"CapHonouredUnderContention", testContention},
		{"LeaseExpires", testSlotLease},
		{"LateReleaseFreesNothingElse", testLateRelease},
		{"RejectsInvalid", testConcurrencyInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newLimiter(t))
		})
	}
}

func mustAcquire(t *testing.T, l ports.ConcurrencyLimiter, key string, maxSlots int, lease time.Duration) (func(), bool) {
	t.Helper()
	release, ok, err := l.Acquire(ctxT(t), key, maxSlots, lease)
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if ok == (release == nil) {
		t.Fatalf("Acquire returned ok=%v with release func set=%v", ok, release != nil)
	}
	return release, ok
}

func wantInFlight(t *testing.T, l ports.ConcurrencyLimiter, key string, want int) {
	t.Helper()
	n, err := l.InFlight(ctxT(t), key)
	if err != nil {
		t.Fatalf("InFlight: %v", err)
	}
	if n != want {
		t.Fatalf("InFlight(%s) = %d, want %d", key, n, want)
	}
}

func testCap(t *testing.T, l ports.ConcurrencyLimiter) {
	wantInFlight(t, l, "k", 0)
	var releases []func()
	for i := range 3 {
		r, ok := mustAcquire(t, l, "k", 3, time.Minute)
		if !ok {
			t.Fatalf("slot %d refused under a cap of 3", i)
		}
		releases = append(releases, r)
	}
	wantInFlight(t, l, "k", 3)
	if _, ok := mustAcquire(t, l, "k", 3, time.Minute); ok {
		t.Fatal("4th slot granted under a cap of 3")
	}
	if _, ok := mustAcquire(t, l, "other", 3, time.Minute); !ok {
		t.Fatal("a full key blocked another key")
	}
	releases[1]()
	wantInFlight(t, l, "k", 2)
	r, ok := mustAcquire(t, l, "k", 3, time.Minute)
	if !ok {
		t.Fatal("slot refused after a release")
	}
	r()
	releases[0]()
	releases[2]()
	wantInFlight(t, l, "k", 0)
}

func testReleaseTwice(t *testing.T, l ports.ConcurrencyLimiter) {
	a, _ := mustAcquire(t, l, "k", 2, time.Minute)
	mustAcquire(t, l, "k", 2, time.Minute)
	a()
	a()
	wantInFlight(t, l, "k", 1)
	mustAcquire(t, l, "k", 2, time.Minute)
	if _, ok := mustAcquire(t, l, "k", 2, time.Minute); ok {
		t.Fatal("a double release freed someone else's slot")
	}
}

func testContention(t *testing.T, l ports.ConcurrencyLimiter) {
	const maxSlots = 4
	var (
		wg       sync.WaitGroup
		inFlight atomic.Int64
		peak     atomic.Int64
		granted  atomic.Int64
		failed   atomic.Value
		start    = make(chan struct{})
	)
	for range 40 {
		wg.Go(func() {
			<-start
			for range 25 {
				release, ok, err := l.Acquire(context.Background(), "k", maxSlots, time.Minute)
				if err != nil {
					failed.Store(err)
					return
				}
				if !ok {
					continue
				}
				granted.Add(1)
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(100 * time.Microsecond)
				inFlight.Add(-1)
				release()
			}
		})
	}
	close(start)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if p := peak.Load(); p > maxSlots {
		t.Fatalf("%d slots held at once under a cap of %d", p, maxSlots)
	}
	if granted.Load() == 0 {
		t.Fatal("no slot was ever granted")
	}
	wantInFlight(t, l, "k", 0)
}

func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func inFlight(t *testing.T, l ports.ConcurrencyLimiter, key string) int {
	t.Helper()
	n, err := l.InFlight(ctxT(t), key)
	if err != nil {
		t.Fatalf("InFlight: %v", err)
	}
	return n
}

func testSlotLease(t *testing.T, l ports.ConcurrencyLimiter) {
	const short = 300 * time.Millisecond
	// Two requests leak their slots (a crashed replica); a long one holds on.
	start := time.Now()
	mustAcquire(t, l, "k", 3, short)
	mustAcquire(t, l, "k", 3, short)
	mustAcquire(t, l, "k", 3, time.Minute)
	_, ok := mustAcquire(t, l, "k", 3, time.Minute)
	if ok && time.Since(start) < short {
		t.Fatal("slot granted over the cap")
	}
	want := 1
	if ok {
		want = 2 // the machine stalled past the short leases
	}
	eventually(t, 10*time.Second, "slot lease expiry", func() bool { return inFlight(t, l, "k") == want })
	for i := range 3 - want {
		if _, ok := mustAcquire(t, l, "k", 3, time.Minute); !ok {
			t.Fatalf("slot %d refused after the leaked ones expired", i)
		}
	}
	if _, ok := mustAcquire(t, l, "k", 3, time.Minute); ok {
		t.Fatal("slot granted over the cap after the leases expired")
	}
}

func testLateRelease(t *testing.T, l ports.ConcurrencyLimiter) {
	late, _ := mustAcquire(t, l, "k", 1, 100*time.Millisecond)
	var holder func()
	eventually(t, 10*time.Second, "slot lease expiry", func() bool {
		r, ok := mustAcquire(t, l, "k", 1, time.Minute)
		holder = r
		return ok
	})
	late() // released after its lease, while another request holds the slot
	wantInFlight(t, l, "k", 1)
	holder()
	wantInFlight(t, l, "k", 0)
}

func testConcurrencyInvalid(t *testing.T, l ports.ConcurrencyLimiter) {
	for _, c := range []struct {
		max   int
		lease time.Duration
	}{{0, time.Minute}, {1, 0}} {
		if _, _, err := l.Acquire(ctxT(t), "k", c.max, c.lease); domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("Acquire(max %d, lease %v): err = %v, want kind invalid", c.max, c.lease, err)
		}
	}
}
