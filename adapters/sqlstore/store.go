// Package sqlstore implements the relay's storage ports once for every SQL
// engine. An engine package (adapters/postgres, adapters/sqlite) keeps only
// what differs there: opening and migrating the database, its pool settings,
// its transactions, the batch insert of usage, the tier-seeding lock and the
// meaning of its driver's errors (a Dialect). Everything else is here: the
// mapping between rows and domain values, the not-found, stale and conflict
// rules, tier semantics, the routing of totals queries and the validation of
// what gets stored.
//
// Each engine's sqlc code is bound with BindKeys, BindTiers, BindUsage,
// BindTotals, BindCosts, BindObjects, BindPrices and BindUpstreams. Their type
// parameters are inferred from the engine's generated *Queries, and each is
// constrained to a shape, such as keyRow: an unnamed struct type listing the
// fields that both engines' sqlc code generates (sql/sqlc.yaml's overrides
// give both the same Go types; the one difference left, how a list column is
// held, is the type parameter L). Being unnamed, a shape converts to and from each engine's
// generated struct, and an engine whose generated code drifts from it fails
// to compile where it binds. A new table is therefore its two SQL files, one
// file here and its Bind call in each engine's bind function.
package sqlstore

import (
	"context"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Engine is what a database does for the Store beyond its queries.
type Engine interface {
	// Tx runs fn in one write transaction on queries bound to it. An error
	// from fn rolls the transaction back and is returned as it is.
	Tx(ctx context.Context, fn func(Queries) error) error
	// SeedTx is Tx for seeding tiers and upstreams: no two run at once,
	// across processes, so that replicas starting together seed an empty
	// table once.
	SeedTx(ctx context.Context, fn func(Queries) error) error
	// UsageTx is Tx for rewriting stored usage (the records named by
	// requestIDs, and their rollup rows): it first takes the locks a usage
	// batch of the records' keys takes, in the same order, so that it
	// queues behind concurrent batches instead of deadlocking with them.
	UsageTx(ctx context.Context, requestIDs []string, fn func(Queries) error) error
	// InsertUsage writes a non-empty batch and its aggregates, cost sums
	// included; see ports.UsageStore. Stored text goes through Clean,
	// iterations through EncodeIterations, cost detail through
	// EncodeCostDetail.
	InsertUsage(ctx context.Context, recs []domain.UsageRecord) error
	Ping(ctx context.Context) error
	Close() error
}

// Queries are one engine's queries, bound to a pool or a transaction.
type Queries struct {
	Keys      KeyQueries
	Tiers     TierQueries
	Usage     UsageQueries
	Totals    TotalsQueries
	Costs     CostQueries
	Objects   ObjectQueries
	Prices    PriceQueries
	Upstreams UpstreamQueries
}

// Store implements ports.Store over an Engine.
type Store struct {
	engine  Engine
	dialect Dialect
	// read serves plain reads. write serves writes and the reads that
	// decide what a write's outcome means (which row won, whether a key
	// that refused an update still exists). On PostgreSQL both are the one
	// pool; on SQLite read is the reader pool, which never waits for the
	// writer.
	read, write Queries
}

var _ ports.Store = (*Store)(nil)

// New returns the Store over e. An engine with one pool passes the same
// Queries as read and write.
func New(e Engine, d Dialect, read, write Queries) *Store {
	return &Store{engine: e, dialect: d, read: read, write: write}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.engine.Ping(ctx) }

// Close closes the engine's pools.
func (s *Store) Close() error { return s.engine.Close() }
