// Package postgres implements the relay's storage ports on PostgreSQL, with a
// pgx v5 pool and sqlc-generated queries (package pgdb).
package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/migrations"
	"github.com/relaystation/relay/ports"
)

// connectTimeout bounds the first contact with the server, so an unreachable
// database fails the start quickly and clearly instead of hanging.
const connectTimeout = 10 * time.Second

// Store implements ports.Store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	q    *pgdb.Queries
	log  *slog.Logger
}

var _ ports.Store = (*Store)(nil)

// Open connects to the database at url, applies pending migrations and
// returns the store. The caller must Close it.
func Open(ctx context.Context, url string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
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
	return &Store{pool: pool, q: pgdb.New(pool), log: log}
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

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", err)
	}
	return nil
}

// Close closes the pool.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
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
	src, err := iofs.New(migrations.Postgres, "postgres")
	if err != nil {
		return "", fmt.Errorf("load embedded PostgreSQL migrations: %w", err)
	}
	// Closing this *sql.DB leaves the pool open.
	db := stdlib.OpenDBFromPool(pool)
	drv, err := pgxmigrate.WithInstance(db, &pgxmigrate.Config{})
	if err != nil {
		_ = src.Close()
		_ = db.Close()
		return "", fmt.Errorf("prepare PostgreSQL migrations: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return "", fmt.Errorf("prepare PostgreSQL migrations: %w", err)
	}
	defer func() {
		if serr, derr := m.Close(); serr != nil || derr != nil {
			log.Warn("close migrator", "source_err", serr, "db_err", derr)
		}
	}()
	out, err := migrations.Apply(ctx, m, direction, log)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL migrations: %w", err)
	}
	return out, nil
}
