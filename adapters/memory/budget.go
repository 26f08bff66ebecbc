package memory

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// BudgetLedger is an in-process ports.BudgetLedger, for one replica. Leases
// and settle retention follow its clock (WithClock); windows follow the
// callers' times.
//
// A key costs a map entry per non-empty bucket: with spend in every quarter
// hour, about 4,100 (3,168 quarters, 792 hours, 33 days and 72 5-minute
// buckets), dropped as they pass their retention, and all at once by the
// sweeper (WithSweepInterval) when the key has been idle for
// DefaultBudgetIdleTTL; without a sweeper idle keys are kept.
type BudgetLedger struct {
	clock     ports.Clock
	retention time.Duration
	idle      time.Duration
	shards    [shardCount]budgetShard
	sweeper   *sweeper
}

var _ ports.BudgetLedger = (*BudgetLedger)(nil)

// DefaultBudgetIdleTTL is how long the budget ledger keeps a key nobody
// touches (by its clock) before forgetting it, to be seeded again. It
// matches the Redis ledger's default idle TTL.
const DefaultBudgetIdleTTL = 24 * time.Hour

type budgetShard struct {
	mu   sync.RWMutex
	accs map[uuid.UUID]*spendAccount
}

type spendReservation struct {
	amount  int64
	bucket  int64 // 5-minute bucket of the request's time
	expires int64 // unix nanoseconds, ledger clock
}

// spendAccount is one key's spend. Its mutex guards every field.
type spendAccount struct {
	mu      sync.Mutex
	dead    bool  // removed by Reset or the sweeper; look it up again
	touched int64 // unix nanoseconds, ledger clock
	latest  int64 // the latest request time given, unix seconds
	total   int64
	lv      [len(budget.Levels)]map[int64]int64
	// lo is, per level, an index below which no bucket is left, so pruning
	// walks only the indices that just passed their retention.
	lo  [len(budget.Levels)]int64
	res map[string]spendReservation
	// resBy sums res per 5-minute bucket and resSum all of it, so that a
	// window is measured in the few buckets requests are held in, not in
	// every request in flight. Change res only through hold and release.
	resBy      map[int64]int64
	resSum     int64
	nextExpiry int64
	// roll is the 5h measure's bucket buffer, reused under mu: a Measure
	// never outlives the call that took it.
	roll     []pricing.Nanodollars
	done     map[string]struct{}
	doneQ    []settled
	doneHead int
}

// NewBudgetLedger returns an empty ledger. Options: WithClock,
// WithSweepInterval (also drops idle keys), WithSettleRetention.
func NewBudgetLedger(opts ...Option) *BudgetLedger {
	o := buildOptions(opts)
	l := &BudgetLedger{clock: o.clock, retention: o.settleRetention, idle: DefaultBudgetIdleTTL}
	for i := range l.shards {
		l.shards[i].accs = make(map[uuid.UUID]*spendAccount)
	}
	l.sweeper = startSweeper(o.sweepInterval, l.Sweep)
	return l
}

// Close stops the sweeper, if any.
func (l *BudgetLedger) Close() error {
	l.sweeper.close()
	return nil
}

func (l *BudgetLedger) shard(id uuid.UUID) *budgetShard { return &l.shards[id[15]%shardCount] }

// lock returns the key's account, locked, creating it when create is set;
// nil if it does not exist and create is false.
func (l *BudgetLedger) lock(keyID uuid.UUID, create bool) *spendAccount {
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
				a = &spendAccount{latest: math.MinInt64, nextExpiry: math.MaxInt64,
					res: make(map[string]spendReservation), resBy: make(map[int64]int64), done: make(map[string]struct{})}
				for i := range a.lv {
					a.lv[i] = make(map[int64]int64)
				}
				sh.accs[keyID] = a
			}
			sh.mu.Unlock()
		}
		a.mu.Lock()
		if !a.dead {
			return a
		}
		a.mu.Unlock()
	}
}

// touch prunes what has expired by now (ledger clock) and what at (a
// request time, capped at now + budget.MaxAhead) has pushed past
// retention. a.mu is held.
func (a *spendAccount) touch(now int64, at time.Time) {
	a.touched = now
	a.pruneLeases(now)
	if !at.IsZero() && min(at.Unix(), (now+int64(budget.MaxAhead))/1e9) > a.latest {
		a.latest = min(at.Unix(), (now+int64(budget.MaxAhead))/1e9)
		cut := budget.Cutoffs(time.Unix(a.latest, 0))
		for i, m := range a.lv {
			if a.lo[i] >= cut[i] {
				continue
			}
			if cut[i]-a.lo[i] > int64(len(m)) {
				for idx := range m {
					if idx < cut[i] {
						delete(m, idx)
					}
				}
			} else {
				for idx := a.lo[i]; idx < cut[i]; idx++ {
					delete(m, idx)
				}
			}
			a.lo[i] = cut[i]
		}
	}
}

// hold records reservation id. a.mu is held.
func (a *spendAccount) hold(id string, r spendReservation) {
	a.release(id)
	a.res[id] = r
	a.resBy[r.bucket] += r.amount
	a.resSum += r.amount
}

// release drops reservation id, if held. a.mu is held.
func (a *spendAccount) release(id string) {
	r, ok := a.res[id]
	if !ok {
		return
	}
	delete(a.res, id)
	if v := a.resBy[r.bucket] - r.amount; v == 0 {
		delete(a.resBy, r.bucket)
	} else {
		a.resBy[r.bucket] = v
	}
	a.resSum -= r.amount
}

func (a *spendAccount) pruneLeases(now int64) {
	if now >= a.nextExpiry {
		next := int64(math.MaxInt64)
		for id, r := range a.res {
			if r.expires <= now {
				a.release(id)
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

// add records v at time at in every level that still keeps its bucket,
// and in the total, starting at level from. a.mu is held.
func (a *spendAccount) add(at time.Time, v int64, from budget.Level) {
	if v == 0 {
		return
	}
	for _, lv := range budget.Levels[from:] {
		if idx := lv.Index(at); idx >= a.lo[lv] {
			a.lv[lv][idx] += v
		}
	}
	a.total += v
}

// measure reads b's window at t. a.mu is held; the Measure's Buckets are
// a.roll, valid until the next measure.
func (a *spendAccount) measure(b budget.Budget, t time.Time) budget.Measure {
	var m budget.Measure
	switch b.Window {
	case budget.Total:
		m.Used = pricing.Nanodollars(a.total)
		m.Reserved = pricing.Nanodollars(a.resSum)
	case budget.Rolling5h:
		first, last := budget.RollingRange(t)
		if a.roll == nil {
			a.roll = make([]pricing.Nanodollars, budget.RollingBuckets)
		}
		m.Buckets = a.roll
		fine := a.lv[budget.Level5m]
		for i := range m.Buckets {
			v := pricing.Nanodollars(fine[first+int64(i)])
			m.Buckets[i] = v
			m.Used += v
		}
		for bucket, v := range a.resBy {
			if bucket >= first {
				m.Buckets[min(bucket, last)-first] += pricing.Nanodollars(v)
				m.Reserved += pricing.Nanodollars(v)
			}
		}
	default:
		start, end, cover := b.SpanCover(t)
		for _, bk := range cover {
			m.Used += pricing.Nanodollars(a.lv[bk.Level][bk.Index])
		}
		lo, hi := budget.Level5m.Index(start), budget.Level5m.Index(end.Add(-time.Nanosecond))
		for bucket, v := range a.resBy {
			if bucket >= lo && bucket <= hi {
				m.Reserved += pricing.Nanodollars(v)
			}
		}
	}
	return m
}

func validBudgets(budgets []budget.Budget, at time.Time) error {
	if err := budget.ValidateList(budgets); err != nil {
		return err
	}
	if at.IsZero() {
		return budgetInvalid("the request time is required")
	}
	return nil
}

// Reserve implements ports.BudgetLedger.
func (l *BudgetLedger) Reserve(ctx context.Context, keyID uuid.UUID, id string, budgets []budget.Budget, amount pricing.Nanodollars, at time.Time, lease time.Duration) ([]budget.Status, error) {
	if err := validBudgets(budgets, at); err != nil {
		return nil, err
	}
	if err := budget.ValidAmount("a budget reservation", amount); err != nil {
		return nil, err
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false)
	if a == nil {
		return nil, ports.ErrUnseeded
	}
	defer a.mu.Unlock()
	a.touch(now, at)
	_, held := a.res[id]
	_, settled := a.done[id]
	if held || settled {
		return a.statuses(budgets, at), nil
	}
	var short []budget.Shortfall
	sts := make([]budget.Status, len(budgets))
	for i, b := range budgets {
		st, sf := b.Check(at, a.measure(b, at), amount)
		sts[i] = st
		if sf != nil {
			short = append(short, *sf)
		}
	}
	if short != nil {
		return sts, budget.Refuse(at, short)
	}
	exp := now + int64(lease)
	a.hold(id, spendReservation{amount: int64(amount), bucket: budget.Level5m.Index(at), expires: exp})
	a.nextExpiry = min(a.nextExpiry, exp)
	// What the windows hold now is what was measured plus this amount, in
	// every window (the request's own bucket is in each of them): no
	// second measure. A 5h window's reset is unchanged unless it was empty.
	for i := range sts {
		sts[i].Reserved += amount
		if sts[i].Budget.Window == budget.Rolling5h && sts[i].ResetsAt.IsZero() && amount > 0 {
			sts[i].ResetsAt = budget.BucketStart(at).Add(budget.RollingSpan)
		}
	}
	return sts, nil
}

func (a *spendAccount) statuses(budgets []budget.Budget, at time.Time) []budget.Status {
	sts := make([]budget.Status, len(budgets))
	for i, b := range budgets {
		sts[i] = b.Status(at, a.measure(b, at))
	}
	return sts
}

// Settle implements ports.BudgetLedger.
func (l *BudgetLedger) Settle(ctx context.Context, keyID uuid.UUID, id string, actual pricing.Nanodollars, at time.Time) error {
	if err := budget.ValidAmount("a settled cost", actual); err != nil {
		return err
	}
	if at.IsZero() {
		return budgetInvalid("the request time is required")
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false)
	if a == nil {
		return nil
	}
	defer a.mu.Unlock()
	a.touch(now, at)
	if _, ok := a.done[id]; ok {
		return nil
	}
	a.release(id)
	a.add(at, int64(actual), budget.Level5m)
	a.done[id] = struct{}{}
	a.doneQ = append(a.doneQ, settled{id: id, expires: now + int64(l.retention)})
	return nil
}

// Extend implements ports.BudgetLedger.
func (l *BudgetLedger) Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error {
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false)
	if a == nil {
		return nil
	}
	defer a.mu.Unlock()
	a.touch(now, time.Time{})
	if r, ok := a.res[id]; ok {
		r.expires = max(r.expires, now+int64(lease))
		a.res[id] = r
	}
	return nil
}

// State implements ports.BudgetLedger.
func (l *BudgetLedger) State(ctx context.Context, keyID uuid.UUID, budgets []budget.Budget, at time.Time) ([]budget.Status, error) {
	if err := validBudgets(budgets, at); err != nil {
		return nil, err
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, false)
	if a == nil {
		return nil, ports.ErrUnseeded
	}
	defer a.mu.Unlock()
	a.touch(now, at)
	return a.statuses(budgets, at), nil
}

// Seed implements ports.BudgetLedger: each seed bucket is merged at the
// finest level the ledger still keeps for it (5-minute buckets within
// FineRetention, else its 15-minute bucket), and what it raises there it
// adds to the coarser levels and the total.
func (l *BudgetLedger) Seed(ctx context.Context, keyID uuid.UUID, h budget.History) error {
	if err := h.Validate(); err != nil {
		return err
	}
	now := l.clock.Now().UnixNano()
	a := l.lock(keyID, true)
	defer a.mu.Unlock()
	a.touch(now, h.AsOf)
	fine := make(map[int64]int64)
	for _, s := range h.Buckets {
		fine[budget.Level5m.Index(s.Start)] += int64(s.Amount)
	}
	quarters := make(map[int64]int64)
	for idx, v := range fine {
		if idx >= a.lo[budget.Level5m] {
			if d := v - a.lv[budget.Level5m][idx]; d > 0 {
				a.add(time.Unix(idx*300, 0), d, budget.Level5m)
			}
		} else {
			quarters[idx/3] += v // idx >= 0 for every time since 1970
		}
	}
	for q, v := range quarters {
		if q < a.lo[budget.Level15m] {
			continue // past retention: only the total holds it
		}
		if d := v - a.lv[budget.Level15m][q]; d > 0 {
			a.add(time.Unix(q*900, 0), d, budget.Level15m)
		}
	}
	a.total = max(a.total, int64(h.Total))
	return nil
}

// Reset implements ports.BudgetLedger.
func (l *BudgetLedger) Reset(ctx context.Context, keyID uuid.UUID) error {
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

// Sweep drops expired reservations and settlements of every key, and keys
// idle for DefaultBudgetIdleTTL that hold no reservation. The sweeper
// started by WithSweepInterval calls it.
func (l *BudgetLedger) Sweep() {
	now := l.clock.Now().UnixNano()
	type entry struct {
		id uuid.UUID
		a  *spendAccount
	}
	var accs []entry
	for i := range l.shards {
		sh := &l.shards[i]
		accs = accs[:0]
		sh.mu.RLock()
		for id, a := range sh.accs {
			accs = append(accs, entry{id, a})
		}
		sh.mu.RUnlock()
		for _, e := range accs {
			e.a.mu.Lock()
			e.a.pruneLeases(now)
			idle := e.a.idle(now, l.idle)
			e.a.mu.Unlock()
			if !idle {
				continue
			}
			// Nobody holds an account's mutex while waiting for its shard's,
			// so taking both in this order cannot deadlock.
			sh.mu.Lock()
			e.a.mu.Lock()
			if sh.accs[e.id] == e.a && e.a.idle(now, l.idle) {
				delete(sh.accs, e.id)
				e.a.dead = true
			}
			e.a.mu.Unlock()
			sh.mu.Unlock()
		}
	}
}

// idle reports whether the account may be forgotten. a.mu is held.
func (a *spendAccount) idle(now int64, ttl time.Duration) bool {
	return len(a.res) == 0 && now-a.touched >= int64(ttl)
}

func budgetInvalid(msg string) error { return domain.Invalidf("%s", msg) }
