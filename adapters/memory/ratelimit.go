package memory

import (
	"context"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// RateLimiter is an in-process GCRA ports.RateLimiter. Each key keeps one
// number, its theoretical arrival time (TAT): the instant at which its budget
// would be fully refilled. A request of cost c is allowed at time now when
// max(TAT, now) + c*Period/Count - Period <= now.
type RateLimiter struct {
	clock   ports.Clock
	seed    maphash.Seed
	shards  [shardCount]limiterShard
	sweeper *sweeper
}

var _ ports.RateLimiter = (*RateLimiter)(nil)

type limiterShard struct {
	mu sync.Mutex
	// tat is in unix nanoseconds. An entry at or before now means a full
	// budget, the same as no entry, so such entries may be dropped anytime.
	tat     map[string]int64
	pruneAt int
}

// NewRateLimiter returns a limiter with no history. Options: WithClock,
// WithSweepInterval.
func NewRateLimiter(opts ...Option) *RateLimiter {
	o := buildOptions(opts)
	r := &RateLimiter{clock: o.clock, seed: maphash.MakeSeed()}
	for i := range r.shards {
		r.shards[i].tat = make(map[string]int64)
		r.shards[i].pruneAt = minPrune
	}
	r.sweeper = startSweeper(o.sweepInterval, r.Sweep)
	return r
}

const minPrune = 256

// Close stops the sweeper, if any.
func (r *RateLimiter) Close() error {
	r.sweeper.close()
	return nil
}

func (r *RateLimiter) shard(key string) *limiterShard {
	return &r.shards[maphash.String(r.seed, key)%shardCount]
}

func validLimit(l domain.Limit) error {
	if l.Count < 1 || l.Period <= 0 {
		return domain.Invalidf("rate limit needs a positive count and period")
	}
	return nil
}

// gcra holds one decision's arithmetic, all in nanoseconds.
type gcra struct {
	count    int64
	period   int64
	interval float64 // emission interval, period/count
}

func newGCRA(l domain.Limit) gcra {
	return gcra{count: l.Count, period: int64(l.Period), interval: float64(l.Period) / float64(l.Count)}
}

// cost is the TAT increment for n units. It is rounded down, so a burst of
// exactly Count always fits; the error is under a nanosecond per request.
func (g gcra) cost(n int64) int64 {
	if n <= 0 {
		return 0
	}
	f := math.Floor(float64(n) * g.interval)
	if f > math.MaxInt64/4 {
		return math.MaxInt64 / 4
	}
	return max(int64(f), 1)
}

// remaining is how many units fit at now given tat.
func (g gcra) remaining(now, tat int64) int64 {
	if tat <= now {
		return g.count
	}
	free := g.period - (tat - now)
	if free <= 0 {
		return 0
	}
	n := int64(float64(free) / g.interval)
	return min(n, g.count)
}

// allow applies a request of n units to tat at now. It returns the decision
// and the new tat (unchanged when refused).
func (g gcra) allow(now, tat, n int64) (domain.RateDecision, int64) {
	base := max(tat, now)
	newTAT := base + g.cost(n)
	allowAt := newTAT - g.period
	if allowAt > now {
		d := domain.RateDecision{
			Limit:      g.count,
			Remaining:  g.remaining(now, tat),
			ResetAfter: time.Duration(base - now),
			RetryAfter: time.Duration(allowAt - now),
		}
		if n > g.count {
			// Never satisfiable; point at the moment the budget is full, the
			// best a client can do.
			d.RetryAfter = max(d.ResetAfter, time.Duration(g.period))
		}
		return d, tat
	}
	return domain.RateDecision{
		Allowed:    true,
		Limit:      g.count,
		Remaining:  g.remaining(now, newTAT),
		ResetAfter: time.Duration(newTAT - now),
	}, newTAT
}

// peek reports the budget at now: allowed when one unit would pass.
func (g gcra) peek(now, tat int64) domain.RateDecision {
	d, _ := g.allow(now, tat, 1)
	d.Allowed = d.RetryAfter == 0
	d.Remaining = g.remaining(now, tat)
	d.ResetAfter = time.Duration(max(tat-now, 0))
	return d
}

// Allow implements ports.RateLimiter. A cost above limit.Count can never be
// allowed; its RetryAfter is when the budget is next full.
func (r *RateLimiter) Allow(ctx context.Context, key string, limit domain.Limit, cost int64) (domain.RateDecision, error) {
	if err := validLimit(limit); err != nil {
		return domain.RateDecision{}, err
	}
	if cost < 0 {
		return domain.RateDecision{}, domain.Invalidf("rate limit cost must not be negative")
	}
	g := newGCRA(limit)
	now := r.clock.Now().UnixNano()
	sh := r.shard(key)
	sh.mu.Lock()
	d, tat := g.allow(now, sh.tat[key], cost)
	if d.Allowed && tat > now {
		sh.store(key, tat, now)
	}
	sh.mu.Unlock()
	return d, nil
}

// Peek implements ports.RateLimiter.
func (r *RateLimiter) Peek(ctx context.Context, key string, limit domain.Limit) (domain.RateDecision, error) {
	if err := validLimit(limit); err != nil {
		return domain.RateDecision{}, err
	}
	g := newGCRA(limit)
	now := r.clock.Now().UnixNano()
	sh := r.shard(key)
	sh.mu.Lock()
	tat := sh.tat[key]
	sh.mu.Unlock()
	return g.peek(now, tat), nil
}

// Charge implements ports.RateLimiter.
func (r *RateLimiter) Charge(ctx context.Context, key string, limit domain.Limit, cost int64) error {
	if err := validLimit(limit); err != nil {
		return err
	}
	if cost <= 0 {
		return nil
	}
	g := newGCRA(limit)
	now := r.clock.Now().UnixNano()
	sh := r.shard(key)
	sh.mu.Lock()
	sh.store(key, max(sh.tat[key], now)+g.cost(cost), now)
	sh.mu.Unlock()
	return nil
}

// store sets key's tat, first dropping refilled entries when the map has
// doubled since the last prune, which keeps memory proportional to the keys
// active within one period. sh.mu is held.
func (sh *limiterShard) store(key string, tat, now int64) {
	if _, ok := sh.tat[key]; !ok && len(sh.tat) >= sh.pruneAt {
		sh.prune(now)
		sh.pruneAt = max(2*len(sh.tat), minPrune)
	}
	sh.tat[key] = tat
}

func (sh *limiterShard) prune(now int64) {
	for k, t := range sh.tat {
		if t <= now {
			delete(sh.tat, k)
		}
	}
}

// Sweep drops every refilled bucket now. The sweeper started by
// WithSweepInterval calls it.
func (r *RateLimiter) Sweep() {
	now := r.clock.Now().UnixNano()
	for i := range r.shards {
		sh := &r.shards[i]
		sh.mu.Lock()
		sh.prune(now)
		sh.mu.Unlock()
	}
}
