package memory_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/ledgertest"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/ratelimittest"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

func TestLedgerContract(t *testing.T) {
	t.Parallel()
	ledgertest.Run(t, func(tb testing.TB) ports.QuotaLedger {
		l := memory.NewLedger(memory.WithSweepInterval(50 * time.Millisecond))
		tb.Cleanup(func() { l.Close() })
		return l
	})
}

func TestRateLimiterContract(t *testing.T) {
	t.Parallel()
	ratelimittest.Run(t, func(tb testing.TB) ports.RateLimiter {
		return memory.NewRateLimiter()
	})
}

func TestConcurrencyContract(t *testing.T) {
	t.Parallel()
	ratelimittest.RunConcurrency(t, func(tb testing.TB) ports.ConcurrencyLimiter {
		return memory.NewConcurrencyLimiter()
	})
}

// fakeClock is a ports.Clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var ctx = context.Background()

func TestRateLimiterWindowEdge(t *testing.T) {
	clock := newFakeClock()
	l := memory.NewRateLimiter(memory.WithClock(clock))
	lim := domain.Limit{Count: 60, Period: time.Minute} // one per second
	// 59.9s into an idle minute, the whole budget goes at once...
	clock.Advance(59900 * time.Millisecond)
	for i := range 60 {
		if d, _ := l.Allow(ctx, "k", lim, 1); !d.Allowed {
			t.Fatalf("burst request %d refused: %+v", i, d)
		}
	}
	// ...and just past where a fixed window would roll over, nothing more.
	clock.Advance(200 * time.Millisecond)
	d, _ := l.Allow(ctx, "k", lim, 1)
	if d.Allowed {
		t.Fatal("second burst admitted at the window edge")
	}
	if d.RetryAfter != 800*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want 800ms", d.RetryAfter)
	}
	// Afterwards the key gets exactly one request per second.
	clock.Advance(800 * time.Millisecond)
	if d, _ := l.Allow(ctx, "k", lim, 1); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after one interval: %+v, want allowed, 0 remaining", d)
	}
	if d, _ := l.Allow(ctx, "k", lim, 1); d.Allowed || d.RetryAfter != time.Second {
		t.Fatalf("right after: %+v, want refused, retry in 1s", d)
	}
	// A full idle period refills everything, never more.
	clock.Advance(time.Hour)
	if d, _ := l.Peek(ctx, "k", lim); d.Remaining != 60 || d.ResetAfter != 0 {
		t.Fatalf("after idling: %+v", d)
	}
}

func TestRateLimiterDecisionFields(t *testing.T) {
	clock := newFakeClock()
	l := memory.NewRateLimiter(memory.WithClock(clock))
	lim := domain.Limit{Count: 4, Period: 4 * time.Second}
	d, _ := l.Allow(ctx, "k", lim, 3)
	want := domain.RateDecision{Allowed: true, Limit: 4, Remaining: 1, ResetAfter: 3 * time.Second}
	if d != want {
		t.Fatalf("Allow 3 of 4: %+v, want %+v", d, want)
	}
	clock.Advance(500 * time.Millisecond)
	d, _ = l.Allow(ctx, "k", lim, 2)
	want = domain.RateDecision{Limit: 4, Remaining: 1, ResetAfter: 2500 * time.Millisecond, RetryAfter: 500 * time.Millisecond}
	if d != want {
		t.Fatalf("Allow 2 with 1.5 left: %+v, want %+v", d, want)
	}
	if err := l.Charge(ctx, "k", lim, 10); err != nil {
		t.Fatal(err)
	}
	d, _ = l.Peek(ctx, "k", lim)
	want = domain.RateDecision{Limit: 4, ResetAfter: 12500 * time.Millisecond, RetryAfter: 9500 * time.Millisecond}
	if d != want {
		t.Fatalf("Peek in debt: %+v, want %+v", d, want)
	}
}

func TestLedgerLeaseAndRetentionWithFakeClock(t *testing.T) {
	clock := newFakeClock()
	l := memory.NewLedger(memory.WithClock(clock), memory.WithSettleRetention(time.Minute))
	key := uuid.New()
	if _, err := l.Reserve(ctx, key, "a", 80, 100, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, key, "b", 10, 100, 0, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second) // "a" expires exactly now
	if s, _ := l.State(ctx, key, 0); s != (domain.QuotaState{Reserved: 10}) {
		t.Fatalf("after a's lease: %+v", s)
	}
	if err := l.Settle(ctx, key, "b", 5); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "b", 5); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.State(ctx, key, 0); s != (domain.QuotaState{Used: 5}) {
		t.Fatalf("after settling b twice: %+v", s)
	}
	// Past the retention the id is forgotten, and a repeat counts again: the
	// documented bound of idempotency.
	clock.Advance(time.Minute)
	if err := l.Settle(ctx, key, "b", 5); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.State(ctx, key, 0); s.Used != 10 {
		t.Fatalf("after retention: %+v", s)
	}
}

func TestLedgerSweepDropsIdleReservations(t *testing.T) {
	clock := newFakeClock()
	l := memory.NewLedger(memory.WithClock(clock))
	key := uuid.New()
	if _, err := l.Reserve(ctx, key, "a", 50, 100, 0, time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Second)
	l.Sweep()
	if s, _ := l.State(ctx, key, 0); s != (domain.QuotaState{}) {
		t.Fatalf("after sweep: %+v", s)
	}
}

func TestConcurrencyLeaseWithFakeClock(t *testing.T) {
	clock := newFakeClock()
	c := memory.NewConcurrencyLimiter(memory.WithClock(clock))
	if _, ok, _ := c.Acquire(ctx, "k", 1, time.Second); !ok {
		t.Fatal("first slot refused")
	}
	if _, ok, _ := c.Acquire(ctx, "k", 1, time.Second); ok {
		t.Fatal("second slot granted under a cap of 1")
	}
	clock.Advance(time.Second)
	if n, _ := c.InFlight(ctx, "k"); n != 0 {
		t.Fatalf("InFlight after the lease = %d", n)
	}
	c.Sweep()
	if _, ok, _ := c.Acquire(ctx, "k", 1, time.Second); !ok {
		t.Fatal("slot refused after the lease expired")
	}
}
