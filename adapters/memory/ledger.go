package memory

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Ledger is an in-process ports.QuotaLedger.
type Ledger struct {
	clock     ports.Clock
	retention time.Duration
	shards    [shardCount]ledgerShard
	sweeper   *sweeper
}

var _ ports.QuotaLedger = (*Ledger)(nil)

type ledgerShard struct {
	mu   sync.RWMutex
	accs map[uuid.UUID]*account
}

type reservation struct {
	amount  int64
	expires int64 // unix nanoseconds
}

type settled struct {
	id      string
	expires int64
}

// account is one key's ledger. Its mutex, not the shard's, guards every
// mutation, so the shard lock is held only for the map lookup.
type account struct {
	mu       sync.Mutex
	dead     bool // removed by Reset; callers holding it look it up again
	used     int64
	reserved int64
	res      map[string]reservation
	// nextExpiry is the earliest reservation expiry, so the common case (no
	// reservation has expired) costs one comparison, not a scan.
	nextExpiry int64
	done       map[string]struct{}
	// doneQ lists done in settlement order; retention is constant, so expiry
	// order is the same and pruning pops from the front.
	doneQ    []settled
	doneHead int
}

// NewLedger returns an empty ledger. Options: WithClock, WithSweepInterval,
// WithSettleRetention.
func NewLedger(opts ...Option) *Ledger {
	o := buildOptions(opts)
	l := &Ledger{clock: o.clock, retention: o.settleRetention}
	for i := range l.shards {
		l.shards[i].accs = make(map[uuid.UUID]*account)
	}
	l.sweeper = startSweeper(o.sweepInterval, l.Sweep)
	return l
}

// Close stops the sweeper, if any.
func (l *Ledger) Close() error {
	l.sweeper.close()
	return nil
}

func (l *Ledger) shard(id uuid.UUID) *ledgerShard {
	// A UUID's last byte is random for v4 and v7 alike.
	return &l.shards[id[15]%shardCount]
}

// lock returns the key's account, locked, creating it from seedUsed when
// create is set; nil if it does not exist and create is false.
func (l *Ledger) lock(keyID uuid.UUID, create bool, seedUsed int64) *account {
	sh := l.shard(keyID)
	for {
		sh.mu.RLock()
		a := sh.accs[keyID]
		sh.mu.RUnlock()
		if a == nil {
			if !create {
				return nil
			}
			sh.mu.Lock()
			a = sh.accs[keyID]
			if a == nil {
				a = &account{used: seedUsed, nextExpiry: math.MaxInt64,
					res: make(map[string]reservation), done: make(map[string]struct{})}
				sh.accs[keyID] = a
			}
			sh.mu.Unlock()
		}
		a.mu.Lock()
		if !a.dead {
			// Persisted usage above the ledger's means usage this ledger did
			// not settle (recorded while the key had no limit, by the batch
			// reconciler, or before a restart): the larger figure is never an
			// undercount, since everything settled here is persisted too.
			if create && seedUsed > a.used {
				a.used = seedUsed
			}
			return a
		}
		a.mu.Unlock()
	}
}

// prune drops expired reservations and forgotten settlements. a.mu is held.
func (a *account) prune(now int64) {
	if now >= a.nextExpiry {
		next := int64(math.MaxInt64)
		for id, r := range a.res {
			if r.expires <= now {
				a.reserved -= r.amount
				delete(a.res, id)
			} else if r.expires < next {
				next = r.expires
			}
		}
		a.nextExpiry = next
	}
	for a.doneHead < len(a.doneQ) && a.doneQ[a.doneHead].expires <= now {
		delete(a.done, a.doneQ[a.doneHead].id)
		a.doneQ[a.doneHead] = settled{}
		a.doneHead++
	}
	if a.doneHead == len(a.doneQ) {
		a.doneQ, a.doneHead = a.doneQ[:0], 0
	} else if a.doneHead > 1024 && a.doneHead*2 > len(a.doneQ) {
		n := copy(a.doneQ, a.doneQ[a.doneHead:])
		clear(a.doneQ[n:])
		a.doneQ, a.doneHead = a.doneQ[:n], 0
	}
}

func (a *account) state() domain.QuotaState {
	return domain.QuotaState{Used: a.used, Reserved: a.reserved}
}

// Reserve implements ports.QuotaLedger. Reserving an id that is already held
// or already settled changes nothing and succeeds, so a retried Reserve is
// safe.
func (l *Ledger) Reserve(ctx context.Context, keyID uuid.UUID, id string, estimate, limit, seedUsed int64, lease time.Duration) (domain.QuotaState, error) {
	if estimate < 0 {
		return domain.QuotaState{}, domain.Invalidf("quota reservation must not be negative")
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, true, seedUsed)
	defer a.mu.Unlock()
	a.prune(now)
	if _, held := a.res[id]; held {
		return a.state(), nil
	}
	if _, ok := a.done[id]; ok {
		return a.state(), nil
	}
	// Written as a subtraction so that no sum of large values can overflow.
	if estimate > limit-a.used-a.reserved {
		return a.state(), quotaExceeded(a.state(), estimate, limit)
	}
	exp := now + int64(lease)
	a.res[id] = reservation{amount: estimate, expires: exp}
	a.reserved += estimate
	if exp < a.nextExpiry {
		a.nextExpiry = exp
	}
	return a.state(), nil
}

// Settle implements ports.QuotaLedger. A key the ledger does not hold (never
// reserved on this replica, or Reset since) is left alone: it will be seeded
// from storage, which by then includes this usage.
func (l *Ledger) Settle(ctx context.Context, keyID uuid.UUID, id string, actual int64) error {
	if actual < 0 {
		return domain.Invalidf("settled usage must not be negative")
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false, 0)
	if a == nil {
		return nil
	}
	defer a.mu.Unlock()
	a.prune(now)
	if _, ok := a.done[id]; ok {
		return nil
	}
	if r, ok := a.res[id]; ok {
		a.reserved -= r.amount
		delete(a.res, id)
	}
	a.used += actual
	a.done[id] = struct{}{}
	a.doneQ = append(a.doneQ, settled{id: id, expires: now + int64(l.retention)})
	return nil
}

// Extend implements ports.QuotaLedger.
func (l *Ledger) Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error {
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false, 0)
	if a == nil {
		return nil
	}
	defer a.mu.Unlock()
	a.prune(now)
	if r, ok := a.res[id]; ok {
		// nextExpiry may now be early; prune recomputes it when it passes.
		r.expires = max(r.expires, now+int64(lease))
		a.res[id] = r
	}
	return nil
}

// State implements ports.QuotaLedger.
func (l *Ledger) State(ctx context.Context, keyID uuid.UUID, seedUsed int64) (domain.QuotaState, error) {
	a := l.lock(keyID, true, seedUsed)
	defer a.mu.Unlock()
	a.prune(l.clock.Now().UnixNano())
	return a.state(), nil
}

// Reset implements ports.QuotaLedger.
func (l *Ledger) Reset(ctx context.Context, keyID uuid.UUID) error {
	sh := l.shard(keyID)
	sh.mu.Lock()
	a := sh.accs[keyID]
	delete(sh.accs, keyID)
	sh.mu.Unlock()
	if a != nil {
		a.mu.Lock()
		a.dead = true
		a.mu.Unlock()
	}
	return nil
}

// Sweep drops expired reservations and settlements of every key now. The
// sweeper started by WithSweepInterval calls it.
func (l *Ledger) Sweep() {
	now := l.clock.Now().UnixNano()
	var accs []*account
	for i := range l.shards {
		sh := &l.shards[i]
		accs = accs[:0]
		sh.mu.RLock()
		for _, a := range sh.accs {
			accs = append(accs, a)
		}
		sh.mu.RUnlock()
		for _, a := range accs {
			a.mu.Lock()
			a.prune(now)
			a.mu.Unlock()
		}
	}
}

// quotaExceeded is the refusal: a KindQuotaExceeded error saying what remains
// of the quota. The redis adapter words it the same way.
func quotaExceeded(s domain.QuotaState, estimate, limit int64) *domain.Error {
	e := domain.Errorf(domain.KindQuotaExceeded,
		"token quota exhausted: %d of %d tokens remain (%d reserved by in-flight requests), this request needs up to %d",
		s.Remaining(limit), limit, s.Reserved, estimate)
	e.Reason = domain.ReasonQuota
	return e
}
