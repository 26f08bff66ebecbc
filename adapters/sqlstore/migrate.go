package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"github.com/relaystation/relay/migrations"
)

// Migrate runs `relay migrate <direction>` against drv, an engine's
// golang-migrate driver, with its embedded migrations (folder dir of
// fsys), and describes the outcome. It closes drv. engine names the
// database in messages; log may be nil.
func Migrate(ctx context.Context, engine string, fsys fs.FS, dir string, drv database.Driver, direction string, log *slog.Logger) (string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := iofs.New(fsys, dir)
	if err != nil {
		_ = drv.Close()
		return "", fmt.Errorf("load embedded %s migrations: %w", engine, err)
	}
	m, err := migrate.NewWithInstance("iofs", src, engine, drv)
	if err != nil {
		_ = src.Close()
		_ = drv.Close()
		return "", fmt.Errorf("prepare %s migrations: %w", engine, err)
	}
	defer func() {
		if serr, derr := m.Close(); serr != nil || derr != nil {
			log.Warn("close migrator", "source_err", serr, "db_err", derr)
		}
	}()
	out, err := migrations.Apply(ctx, m, direction, log)
	if err != nil {
		return "", fmt.Errorf("%s migrations: %w", engine, err)
	}
	return out, nil
}
