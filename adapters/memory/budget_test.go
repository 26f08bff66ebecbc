package memory_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/budgettest"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

func TestBudgetLedgerContract(t *testing.T) {
	budgettest.Run(t, func(tb testing.TB) ports.BudgetLedger {
		l := memory.NewBudgetLedger(memory.WithSweepInterval(50 * time.Millisecond))
		tb.Cleanup(func() { l.Close() })
		return l
	})
}

// budgetClock is the ledger's clock, moved by hand (leases and idleness).
type budgetClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *budgetClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *budgetClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestBudgetLeaseAndRetentionWithFakeClock(t *testing.T) {
	clock := &budgetClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := memory.NewBudgetLedger(memory.WithClock(clock), memory.WithSettleRetention(time.Minute))
	key, at := uuid.New(), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	usd := budgettest.USD
	if err := l.Seed(ctx, key, budget.History{AsOf: at}); err != nil {
		t.Fatal(err)
	}
	bs := []budget.Budget{{Window: budget.Total, Limit: usd("1")}}
	if _, err := l.Reserve(ctx, key, "a", bs, usd("0.8"), at, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, key, "b", bs, usd("0.1"), at, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second) // "a" expires exactly now
	if s, _ := l.State(ctx, key, bs, at); s[0].Reserved != usd("0.1") {
		t.Fatalf("after a's lease: %+v", s[0])
	}
	for range 2 {
		if err := l.Settle(ctx, key, "b", usd("0.05"), at); err != nil {
			t.Fatal(err)
		}
	}
	if s, _ := l.State(ctx, key, bs, at); s[0].Used != usd("0.05") || s[0].Reserved != 0 {
		t.Fatalf("after settling b twice: %+v", s[0])
	}
	// Past the retention the id is forgotten, and a repeat counts again.
	clock.Advance(time.Minute)
	if err := l.Settle(ctx, key, "b", usd("0.05"), at); err != nil {
		t.Fatal(err)
	}
	if s, _ := l.State(ctx, key, bs, at); s[0].Used != usd("0.1") {
		t.Fatalf("after retention: %+v", s[0])
	}
}

// TestBudgetSweepForgetsIdleKeys: a key idle for DefaultBudgetIdleTTL is
// forgotten (and so seeded again), unless it still holds a reservation.
func TestBudgetSweepForgetsIdleKeys(t *testing.T) {
	clock := &budgetClock{now: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)}
	l := memory.NewBudgetLedger(memory.WithClock(clock))
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	idle, busy := uuid.New(), uuid.New()
	bs := []budget.Budget{{Window: budget.Day, Limit: budgettest.USD("1")}}
	for _, k := range []uuid.UUID{idle, busy} {
		if err := l.Seed(ctx, k, budget.History{AsOf: at}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Reserve(ctx, busy, "long", bs, 1, at, 48*time.Hour); err != nil {
		t.Fatal(err)
	}
	clock.Advance(memory.DefaultBudgetIdleTTL - time.Second)
	l.Sweep()
	if _, err := l.State(ctx, idle, bs, at); err != nil {
		t.Fatalf("a key idle for less than the TTL was forgotten: %v", err)
	}
	clock.Advance(memory.DefaultBudgetIdleTTL)
	l.Sweep()
	if _, err := l.State(ctx, idle, bs, at); !errors.Is(err, ports.ErrUnseeded) {
		t.Fatalf("idle key after the TTL: %v, want ErrUnseeded", err)
	}
	if s, err := l.State(ctx, busy, bs, at); err != nil || s[0].Reserved != 1 {
		t.Fatalf("a key holding a reservation was forgotten: %+v, %v", s, err)
	}
}

// TestBudgetOldBucketsPruned: buckets past their retention stop counting
// in any window, while the total keeps them.
func TestBudgetOldBucketsPruned(t *testing.T) {
	l := memory.NewBudgetLedger()
	key, at := uuid.New(), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if err := l.Seed(ctx, key, budget.History{AsOf: at}); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "a", 7, at); err != nil {
		t.Fatal(err)
	}
	later := at.Add(budget.CoarseRetention + 48*time.Hour)
	bs := []budget.Budget{{Window: budget.Total, Limit: 100}}
	// A settle far in the past of the latest time lands only in the total.
	if err := l.Settle(ctx, key, "b", 5, later); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "c", 3, at); err != nil {
		t.Fatal(err)
	}
	s, err := l.State(ctx, key, append(bs, budget.Budget{Window: budget.Month, Limit: 100}), at)
	if err != nil {
		t.Fatal(err)
	}
	if s[0].Used != 15 || s[1].Used != 0 {
		t.Fatalf("total %s, March %s; want 15 and 0 (March's buckets are past retention)", s[0].Used, s[1].Used)
	}
	if _, err := l.Reserve(ctx, key, "d", bs, -1, at, time.Minute); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("negative reservation: %v", err)
	}
}

// TestBudgetClockAheadCapped: a request time far past the ledger's clock
// moves retention only budget.MaxAhead past the clock.
func TestBudgetClockAheadCapped(t *testing.T) {
	clock := &budgetClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	l := memory.NewBudgetLedger(memory.WithClock(clock))
	key, at := uuid.New(), clock.Now()
	if err := l.Seed(ctx, key, budget.History{AsOf: at}); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "old", 1, at.Add(-5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "ahead", 2, at.Add(30*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: 100}}
	if s, err := l.State(ctx, key, bs, at); err != nil || s[0].Used != 1 {
		t.Fatalf("5h window after a settle from a clock a month ahead: %+v, %v; want 1 used", s, err)
	}
}
