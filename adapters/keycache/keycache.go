// Package keycache puts a small TTL cache in front of KeyStore.GetKeyByHash,
// so the proxy's authentication costs a map lookup on the hot path. Local
// mutations invalidate at once; other replicas see a change within the TTL
// (the documented bound for disable/delete/rotate across replicas).
package keycache

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/singleflight"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

type entry struct {
	key     domain.APIKey
	err     error // a cached "not found", so floods of bad keys cost no queries
	expires time.Time
}

// Cache implements ports.KeyLookup.
type Cache struct {
	store ports.KeyStore
	ttl   time.Duration
	neg   time.Duration
	clock ports.Clock
	group singleflight.Group

	mu     sync.RWMutex
	byHash map[string]entry
	byID   map[uuid.UUID]string
	// epoch counts invalidations. A store read that began before an
	// Invalidate may have seen the row before the change committed, so its
	// result is not cached (put compares epochs under mu), and later
	// lookups do not join its flight (the epoch is part of the flight key).
	epoch uint64
}

var _ ports.KeyLookup = (*Cache)(nil)

// New returns a cache with positive TTL ttl; misses are cached for at most a
// second so a freshly created key works at once.
func New(store ports.KeyStore, ttl time.Duration, clock ports.Clock) *Cache {
	neg := time.Second
	if ttl < neg {
		neg = ttl
	}
	return &Cache{store: store, ttl: ttl, neg: neg, clock: clock,
		byHash: make(map[string]entry), byID: make(map[uuid.UUID]string)}
}

// LookupKey returns the key with this hash, from cache when fresh.
func (c *Cache) LookupKey(ctx context.Context, hash string) (domain.APIKey, error) {
	now := c.clock.Now()
	c.mu.RLock()
	e, ok := c.byHash[hash]
	c.mu.RUnlock()
	if ok && now.Before(e.expires) {
		return e.key, e.err
	}
	c.mu.RLock()
	epoch := c.epoch
	c.mu.RUnlock()
	v, err, _ := c.group.Do(strconv.FormatUint(epoch, 36)+"|"+hash, func() (any, error) {
		k, err := c.store.GetKeyByHash(context.WithoutCancel(ctx), hash)
		switch {
		case err == nil:
			c.put(hash, epoch, entry{key: k, expires: c.clock.Now().Add(c.ttl)})
		case domain.KindOf(err) == domain.KindNotFound:
			c.put(hash, epoch, entry{err: err, expires: c.clock.Now().Add(c.neg)})
		}
		return k, err
	})
	if err != nil {
		return domain.APIKey{}, err
	}
	return v.(domain.APIKey), nil
}

// put caches e unless an Invalidate ran since the read that produced it
// began (at epoch): that read may predate a disable, rotate or delete.
func (c *Cache) put(hash string, epoch uint64, e entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch {
		return
	}
	if len(c.byHash) > 100_000 {
		// Bounded memory under a flood of distinct bad keys: start over.
		c.byHash = make(map[string]entry)
		c.byID = make(map[uuid.UUID]string)
	}
	c.byHash[hash] = e
	if e.err == nil {
		c.byID[e.key.ID] = hash
	}
}

// Invalidate drops the cached entry for key id.
// Any lookup in flight is then neither cached nor joined.
func (c *Cache) Invalidate(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if h, ok := c.byID[id]; ok {
		delete(c.byHash, h)
		delete(c.byID, id)
	}
}
