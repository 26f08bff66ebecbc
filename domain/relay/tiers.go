package relay

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// TierResolver serves tiers from a snapshot of the TierStore that is at
// most ttl old, so an operator's tier change applies within seconds, on
// every replica, without a restart, and admission costs no query.
type TierResolver struct {
	store ports.TierStore
	ttl   time.Duration
	clock ports.Clock

	snap atomic.Pointer[tierSnapshot]
	mu   sync.Mutex // one refresher at a time
}

type tierSnapshot struct {
	byName  map[string]domain.Tier
	expires time.Time
}

// NewTierResolver caches store's tiers for ttl (default DefaultTierTTL).
func NewTierResolver(store ports.TierStore, ttl time.Duration, clock ports.Clock) *TierResolver {
	if ttl <= 0 {
		ttl = DefaultTierTTL
	}
	if clock == nil {
		clock = ports.SystemClock{}
	}
	return &TierResolver{store: store, ttl: ttl, clock: clock}
}

// Tier returns the tier named name; ErrNotFound if the store has none.
// When the snapshot is stale one caller refreshes it while the others keep
// using the stale one; a failed refresh keeps the stale snapshot.
func (r *TierResolver) Tier(ctx context.Context, name string) (domain.Tier, error) {
	s := r.snap.Load()
	if s == nil || !r.clock.Now().Before(s.expires) {
		if s == nil {
			r.mu.Lock()
		} else if !r.mu.TryLock() {
			return lookupTier(s, name)
		}
		var err error
		s, err = r.refresh(ctx)
		r.mu.Unlock()
		if err != nil {
			return domain.Tier{}, err
		}
	}
	return lookupTier(s, name)
}

func lookupTier(s *tierSnapshot, name string) (domain.Tier, error) {
	t, ok := s.byName[name]
	if !ok {
		return domain.Tier{}, domain.Errorf(domain.KindNotFound, "rate-limit tier %q does not exist", name)
	}
	return t, nil
}

// refresh reloads the snapshot; r.mu is held.
func (r *TierResolver) refresh(ctx context.Context) (*tierSnapshot, error) {
	cur := r.snap.Load()
	if cur != nil && r.clock.Now().Before(cur.expires) {
		return cur, nil // another caller refreshed it meanwhile
	}
	tiers, err := r.store.ListTiers(context.WithoutCancel(ctx))
	if err != nil {
		if cur != nil {
			// Keep serving the last known tiers; retry after a short while.
			stale := &tierSnapshot{byName: cur.byName, expires: r.clock.Now().Add(time.Second)}
			r.snap.Store(stale)
			return stale, nil
		}
		return nil, fmt.Errorf("load rate-limit tiers: %w", err)
	}
	s := &tierSnapshot{byName: make(map[string]domain.Tier, len(tiers)), expires: r.clock.Now().Add(r.ttl)}
	for _, t := range tiers {
		s.byName[t.Name] = t
	}
	r.snap.Store(s)
	return s, nil
}

// Invalidate drops the snapshot, so the next lookup reloads (after a local
// tier change).
func (r *TierResolver) Invalidate() { r.snap.Store(nil) }
