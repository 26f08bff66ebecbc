package keycache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

type fakeClock struct{ now atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.now.Add(int64(d)) }

// storeFunc is a KeyStore double: only GetKeyByHash is used by the cache.
type storeFunc struct {
	ports.KeyStore
	get   func(hash string) (domain.APIKey, error)
	calls atomic.Int64
}

func (s *storeFunc) GetKeyByHash(_ context.Context, hash string) (domain.APIKey, error) {
	s.calls.Add(1)
	return s.get(hash)
}

func TestCache(t *testing.T) {
	clock := &fakeClock{}
	key := domain.APIKey{ID: uuid.New(), Name: "k", IsActive: true}
	var mu sync.Mutex
	stored := map[string]domain.APIKey{"h1": key}
	store := &storeFunc{get: func(h string) (domain.APIKey, error) {
		mu.Lock()
		defer mu.Unlock()
		if k, ok := stored[h]; ok {
			return k, nil
		}
		return domain.APIKey{}, domain.ErrNotFound
	}}
	c := New(store, 5*time.Second, clock)
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if k, err := c.LookupKey(ctx, "h1"); err != nil || k.ID != key.ID {
			t.Fatalf("lookup: %v %v", k, err)
		}
	}
	if n := store.calls.Load(); n != 1 {
		t.Fatalf("%d store reads for three lookups within the TTL", n)
	}

	// A change in the store is seen after the TTL...
	mu.Lock()
	k2 := key
	k2.IsActive = false
	stored["h1"] = k2
	mu.Unlock()
	clock.advance(6 * time.Second)
	if k, _ := c.LookupKey(ctx, "h1"); k.IsActive {
		t.Fatal("stale entry served after its TTL")
	}
	// ...and at once after Invalidate.
	mu.Lock()
	stored["h1"] = key
	mu.Unlock()
	c.Invalidate(key.ID)
	if k, _ := c.LookupKey(ctx, "h1"); !k.IsActive {
		t.Fatal("Invalidate did not drop the entry")
	}

	// Unknown hashes are cached briefly, so floods of bad keys cost little.
	before := store.calls.Load()
	for i := 0; i < 5; i++ {
		if _, err := c.LookupKey(ctx, "nope"); domain.KindOf(err) != domain.KindNotFound {
			t.Fatalf("unknown: %v", err)
		}
	}
	if store.calls.Load()-before != 1 {
		t.Fatalf("%d store reads for five lookups of one unknown hash", store.calls.Load()-before)
	}
	// A key created after a miss works within a second.
	mu.Lock()
	stored["nope"] = key
	mu.Unlock()
	clock.advance(1100 * time.Millisecond)
	if _, err := c.LookupKey(ctx, "nope"); err != nil {
		t.Fatalf("new key after the negative TTL: %v", err)
	}
}

// TestInvalidateDuringLookup: a read that began before a disable committed
// must not be cached after the disable's Invalidate, nor handed to lookups
// that start after it.
func TestInvalidateDuringLookup(t *testing.T) {
	clock := &fakeClock{}
	key := domain.APIKey{ID: uuid.New(), Name: "k", IsActive: true}
	var mu sync.Mutex
	current := key
	started, release := make(chan struct{}), make(chan struct{})
	var first atomic.Bool
	store := &storeFunc{get: func(string) (domain.APIKey, error) {
		mu.Lock()
		k := current
		mu.Unlock()
		if first.CompareAndSwap(false, true) {
			// The row as it was before the disable, returned late.
			close(started)
			<-release
		}
		return k, nil
	}}
	c := New(store, time.Minute, clock)
	ctx := context.Background()

	stale := make(chan domain.APIKey)
	go func() {
		k, _ := c.LookupKey(ctx, "h")
		stale <- k
	}()
	<-started
	// The disable commits and invalidates while the read is in flight.
	mu.Lock()
	current.IsActive = false
	mu.Unlock()
	c.Invalidate(key.ID)

	// A lookup after the Invalidate does not join the old flight.
	fresh := make(chan domain.APIKey, 1)
	go func() {
		k, _ := c.LookupKey(ctx, "h")
		fresh <- k
	}()
	select {
	case k := <-fresh:
		if k.IsActive {
			t.Fatal("a lookup after Invalidate saw the key active")
		}
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("a lookup after Invalidate joined the read in flight")
	}
	close(release)
	if k := <-stale; !k.IsActive {
		t.Fatal("the in-flight read should have seen the row before the disable")
	}
	// The late result was not cached over the fresh one.
	for range 3 {
		if k, _ := c.LookupKey(ctx, "h"); k.IsActive {
			t.Fatal("the stale in-flight read was cached after Invalidate")
		}
	}
}
