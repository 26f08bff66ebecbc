package memory

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// ConcurrencyLimiter is an in-process ports.ConcurrencyLimiter. A slot whose
// release func is never called (a leaked request) expires after its lease.
type ConcurrencyLimiter struct {
	clock   ports.Clock
	seed    maphash.Seed
	nextID  atomic.Uint64
	shards  [shardCount]slotShard
	sweeper *sweeper
}

var _ ports.ConcurrencyLimiter = (*ConcurrencyLimiter)(nil)

type slotShard struct {
	mu sync.Mutex
	// Keys whose last slot is released stay until the next prune, so a key
	// bouncing between zero and one in-flight request allocates nothing.
	keys    map[string]*slots
	pruneAt int
}

type slot struct {
	id      uint64
	expires int64 // unix nanoseconds
}

type slots struct {
	held       []slot // at most max entries: small, so a slice beats a map
	nextExpiry int64
}

// NewConcurrencyLimiter returns a limiter with no slots held. Options:
// WithClock, WithSweepInterval.
func NewConcurrencyLimiter(opts ...Option) *ConcurrencyLimiter {
	o := buildOptions(opts)
	c := &ConcurrencyLimiter{clock: o.clock, seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].keys = make(map[string]*slots)
		c.shards[i].pruneAt = minPrune
	}
	c.sweeper = startSweeper(o.sweepInterval, c.Sweep)
	return c
}

// Close stops the sweeper, if any.
func (c *ConcurrencyLimiter) Close() error {
	c.sweeper.close()
	return nil
}

func (c *ConcurrencyLimiter) shard(key string) *slotShard {
	return &c.shards[maphash.String(c.seed, key)%shardCount]
}

func (s *slots) prune(now int64) {
	if now < s.nextExpiry {
		return
	}
	next := int64(math.MaxInt64)
	kept := s.held[:0]
	for _, h := range s.held {
		if h.expires > now {
			kept = append(kept, h)
			next = min(next, h.expires)
		}
	}
	clear(s.held[len(kept):])
	s.held, s.nextExpiry = kept, next
}

// Acquire implements ports.ConcurrencyLimiter.
func (c *ConcurrencyLimiter) Acquire(ctx context.Context, key string, maxSlots int, lease time.Duration) (func(), bool, error) {
	if maxSlots < 1 || lease <= 0 {
		return nil, false, domain.Invalidf("concurrency limit needs a positive max and lease")
	}
	now := c.clock.Now().UnixNano()
	sh := c.shard(key)
	sh.mu.Lock()
	s := sh.keys[key]
	if s == nil {
		if len(sh.keys) >= sh.pruneAt {
			sh.prune(now)
			sh.pruneAt = max(2*len(sh.keys), minPrune)
		}
		s = &slots{nextExpiry: math.MaxInt64}
		sh.keys[key] = s
	}
	s.prune(now)
	if len(s.held) >= maxSlots {
		sh.mu.Unlock()
		return nil, false, nil
	}
	id := c.nextID.Add(1)
	exp := now + int64(lease)
	s.held = append(s.held, slot{id: id, expires: exp})
	if exp < s.nextExpiry {
		s.nextExpiry = exp
	}
	sh.mu.Unlock()
	return func() { c.release(key, id) }, true, nil
}

// release frees slot id; calling it twice, or after the lease expired, is
// harmless because ids are never reused.
func (c *ConcurrencyLimiter) release(key string, id uint64) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.keys[key]
	if s == nil {
		return
	}
	for i, h := range s.held {
		if h.id == id {
			last := len(s.held) - 1
			s.held[i] = s.held[last]
			s.held[last] = slot{}
			s.held = s.held[:last]
			return
		}
	}
}

// InFlight implements ports.ConcurrencyLimiter.
func (c *ConcurrencyLimiter) InFlight(ctx context.Context, key string) (int, error) {
	now := c.clock.Now().UnixNano()
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.keys[key]
	if s == nil {
		return 0, nil
	}
	s.prune(now)
	return len(s.held), nil
}

// prune drops expired slots and keys that hold none. sh.mu is held.
func (sh *slotShard) prune(now int64) {
	for k, s := range sh.keys {
		s.prune(now)
		if len(s.held) == 0 {
			delete(sh.keys, k)
		}
	}
}

// Sweep drops every expired slot and idle key now. The sweeper started by
// WithSweepInterval calls it.
func (c *ConcurrencyLimiter) Sweep() {
	now := c.clock.Now().UnixNano()
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		sh.prune(now)
		sh.mu.Unlock()
	}
}
