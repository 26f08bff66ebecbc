// Package sqlite implements the relay's storage ports on an embedded SQLite
// database (modernc.org/sqlite: pure Go, no cgo) with sqlc-generated queries
// (package sqlitedb).
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

	"github.com/golang-migrate/migrate/v4"
	sqlitemigrate "github.com/golang-migrate/migrate/v4/database/sqlite"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/migrations"
	"github.com/relaystation/relay/ports"
)

// readConns bounds the read pool; SQLite readers scale with cores, and this
// box has few.
const readConns = 4

// Store implements ports.Store on SQLite.
type Store struct {
	write *sql.DB
	read  *sql.DB
	wq    *sqlitedb.Queries
	rq    *sqlitedb.Queries
	log   *slog.Logger
}

var _ ports.Store = (*Store)(nil)

// Open opens (creating if needed) the database file at path, applies pending
// migrations and returns the store. The caller must Close it.
func Open(ctx context.Context, path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
	return &Store{
		write: write,
		read:  read,
		wq:    sqlitedb.New(write),
		rq:    sqlitedb.New(read),
		log:   log,
	}, nil
}

// Migrate runs `relay migrate <direction>` against the database file at
// path and describes the outcome.
func Migrate(ctx context.Context, path, direction string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// The migrate driver closes the *sql.DB it is given, so it gets its own.
	db, err := openDB(ctx, path, true)
	if err != nil {
		return "", err
	}
	src, err := iofs.New(migrations.SQLite, "sqlite")
	if err != nil {
		_ = db.Close()
		return "", fmt.Errorf("load embedded SQLite migrations: %w", err)
	}
	drv, err := sqlitemigrate.WithInstance(db, &sqlitemigrate.Config{})
	if err != nil {
		_ = src.Close()
		_ = db.Close()
		return "", fmt.Errorf("prepare SQLite migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "sqlite", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return "", fmt.Errorf("prepare SQLite migrations: %w", err)
	}
	defer func() {
		if serr, derr := m.Close(); serr != nil || derr != nil {
			log.Warn("close migrator", "source_err", serr, "db_err", derr)
		}
	}()
	out, err := migrations.Apply(ctx, m, direction, log)
	if err != nil {
		return "", fmt.Errorf("SQLite migrations: %w", err)
	}
	return out, nil
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
	if writer {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
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

// Ping checks that both pools answer.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.read.PingContext(ctx); err != nil {
		return fmt.Errorf("ping SQLite: %w", err)
	}
	if err := s.write.PingContext(ctx); err != nil {
		return fmt.Errorf("ping SQLite: %w", err)
	}
	return nil
}

// Close closes both pools.
func (s *Store) Close() error {
	return errors.Join(s.read.Close(), s.write.Close())
}

// inTx runs fn in one write transaction.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx, q *sqlitedb.Queries) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin SQLite transaction: %w", err)
	}
	if err := fn(tx, s.wq.WithTx(tx)); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit SQLite transaction: %w", err)
	}
	return nil
}
