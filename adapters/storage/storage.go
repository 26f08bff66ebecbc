// Package storage chooses the storage adapter from the configuration:
// embedded SQLite when no database URL is set, PostgreSQL for a postgres://
// URL.
package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/sqlite"
	"github.com/relaystation/relay/ports"
)

// SQLiteFile is the database file name inside the data directory.
const SQLiteFile = "relay.db"

// supported names the accepted DATABASE_URL forms, for error messages.
const supported = "leave DATABASE_URL empty for embedded SQLite, or use a postgres:// or postgresql:// URL"

// Open opens the store databaseURL selects, applying pending migrations. An
// empty databaseURL means SQLite at dataDir/relay.db, creating dataDir
// (mode 0700) if needed.
func Open(ctx context.Context, databaseURL, dataDir string, log *slog.Logger) (ports.Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine, target, err := resolve(databaseURL, dataDir)
	if err != nil {
		return nil, err
	}
	switch engine {
	case enginePostgres:
		s, err := postgres.Open(ctx, target, log)
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		log.Info("storage ready", "engine", "postgres")
		return s, nil
	default:
		s, err := sqlite.Open(ctx, target, log)
		if err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
		log.Info("storage ready", "engine", "sqlite", "path", target)
		return s, nil
	}
}

// Migrate runs `relay migrate <direction>` (up, down or version) on the
// database databaseURL selects, and describes the outcome. "down" rolls back
// one migration.
func Migrate(ctx context.Context, databaseURL, dataDir, direction string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	engine, target, err := resolve(databaseURL, dataDir)
	if err != nil {
		return "", err
	}
	var out string
	if engine == enginePostgres {
		out, err = postgres.Migrate(ctx, target, direction, log)
	} else {
		out, err = sqlite.Migrate(ctx, target, direction, log)
	}
	if err != nil {
		return "", fmt.Errorf("migrate %s: %w", direction, err)
	}
	return string(engine) + ": " + out, nil
}

type engine string

const (
	engineSQLite   engine = "sqlite"
	enginePostgres engine = "postgres"
)

// resolve picks the engine and its connection target: a URL for
// PostgreSQL, a file path for SQLite (whose directory it creates).
func resolve(databaseURL, dataDir string) (engine, string, error) {
	databaseURL = strings.TrimSpace(databaseURL)
	if databaseURL == "" {
		if dataDir == "" {
			return "", "", errors.New("storage: DATA_DIR must be set when DATABASE_URL is empty (embedded SQLite)")
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return "", "", fmt.Errorf("storage: create data directory: %w", err)
		}
		return engineSQLite, filepath.Join(dataDir, SQLiteFile), nil
	}
	scheme, _, ok := strings.Cut(databaseURL, "://")
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		if ok {
			return enginePostgres, databaseURL, nil
		}
	}
	// Never echo the URL: it may carry a password.
	if !ok || strings.ContainsAny(scheme, "@/:") {
		return "", "", fmt.Errorf("storage: DATABASE_URL is not a URL: %s", supported)
	}
	return "", "", fmt.Errorf("storage: unsupported DATABASE_URL scheme %q: %s", scheme, supported)
}
