// Package sqlite runs the relay's store (adapters/sqlstore) on an embedded
// SQLite database (modernc.org/sqlite: pure Go, no cgo) with sqlc-generated
// queries (package sqlitedb). What is SQLite's own lives here: opening and
// migrating the file, the pool settings, the batched insert of usage and
// the meaning of its error codes.
//
// Writes go through a pool of exactly one connection whose transactions
// start with BEGIN IMMEDIATE, so writers queue in Go instead of failing with
// "database is locked"; reads use a separate pool and, thanks to WAL, never
// wait for the writer.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	sqlitemigrate "github.com/golang-migrate/migrate/v4/database/sqlite"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/adapters/sqlstore"
	"github.com/relaystation/relay/migrations"
)

// readConns bounds the read pool; SQLite readers scale with cores, and this
// box has few.
const readConns = 4

// readCacheKiB is each reader's page cache. SQLite's default of 2 MiB
// holds little of a database with a million records, so the dashboard's
// totals re-read their pages through the file system on every call
// (summing 200,000 rollup rows: 0.39 s at the default, 0.26 s from a cache
// that holds them). The cache grows only as pages are read, so a small
// database costs no more memory than before.
const readCacheKiB = 32 * 1024

// Store is the relay's store on SQLite.
type Store = sqlstore.Store

// Open opens (creating if needed) the database file at path, applies pending
// migrations and returns the store. The caller must Close it.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if _, err := Migrate(ctx, path, migrations.Up, log); err != nil {
		return nil, err
	}
	write, err := openDB(ctx, path, true)
	if err != nil {
		return nil, err
	}
	read, err := openDB(ctx, path, false)
	if err != nil {
		_ = write.Close()
		return nil, err
	}
	e := &engine{write: write, read: read, stmts: newStmtCache(write)}
	return sqlstore.New(e, dialect{}, bind(sqlitedb.New(read)), bind(sqlitedb.New(write))), nil
}

// bind binds the queries of one pool or transaction for the Store.
func bind(q *sqlitedb.Queries) sqlstore.Queries {
	return sqlstore.Queries{
		Keys: sqlstore.BindKeys(q), Tiers: sqlstore.BindTiers(q), Usage: sqlstore.BindUsage(q), Totals: sqlstore.BindTotals(q),
		Costs: sqlstore.BindCosts(q), Objects: sqlstore.BindObjects(q), Prices: sqlstore.BindPrices(q),
		Upstreams: sqlstore.BindUpstreams(q),
	}
}

// Migrate runs `relay migrate <direction>` against the database file at
// path and describes the outcome.
func Migrate(ctx context.Context, path, direction string, log *slog.Logger) (string, error) {
	// The migrate driver closes the *sql.DB it is given, so it gets its own.
	db, err := openDB(ctx, path, true)
	if err != nil {
		return "", err
	}
	drv, err := sqlitemigrate.WithInstance(db, &sqlitemigrate.Config{})
	if err != nil {
		_ = db.Close()
		return "", fmt.Errorf("prepare SQLite migrations: %w", err)
	}
	return sqlstore.Migrate(ctx, "SQLite", migrations.SQLite, "sqlite", drv, direction, log)
}

// openDB opens a pool on path. The writer pool has one connection and
// immediate transactions; the reader pool refuses writes.
func openDB(ctx context.Context, path string, writer bool) (*sql.DB, error) {
	if path == "" {
		return nil, errors.New("open SQLite: empty database path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open SQLite: database path %q must not contain '?' or '#'", path)
	}
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(5000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(1)")
	// NORMAL is durable across application crashes in WAL mode; only an OS
	// crash or power loss can lose the last commits.
	q.Add("_pragma", "synchronous(NORMAL)")
	// A time.Time parameter (sqlstore.Time) is bound as the schema stores
	// times: integer microseconds since the epoch.
	q.Set("_time_integer_format", "unix_micro")
	if writer {
		q.Set("_txlock", "immediate")
		// A multi-row insert keeps a statement journal (to undo itself
		// alone); in memory it is not a temporary file written with a
		// pwrite per page: about a fifth of the usage writer's CPU. It is
		// bounded by the pages one batch touches.
		q.Add("_pragma", "temp_store(MEMORY)")
	} else {
		q.Add("_pragma", "query_only(1)")
		q.Add("_pragma", fmt.Sprintf("cache_size(%d)", -readCacheKiB))
	}
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	if writer {
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	} else {
		db.SetMaxOpenConns(readConns)
		db.SetMaxIdleConns(readConns)
	}
	// Connections keep their prepared statements and page cache; never
	// recycle them for age.
	db.SetConnMaxLifetime(0)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open SQLite database %s: %w", path, err)
	}
	return db, nil
}

// engine is SQLite's part of the Store: the writer pool of one connection
// and the reader pool.
type engine struct {
	write, read *sql.DB
	stmts       *stmtCache // the writer's statements, prepared once
}

var _ sqlstore.Engine = (*engine)(nil)

// Tx runs fn in an IMMEDIATE transaction on the writer.
func (e *engine) Tx(ctx context.Context, fn func(sqlstore.Queries) error) error {
	return e.inTx(ctx, func(_ sqlitedb.DBTX, q *sqlitedb.Queries) error { return fn(bind(q)) })
}

// SeedTx needs no lock of its own: the transaction is IMMEDIATE, so two
// processes cannot both see an empty table.
func (e *engine) SeedTx(ctx context.Context, fn func(sqlstore.Queries) error) error {
	return e.Tx(ctx, fn)
}

// UsageTx needs no locks of its own either: an IMMEDIATE transaction holds
// the database's one write lock, which every usage batch takes too.
func (e *engine) UsageTx(ctx context.Context, _ []string, fn func(sqlstore.Queries) error) error {
	return e.Tx(ctx, fn)
}

// Ping checks that both pools answer.
func (e *engine) Ping(ctx context.Context) error {
	if err := e.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping SQLite: %w", err)
	}
	if err := e.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping SQLite: %w", err)
	}
	return nil
}

// Close closes both pools.
func (e *engine) Close() error {
	e.stmts.close()
	return errors.Join(e.read.Close(), e.write.Close())
}

// inTx runs fn in one write transaction, its statements kept prepared
// (stmtCache).
func (e *engine) inTx(ctx context.Context, fn func(tx sqlitedb.DBTX, q *sqlitedb.Queries) error) error {
	tx, err := e.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin SQLite transaction: %w", err)
	}
	db := cachedTx{tx: tx, c: e.stmts}
	if err := fn(db, sqlitedb.New(db)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit SQLite transaction: %w", err)
	}
	if e.stmts.pending() {
		e.stmts.prepareNoted(context.WithoutCancel(ctx))
	}
	return nil
}
