package main

import (
	"context"
	"fmt"

	"github.com/relaystation/relay/adapters/storage"
)

func migrateCmd(ctx context.Context, args []string, e env) error {
	if len(args) != 1 || (args[0] != "up" && args[0] != "down" && args[0] != "version") {
		return usageError{"usage: relay migrate up|down|version"}
	}
	cfg, _, err := loadConfig(e)
	if err != nil {
		return err
	}
	log, _ := newLogger(cfg.Log, e.stderr)
	out, err := storage.Migrate(ctx, cfg.DatabaseURL, cfg.DataDir, args[0], log)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", args[0], err)
	}
	fmt.Fprintln(e.stdout, out)
	return nil
}
