package ports

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
)

// BudgetLedger holds each key's money spend, for its money budgets
// (domain/budget): settled spend in buckets, plus reservations of requests
// in flight, which expire after their lease.
//
// The ledger records spend per key whatever budgets the key has, in the
// buckets budget.Cover and budget.RollingRange read (5-minute, 15-minute,
// hour and UTC-day buckets for the last budget.CoarseRetention, 5-minute
// ones for budget.FineRetention, and a running total). Budgets are passed
// to each call, so adding, removing or changing one takes effect at once
// and is measured against the spend already in its window.
//
// Two clocks are kept apart. Windows follow at, the caller's time of the
// request: the time its usage record is stored with (UsageRecord.Time), so
// the ledger buckets spend as storage does and a seed agrees with it.
// Leases and settle retention follow the ledger's own clock (the Redis
// server's, for a shared ledger), so a replica whose clock is off cannot
// expire another's reservations.
//
// # Seeding, and what the caller does after a restart
//
// A ledger holds only keys it was seeded with. Reserve and State answer
// ErrUnseeded for any other key. The caller then reads the key's persisted
// spend (budget.History: the costs of its stored usage records per
// 5-minute bucket for the last budget.HistorySpan, and their total), calls
// Seed, and asks again. Settle on a key the ledger does not hold does
// nothing: that usage reaches storage and comes back through the seed. So
// the caller settles every request of every key, with or without budgets;
// the keys never seeded cost nothing, and a key seeded once stays exact
// when its budgets change. A ledger forgets a key after it has been idle
// (memory: DefaultBudgetIdleTTL; Redis: WithIdleTTL), after Reset, and
// (memory) on restart; the next request seeds it again.
//
// Seed merges by maximum, bucket by bucket, and never lowers anything, as
// the token ledger's seedUsed does: the larger figure is never an
// overcount, since everything the ledger settles is persisted too. It can
// undercount a bucket by the smaller of two parts, usage settled here but
// not yet persisted when the history was read and usage persisted but not
// settled here (in flight at a restart), so seed when the usage writer has
// drained what it can; a later Seed tops buckets up again.
type BudgetLedger interface {
	// Reserve holds amount in every window of budgets at once, for
	// reservation id, if it fits each of them (used + reserved + amount <=
	// limit), or in none. The reservation belongs to the windows holding
	// at: it stops counting in a window that has ended. On refusal the
	// error is of kind KindQuotaExceeded, from budget.Refuse, wrapping a
	// *budget.Refusal with every window that was short. The statuses are
	// the windows as the ledger saw them, in the order of budgets (after
	// the reservation, when it was made). An id already held or settled
	// changes nothing and succeeds, so a retried Reserve is safe.
	Reserve(ctx context.Context, keyID uuid.UUID, id string, budgets []budget.Budget, amount pricing.Nanodollars, at time.Time, lease time.Duration) ([]budget.Status, error)
	// Settle replaces reservation id with the actual cost, recorded in the
	// buckets holding at (the request's time, as given to Reserve).
	// Settling an unknown or expired reservation still adds actual.
	// Idempotent per id while the ledger remembers it (a retention of
	// minutes). A key the ledger does not hold is left alone.
	Settle(ctx context.Context, keyID uuid.UUID, id string, actual pricing.Nanodollars, at time.Time) error
	// Extend moves reservation id's expiry to lease from now, for a
	// request still running. An unknown, expired or settled reservation is
	// left alone (nil error).
	Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error
	// State reports the windows of budgets holding at, in their order.
	State(ctx context.Context, keyID uuid.UUID, budgets []budget.Budget, at time.Time) ([]budget.Status, error)
	// Seed starts the key's ledger from its persisted spend, or tops an
	// existing one up: each bucket and the total become the larger of the
	// ledger's figure and the history's (see the type's doc).
	Seed(ctx context.Context, keyID uuid.UUID, h budget.History) error
	// Reset forgets the key (after it is deleted, or an operator changed
	// its usage), so that it is seeded again.
	Reset(ctx context.Context, keyID uuid.UUID) error
}

// ErrUnseeded is BudgetLedger's answer for a key it does not hold: the
// caller seeds it and asks again. It is no domain error: one that escapes
// is a bug, answered as an internal error.
var ErrUnseeded = errors.New("budget ledger: key not seeded")
