package memory_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/throttletest"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/ports"
)

func mustLoginThrottle(tb testing.TB, maxEntries int, opts ...memory.Option) *memory.LoginThrottle {
	tb.Helper()
	s, err := memory.NewLoginThrottle(maxEntries, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func TestLoginThrottleContract(t *testing.T) {
	t.Parallel()
	throttletest.Run(t, func(tb testing.TB) ports.LoginThrottle { return mustLoginThrottle(tb, 1000) })
}

func TestLoginThrottleNeedsABound(t *testing.T) {
	if _, err := memory.NewLoginThrottle(0); err == nil {
		t.Fatal("an unbounded store was built")
	}
}

func putCounter(t *testing.T, s *memory.LoginThrottle, key string, ttl time.Duration) {
	t.Helper()
	err := s.Update(context.Background(), []string{key}, func(now time.Time, _ []ports.LoginCounter) []ports.LoginCounterUpdate {
		return []ports.LoginCounterUpdate{{Key: key, Counter: ports.LoginCounter{Count: 1, At: now}, TTL: ttl}}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasCounter(t *testing.T, s *memory.LoginThrottle, key string) bool {
	t.Helper()
	var found bool
	err := s.Update(context.Background(), []string{key}, func(_ time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
		found = cur[0].Count > 0
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestLoginThrottleEvictsLeastRecentlyUsed: past its bound the store drops
// the counter used longest ago, one at a time, never the whole table.
func TestLoginThrottleEvictsLeastRecentlyUsed(t *testing.T) {
	s := mustLoginThrottle(t, 100)
	putCounter(t, s, "keep", time.Hour)
	for i := range 1000 {
		putCounter(t, s, fmt.Sprintf("k%d", i), time.Hour)
		if i%50 == 0 && !hasCounter(t, s, "keep") {
			t.Fatalf("a counter in use was evicted after %d others", i)
		}
		if s.Len() > 100 {
			t.Fatalf("%d counters held, bound 100", s.Len())
		}
	}
	if s.Len() != 100 {
		t.Fatalf("%d counters held, want the bound (100): eviction drops one at a time", s.Len())
	}
	if hasCounter(t, s, "k0") || !hasCounter(t, s, "k999") {
		t.Fatal("the oldest counter survived, or the newest did not")
	}
}

func TestLoginThrottleExpiresOnItsClock(t *testing.T) {
	clock := newFakeClock()
	s := mustLoginThrottle(t, 10, memory.WithClock(clock))
	putCounter(t, s, "a", time.Minute)
	clock.Advance(time.Minute - time.Nanosecond)
	if !hasCounter(t, s, "a") {
		t.Fatal("expired early")
	}
	clock.Advance(time.Nanosecond)
	if hasCounter(t, s, "a") {
		t.Fatal("not expired after its TTL")
	}
}

// TestLoginThrottleMemoryBoundedWhateverTheAddresses: one failed login from
// each of many addresses (budgets set so high that every attempt is
// admitted and written) leaves at most the bound in memory, and the
// throttle still works for the addresses in use.
func TestLoginThrottleMemoryBoundedWhateverTheAddresses(t *testing.T) {
	s := mustLoginThrottle(t, 1000)
	th, err := admin.NewLoginThrottle(s, nil, admin.LoginThrottlePolicy{PerAddress: 2, MaxBackoff: time.Minute,
		PerUsername: 1 << 30, Global: 1 << 30, Window: time.Hour, KnownAddressTTL: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20_000 {
		addr := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		a, err := th.Reserve(ctx, addr, "admin")
		if err != nil {
			t.Fatalf("address %d: %v", i, err)
		}
		a.Failed(ctx)
	}
	if s.Len() > 1000 {
		t.Fatalf("%d counters held, bound 1000", s.Len())
	}
	last := netip.MustParseAddr("192.0.2.1")
	for range 2 {
		a, err := th.Reserve(ctx, last, "admin")
		if err != nil {
			t.Fatal(err)
		}
		a.Failed(ctx)
	}
	if _, err := th.Reserve(ctx, last, "admin"); err == nil {
		t.Fatal("an address past its free failures was admitted")
	}
}
