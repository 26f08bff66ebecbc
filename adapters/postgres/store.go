// Package postgres runs the relay's store (adapters/sqlstore) on PostgreSQL,
// with a pgx v5 pool and sqlc-generated queries (package pgdb). What is
// PostgreSQL's own lives here: connecting and migrating, the COPY-based
// batch insert of usage, the advisory lock that serialises tier seeding and
// the meaning of its error codes.
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/adapters/sqlstore"
	"github.com/relaystation/relay/migrations"
)

// connectTimeout bounds the first contact with the server, so an unreachable
// database fails the start quickly and clearly instead of hanging.
const connectTimeout = 10 * time.Second

// Store is the relay's store on PostgreSQL.
type Store = sqlstore.Store

// Open connects to the database at url, applies pending migrations and
// returns the store. The caller must Close it.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	if _, err := migrateWith(ctx, pool, migrations.Up, log); err != nil {
		pool.Close()
		return nil, err
	}
	return New(pool, log), nil
}

// New wraps an existing, already migrated pool. Close closes the pool.
func New(pool *pgxpool.Pool, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	q := bind(pgdb.New(pool))
	return sqlstore.New(&engine{pool: pool, log: log}, dialect{}, q, q)
}

// bind binds the queries of one pool or transaction for the Store.
func bind(q *pgdb.Queries) sqlstore.Queries {
	return sqlstore.Queries{
		Keys: sqlstore.BindKeys(q), Tiers: sqlstore.BindTiers(q), Usage: sqlstore.BindUsage(q), Totals: sqlstore.BindTotals(q),
		Costs: sqlstore.BindCosts(q), Objects: sqlstore.BindObjects(q), Prices: sqlstore.BindPrices(q),
		Upstreams: sqlstore.BindUpstreams(q),
	}
}

// Migrate runs `relay migrate <direction>` against the database at url and
// describes the outcome.
func Migrate(ctx context.Context, url, direction string, log *slog.Logger) (string, error) {
	pool, err := connect(ctx, url)
	if err != nil {
		return "", err
	}
	defer pool.Close()
	return migrateWith(ctx, pool, direction, log)
}

func connect(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("parse PostgreSQL URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("create PostgreSQL pool: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d/%s: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return pool, nil
}

func migrateWith(ctx context.Context, pool *pgxpool.Pool, direction string, log *slog.Logger) (string, error) {
	// Closing this *sql.DB leaves the pool open.
	db := stdlib.OpenDBFromPool(pool)
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		_ = db.Close()
		return "", fmt.Errorf("prepare PostgreSQL migrations: %w", err)
	}
	return sqlstore.Migrate(ctx, "PostgreSQL", migrations.Postgres, "postgres", drv, direction, log)
}

// engine is PostgreSQL's part of the Store.
type engine struct {
	pool *pgxpool.Pool
	log  *slog.Logger
}

var _ sqlstore.Engine = (*engine)(nil)

// Tx runs fn in a transaction at the default READ COMMITTED level.
func (e *engine) Tx(ctx context.Context, fn func(sqlstore.Queries) error) error {
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error { return fn(bind(pgdb.New(tx))) })
}

// SeedTx holds a transaction-scoped advisory lock, so replicas that start
// together take turns: the second sees the tiers the first inserted.
func (e *engine) SeedTx(ctx context.Context, fn func(sqlstore.Queries) error) error {
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		q := pgdb.New(tx)
		if err := q.LockTierSeeding(ctx); err != nil {
			return fmt.Errorf("seed tiers: %w", err)
		}
		return fn(bind(q))
	})
}

// UsageTx takes the row locks of the records' keys first, in id order, as
// applyUsageBatch does: a usage batch then waits for the whole rewrite of
// its keys' usage or goes first, and the two never hold rollup rows the
// other wants.
func (e *engine) UsageTx(ctx context.Context, requestIDs []string, fn func(sqlstore.Queries) error) error {
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		q := pgdb.New(tx)
		if err := q.LockKeysOfUsage(ctx, requestIDs); err != nil {
			return fmt.Errorf("lock the keys of usage records: %w", err)
		}
		return fn(bind(q))
	})
}

// Ping checks that the database answers.
func (e *engine) Ping(ctx context.Context) error {
	if err := e.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// Close closes the pool.
func (e *engine) Close() error {
	e.pool.Close()
	return nil
}
