package memory

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/relaystation/relay/ports"
)

// LoginThrottle is an in-process ports.LoginThrottle: the login throttle's
// counters in one LRU of bounded size. Past the bound the least recently
// used counter is dropped, never the whole table. The policy only writes a
// counter for an attempt it admits, so addresses that are refused (or that
// never get past the budgets) take no room at all.
type LoginThrottle struct {
	clock ports.Clock
	mu    sync.Mutex
	lru   *simplelru.LRU[string, loginEntry]
}

var _ ports.LoginThrottle = (*LoginThrottle)(nil)

type loginEntry struct {
	c       ports.LoginCounter
	expires time.Time
}

// NewLoginThrottle returns a store of at most maxEntries counters (about
// 225 bytes each, key included). Options: WithClock.
func NewLoginThrottle(maxEntries int, opts ...Option) (*LoginThrottle, error) {
	o := buildOptions(opts)
	lru, err := simplelru.NewLRU[string, loginEntry](maxEntries, nil)
	if err != nil {
		return nil, fmt.Errorf("memory login throttle: %w", err)
	}
	return &LoginThrottle{clock: o.clock, lru: lru}, nil
}

// Update implements ports.LoginThrottle. One lock covers every Update:
// logins are rare, and a decision takes microseconds.
func (t *LoginThrottle) Update(_ context.Context, keys []string,
	decide func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.clock.Now()
	cur := make([]ports.LoginCounter, len(keys))
	for i, k := range keys {
		e, ok := t.lru.Get(k)
		switch {
		case !ok:
		case now.Before(e.expires):
			cur[i] = e.c
		default:
			t.lru.Remove(k)
		}
	}
	ups := decide(now, cur)
	for _, u := range ups {
		if !slices.Contains(keys, u.Key) {
			return fmt.Errorf("memory login throttle: update of %q, which was not read", u.Key)
		}
	}
	for _, u := range ups {
		if u.TTL <= 0 {
			t.lru.Remove(u.Key)
			continue
		}
		t.lru.Add(u.Key, loginEntry{c: u.Counter, expires: now.Add(u.TTL)})
	}
	return nil
}

// Len reports how many counters are held, expired ones not yet dropped
// included.
func (t *LoginThrottle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lru.Len()
}
