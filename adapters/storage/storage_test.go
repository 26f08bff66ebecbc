package storage_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
)

var tables = []string{"api_keys", "rate_limit_tiers", "usage_records", "usage_daily", "owned_objects", "price_tables",
	"upstreams", "usage_daily_upstream", "usage_hourly", "usage_daily_global", "usage_monthly_key"}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestOpenSQLiteByDefault(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "nested", "data")
	s, err := storage.Open(ctx, "", dir, quiet())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatalf("data dir: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		t.Fatalf("data dir mode %o, want 700", perm)
	}
	if _, err := os.Stat(filepath.Join(dir, storage.SQLiteFile)); err != nil {
		t.Fatalf("database file: %v", err)
	}
	// Reopening an existing, migrated database is a no-op migration.
	must(t, s.SeedTiers(ctx, domain.DefaultTiers()))
	must(t, s.Close())
	s2, err := storage.Open(ctx, "", dir, quiet())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	tiers, err := s2.ListTiers(ctx)
	must(t, err)
	if len(tiers) != 2 {
		t.Fatalf("tiers after reopen: %+v", tiers)
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	for _, u := range []string{"mysql://root:secret@db/relay", "sqlite3:///tmp/x.db", "not a url", "root:secret@localhost"} {
		_, err := storage.Open(context.Background(), u, t.TempDir(), quiet())
		if err == nil {
			t.Fatalf("%q: no error", u)
		}
		msg := err.Error()
		if !strings.Contains(msg, "postgres://") || !strings.Contains(msg, "postgresql://") || !strings.Contains(msg, "SQLite") {
			t.Errorf("%q: message does not name the supported schemes: %s", u, msg)
		}
		if strings.Contains(msg, "secret") {
			t.Errorf("%q: message leaks the password: %s", u, msg)
		}
	}
}

func TestOpenUnreachablePostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Port 1 refuses connections at once.
	_, err := storage.Open(ctx, "postgres://relay:hunter2@127.0.0.1:1/relay?sslmode=disable&connect_timeout=2", t.TempDir(), quiet())
	if err == nil {
		t.Fatal("no error for an unreachable database")
	}
	if !strings.Contains(err.Error(), "connect to PostgreSQL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("unclear or leaky error: %v", err)
	}
}

func TestOpenCorruptSQLite(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, storage.SQLiteFile), []byte(strings.Repeat("not a database ", 512)), 0o600))
	_, err := storage.Open(context.Background(), "", dir, quiet())
	if err == nil || !strings.Contains(err.Error(), "open SQLite database") {
		t.Fatalf("err = %v, want a clear error for a corrupt database file", err)
	}
}

func TestOpenDirtySQLite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	if _, err := storage.Migrate(ctx, "", dir, "up", quiet()); err != nil {
		t.Fatal(err)
	}
	// What a migration that failed half-way leaves behind.
	db, err := sql.Open("sqlite", filepath.Join(dir, storage.SQLiteFile))
	must(t, err)
	_, err = db.Exec(`UPDATE schema_migrations SET dirty = 1`)
	must(t, err)
	must(t, db.Close())

	_, err = storage.Open(ctx, "", dir, quiet())
	if err == nil || !strings.Contains(err.Error(), "dirty at migration version 5") {
		t.Fatalf("err = %v, want a dirty-database error naming the version", err)
	}
}

func TestMigrateUnknownDirection(t *testing.T) {
	_, err := storage.Migrate(context.Background(), "", t.TempDir(), "sideways", quiet())
	if err == nil || !strings.Contains(err.Error(), "sideways") {
		t.Fatalf("err = %v", err)
	}
}

func TestMigrateSQLiteUpDownUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, storage.SQLiteFile)
	exists := func(t *testing.T, table string) bool {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		must(t, err)
		defer db.Close()
		var n int
		must(t, db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`, table).Scan(&n))
		return n == 1
	}
	upDownUp(t, "", dir, exists)
}

func TestMigratePostgresUpDownUp(t *testing.T) {
	t.Parallel()
	url := testenv.MustPostgresDB(t)
	exists := func(t *testing.T, table string) bool {
		t.Helper()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, url)
		must(t, err)
		defer c.Close(ctx)
		var found bool
		must(t, c.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&found))
		return found
	}
	upDownUp(t, url, t.TempDir(), exists)
}

func upDownUp(t *testing.T, url, dir string, exists func(*testing.T, string) bool) {
	ctx := context.Background()
	migrate := func(direction string) string {
		t.Helper()
		out, err := storage.Migrate(ctx, url, dir, direction, quiet())
		if err != nil {
			t.Fatalf("migrate %s: %v", direction, err)
		}
		t.Logf("migrate %s: %s", direction, out)
		return out
	}
	check := func(want bool) {
		t.Helper()
		for _, tb := range tables {
			if got := exists(t, tb); got != want {
				t.Fatalf("table %s exists = %v, want %v", tb, got, want)
			}
		}
	}

	if out := migrate("version"); !strings.Contains(out, "no migrations applied") {
		t.Fatalf("fresh version: %q", out)
	}
	migrate("up")
	check(true)
	if out := migrate("up"); !strings.Contains(out, "no change") {
		t.Fatalf("second up: %q", out)
	}
	if out := migrate("version"); !strings.Contains(out, "version 5") {
		t.Fatalf("version after up: %q", out)
	}
	for i := 0; !strings.Contains(migrate("version"), "no migrations applied"); i++ {
		if i > 100 {
			t.Fatal("down never reaches version 0")
		}
		migrate("down")
	}
	check(false)
	if out := migrate("down"); !strings.Contains(out, "nothing to roll back") {
		t.Fatalf("down at 0: %q", out)
	}
	migrate("up")
	check(true)

	// The re-migrated schema works end to end.
	s, err := storage.Open(ctx, url, dir, quiet())
	must(t, err)
	defer s.Close()
	must(t, s.SeedTiers(ctx, domain.DefaultTiers()))
	k := domain.APIKey{ID: uuid.New(), Name: "n", KeyHash: "h", KeyPrefix: "p", RateLimitTier: "basic", IsActive: true}
	must(t, s.CreateKey(ctx, k))
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{{RequestID: "r1", KeyID: k.ID, Time: time.Now(), Usage: domain.Usage{InputTokens: 3}}}))
	got, err := s.GetKey(ctx, k.ID)
	must(t, err)
	if got.TokensUsed != 3 {
		t.Fatalf("tokens_used = %d after re-migration", got.TokensUsed)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
