// Package ports declares the interfaces the domain needs from the outside
// world. (In some hexagonal codebases "ports" means the HTTP handlers; here it
// means the driven side only: stores, ledgers, limiters, clocks.) Adapters in
// adapters/ implement them, and each carries a compile-time assertion such as
// `var _ ports.KeyStore = (*Store)(nil)`.
package ports

import (
	"context"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// KeyStore persists proxy keys. Deleted keys are kept (soft delete) so their
// usage history stays auditable; lookups by hash never return them as usable.
type KeyStore interface {
	// CreateKey inserts k. A duplicate hash or id is an ErrConflict.
	CreateKey(ctx context.Context, k domain.APIKey) error
	// GetKey returns a key by id, ErrNotFound if absent or deleted.
	GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error)
	// GetKeyByHash returns a key by its hash, ErrNotFound if absent. Deleted
	// keys may be returned with DeletedAt set.
	GetKeyByHash(ctx context.Context, hash string) (domain.APIKey, error)
	// ListKeys returns non-deleted keys, newest first, at most f.Limit.
	ListKeys(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error)
	// UpdateKey writes every mutable field of k (name, description, hash,
	// prefix, token_limit, tier, is_active, expires_at, allowed_ips,
	// allowed_domains, allowed_models, budgets, updated_at), but only if the
	// stored key's updated_at still equals prevUpdatedAt (compared at
	// microsecond precision), i.e. nobody changed it since the caller read
	// it. Otherwise it writes
	// nothing and returns ErrStale (errors.Is works) if the key still
	// exists, an ErrNotFound-kind error if it is absent or deleted. Callers
	// re-read and retry on ErrStale; k.UpdatedAt should be later than
	// prevUpdatedAt so the next writer sees the change.
	UpdateKey(ctx context.Context, k domain.APIKey, prevUpdatedAt time.Time) error
	// DeleteKey marks the key deleted at the given time. ErrNotFound if absent.
	DeleteKey(ctx context.Context, id uuid.UUID, at time.Time) error
}

// ErrStale is KeyStore.UpdateKey's answer when the key changed after the
// caller read it: a lost update was prevented, and the caller should re-read
// and re-apply its change.
var ErrStale = &domain.Error{Kind: domain.KindConflict, Reason: domain.ReasonStale, Message: "the API key was changed concurrently; retry"}

// TierStore persists rate-limit tiers.
type TierStore interface {
	ListTiers(ctx context.Context) ([]domain.Tier, error)
	GetTier(ctx context.Context, name string) (domain.Tier, error)
	// UpsertTier creates or replaces the tier named t.Name.
	UpsertTier(ctx context.Context, t domain.Tier) error
	// DeleteTier removes a tier; ErrConflict while any non-deleted key uses it,
	// checked atomically with the delete.
	DeleteTier(ctx context.Context, name string) error
	// SeedTiers inserts tiers only if the tier table is empty, so the
	// database stays authoritative after the first start.
	SeedTiers(ctx context.Context, tiers []domain.Tier) error
}

// UsageStore persists usage records and answers usage queries.
type UsageStore interface {
	// InsertUsage writes a batch of records in one transaction, together with
	// the aggregates they change (keys.tokens_used, keys.last_used_at, the
	// daily, monthly and hourly rollups). A record whose RequestID is already
	// stored is skipped and counted nowhere, so retried batches never
	// double-count.
	InsertUsage(ctx context.Context, recs []domain.UsageRecord) error
	// UsageTotals sums usage over [q.From, q.To), grouped per q.GroupBy.
	// Grouped by key, each group carries the key's name (KeyName).
	UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error)
	// UsageLogs returns request records, newest first.
	UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error)
	// UsageSeries returns the usage of every key over [q.From, q.To) per
	// hour or per UTC day (the sum of its hours), ascending: only the
	// hours or days that have records. A q that fails Validate is an
	// ErrInvalid.
	UsageSeries(ctx context.Context, q domain.SeriesQuery) ([]domain.SeriesPoint, error)
}

// ObjectStore records which proxy key owns each upstream object (message
// batch, file) created through the relay.
type ObjectStore interface {
	// PutObject records o. Recording the same kind and id again for the
	// same key is a no-op; for another key it is an ErrConflict (the first
	// owner stays).
	PutObject(ctx context.Context, o domain.OwnedObject) error
	// GetObject returns the object, ErrNotFound if the relay never recorded it.
	GetObject(ctx context.Context, kind domain.ObjectKind, id string) (domain.OwnedObject, error)
	// OwnedAmong returns those of ids that keyID owns (for filtering an
	// upstream listing), in no particular order.
	OwnedAmong(ctx context.Context, kind domain.ObjectKind, keyID uuid.UUID, ids []string) ([]string, error)
	// UnsettledBatches returns batches whose SettledAt is unset and whose
	// PollAfter is not after now, oldest first, at most limit.
	UnsettledBatches(ctx context.Context, now time.Time, limit int) ([]domain.OwnedObject, error)
	// SetBatchPollAfter postpones the batch's next reconciliation.
	SetBatchPollAfter(ctx context.Context, id string, at time.Time) error
	// MarkBatchSettled sets the batch's SettledAt. ErrNotFound if absent.
	MarkBatchSettled(ctx context.Context, id string, at time.Time) error
}

// Store is everything the relay persists, behind one connection.
type Store interface {
	KeyStore
	TierStore
	UsageStore
	ObjectStore
	SpendStore
	PriceStore
	UsageRepricer
	UpstreamStore
	Ping(ctx context.Context) error
	io.Closer
}

// KeyLookup resolves a key hash on the proxy hot path; typically a cache in
// front of KeyStore.GetKeyByHash.
type KeyLookup interface {
	LookupKey(ctx context.Context, hash string) (domain.APIKey, error)
	// Invalidate drops any cached entry for the key, so a disable, delete or
	// rotate takes effect at once on this replica.
	Invalidate(id uuid.UUID)
}

// QuotaLedger holds each limited key's token ledger: settled usage plus
// in-flight reservations, which expire after their lease.
type QuotaLedger interface {
	// Reserve atomically admits estimate tokens for reservation id if
	// used+reserved+estimate <= limit. On refusal it returns an error of kind
	// KindQuotaExceeded and the state it saw. seedUsed is the key's persisted
	// tokens_used: it initialises a ledger that has no entry yet, and raises
	// the ledger's used figure when it is higher (usage the ledger did not
	// settle itself: recorded while the key had no limit, by the batch
	// reconciler, before a restart). It never lowers it.
	Reserve(ctx context.Context, keyID uuid.UUID, id string, estimate, limit, seedUsed int64, lease time.Duration) (domain.QuotaState, error)
	// Settle replaces reservation id with actual used tokens. Settling an
	// unknown or expired reservation still adds actual. Idempotent per id.
	Settle(ctx context.Context, keyID uuid.UUID, id string, actual int64) error
	// Extend moves reservation id's expiry to lease from now, for a
	// request still running (a long stream) whose reservation must keep
	// holding quota. An unknown, expired or settled reservation is left
	// alone (nil error).
	Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error
	// State reports the key's ledger. seedUsed as for Reserve.
	State(ctx context.Context, keyID uuid.UUID, seedUsed int64) (domain.QuotaState, error)
	// Reset forgets the key's ledger (after a key is deleted, or its usage is
	// changed by an operator), so it is re-seeded from storage.
	Reset(ctx context.Context, keyID uuid.UUID) error
}

// RateLimiter is a GCRA/sliding-window limiter keyed by an opaque string.
type RateLimiter interface {
	// Allow takes cost units from key's budget if they are available.
	Allow(ctx context.Context, key string, limit domain.Limit, cost int64) (domain.RateDecision, error)
	// Peek reports the budget without taking from it.
	Peek(ctx context.Context, key string, limit domain.Limit) (domain.RateDecision, error)
	// Charge takes cost units even past the limit (tokens known only after a
	// response); later Allow calls wait for the debt to drain.
	Charge(ctx context.Context, key string, limit domain.Limit, cost int64) error
}

// ConcurrencyLimiter caps in-flight requests per key.
type ConcurrencyLimiter interface {
	// Acquire takes a slot if fewer than max are held. The slot expires after
	// lease if never released (a crashed replica). ok=false means full.
	Acquire(ctx context.Context, key string, max int, lease time.Duration) (release func(), ok bool, err error)
	// InFlight reports how many slots key holds now.
	InFlight(ctx context.Context, key string) (int, error)
}

// UsageRecorder takes finished usage records off the request path.
type UsageRecorder interface {
	// Record enqueues rec; it never blocks on storage. It fails with
	// KindOverloaded when the queue is full.
	Record(ctx context.Context, rec domain.UsageRecord) error
	// Saturated reports whether the queue is full; admission refuses new
	// proxied requests while it is.
	Saturated() bool
}

// TokenEstimator bounds the input tokens of a request body the relay
// accepted (Messages or OpenAI chat format, or one batch request's params).
type TokenEstimator interface {
	// InputBound is a cheap bound that never undercounts: it tokenises
	// nothing, so it is fast and linear, and it is loose (every text byte
	// may be a token).
	InputBound(body []byte) int64
	// InputEstimate is tighter: the text is tokenised (up to a bounded
	// amount, the rest counted as in InputBound) and a margin for the
	// tokenizer's difference from Claude's is added. It costs about a
	// microsecond per 8 bytes of text, so the estimates running at once
	// are bounded relay-wide: one that finds no free slot waits for one
	// until ctx ends, and then returns an error of kind KindOverloaded.
	InputEstimate(ctx context.Context, body []byte) (int64, error)
}

// RequestParser reads the fields of a request body that decide a
// reservation, strictly: a body another parser could read differently
// (duplicate keys, odd types) is a KindInvalid error.
type RequestParser interface {
	ParseRequest(body []byte, f domain.WireFormat) (domain.CallRequest, error)
	ParseBatch(body []byte) ([]domain.BatchItem, error)
}

// BatchUpstream reads Message Batches from the upstream, for the
// reconciler that settles their usage.
type BatchUpstream interface {
	// BatchEnded reports whether the batch has finished processing; an
	// ErrNotFound-kind error when the upstream does not know it.
	BatchEnded(ctx context.Context, id string) (bool, error)
	// BatchResults calls fn with each result of an ended batch.
	BatchResults(ctx context.Context, id string, fn func(domain.BatchResult) error) error
}

// Clock tells the time; tests substitute a fake one.
type Clock interface {
	Now() time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time { return time.Now() }

var _ Clock = SystemClock{}

// LoginCounter is one counter of the admin login throttle. Its meaning is
// the policy's (domain/admin); a LoginThrottle store keeps it as it is.
type LoginCounter struct {
	Count    float64   // failures (a budget's count leaks away over time)
	At       time.Time // when Count last changed
	InFlight int       // attempts admitted and still being checked
	Lease    time.Time // InFlight stops counting then (a replica died mid-check)
}

// LoginCounterUpdate replaces the counter under Key.
type LoginCounterUpdate struct {
	Key     string
	Counter LoginCounter
	// TTL is how long the counter is kept; zero or less deletes it.
	TTL time.Duration
}

// LoginThrottle stores the admin login throttle's counters, for one replica
// or shared by several. It decides nothing: it makes each of the policy's
// decisions atomic, and forgets a counter once its TTL has passed. A store
// with bounded memory may also forget the least recently used counters
// early.
type LoginThrottle interface {
	// Update reads the counters under keys (the zero LoginCounter for an
	// absent or expired one), calls decide with them and the store's time,
	// and writes the updates decide returns: all of them or, with an error,
	// none, and so that no other Update of any of keys falls in between.
	// decide may be called more than once (a shared store retries after a
	// conflict), so it must only compute; its updates name keys from keys.
	Update(ctx context.Context, keys []string, decide func(now time.Time, cur []LoginCounter) []LoginCounterUpdate) error
}
