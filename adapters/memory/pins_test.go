package memory_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/pintest"
	"github.com/relaystation/relay/ports"
)

func TestPinsContract(t *testing.T) {
	t.Parallel()
	pintest.Run(t, func(tb testing.TB) ports.SessionPins {
		return MustSessionPins(tb, 1000)
	})
}

func MustSessionPins(tb testing.TB, maxEntries int, opts ...memory.Option) *memory.SessionPins {
	tb.Helper()
	s, err := memory.NewSessionPins(maxEntries, opts...)
	if err != nil {
		tb.Fatalf("NewSessionPins: %v", err)
	}
	return s
}

// pinClock is a settable clock for the pin store alone.
type pinClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *pinClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *pinClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestPinsNeedABound(t *testing.T) {
	t.Parallel()
	if _, err := memory.NewSessionPins(0); err == nil {
		t.Fatal("NewSessionPins(0) succeeded; an unbounded store must be refused")
	}
}

func TestPinsExpireOnTheirClock(t *testing.T) {
	t.Parallel()
	clock := &pinClock{t: time.Unix(1_800_000_000, 0)}
	s := MustSessionPins(t, 10, memory.WithClock(clock))
	ctx := context.Background()
	_ = s.Set(ctx, "c.s", "a", time.Hour)
	clock.advance(59 * time.Minute)
	_ = s.Set(ctx, "c.s", "a", time.Hour) // renewed on use
	clock.advance(59 * time.Minute)
	if up, ok, _ := s.Get(ctx, "c.s"); !ok || up != "a" {
		t.Fatalf("a pin renewed 59 min ago: %q, %v; want a", up, ok)
	}
	clock.advance(time.Minute)
	if _, ok, _ := s.Get(ctx, "c.s"); ok {
		t.Fatal("pin still held a TTL after its renewal")
	}
	if s.Len() != 0 {
		t.Errorf("an expired pin was kept after a Get (Len %d)", s.Len())
	}
}

// TestPinsEvictLeastRecentlyUsed: at the bound, the session used longest
// ago loses its pin, however many sessions come.
func TestPinsEvictLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	s := MustSessionPins(t, 3)
	ctx := context.Background()
	for _, session := range []string{"c.1", "c.2", "c.3"} {
		_ = s.Set(ctx, session, "a", time.Hour)
	}
	_, _, _ = s.Get(ctx, "c.1") // used: c.2 is now the oldest
	_ = s.Set(ctx, "c.4", "a", time.Hour)
	if _, ok, _ := s.Get(ctx, "c.2"); ok {
		t.Error("the least recently used pin survived past the bound")
	}
	for _, session := range []string{"c.1", "c.3", "c.4"} {
		if _, ok, _ := s.Get(ctx, session); !ok {
			t.Errorf("%s lost its pin", session)
		}
	}
	for i := range 10_000 {
		_ = s.Set(ctx, fmt.Sprint("c.flood", i), "a", time.Hour)
	}
	if s.Len() != 3 {
		t.Errorf("Len = %d after a flood of sessions, want the bound 3", s.Len())
	}
}
