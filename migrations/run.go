package migrations

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/golang-migrate/migrate/v4"
)

// Directions accepted by Apply, and by `relay migrate`.
const (
	Up      = "up"      // apply every pending migration
	Down    = "down"    // roll back the most recent migration only
	Version = "version" // report the current version
)

// Apply runs direction against m and describes the outcome for an operator.
// m is not closed. A dirty database (a migration that failed half-way) is an
// error naming the version to fix; it is never forced automatically.
func Apply(ctx context.Context, m *migrate.Migrate, direction string, log *slog.Logger) (string, error) {
	if log != nil {
		m.Log = migrateLogger{log: log}
	}
	stop := context.AfterFunc(ctx, func() {
		select {
		case m.GracefulStop <- true:
		default:
		}
	})
	defer stop()

	before, dirty, err := version(m)
	if err != nil {
		return "", err
	}
	if dirty {
		return "", fmt.Errorf("database is dirty at migration version %d: a migration failed half-way; repair the schema by hand, then force the version with the migrate CLI", before)
	}

	switch direction {
	case Version:
		if before == 0 {
			return "no migrations applied", nil
		}
		return fmt.Sprintf("version %d", before), nil
	case Up:
		err = m.Up()
	case Down:
		if before == 0 {
			return "no migrations applied, nothing to roll back", nil
		}
		err = m.Steps(-1)
	default:
		return "", fmt.Errorf("unknown migrate direction %q: use %s, %s or %s", direction, Up, Down, Version)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return "", fmt.Errorf("migrate %s from version %d: %w", direction, before, err)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("migrate %s: %w", direction, err)
	}
	after, _, err := version(m)
	if err != nil {
		return "", err
	}
	if after == before {
		return fmt.Sprintf("no change, at version %d", after), nil
	}
	return fmt.Sprintf("migrated %s from version %d to %d", direction, before, after), nil
}

// version returns the applied version, 0 when none.
func version(m *migrate.Migrate) (uint, bool, error) {
	v, dirty, err := m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read migration version: %w", err)
	}
	return v, dirty, nil
}

type migrateLogger struct{ log *slog.Logger }

func (l migrateLogger) Printf(format string, v ...any) {
	l.log.Info("migrate: " + strings.TrimSpace(fmt.Sprintf(format, v...)))
}

func (l migrateLogger) Verbose() bool { return false }
