package migrations_test

import (
	"context"
	"database/sql"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/sqlite"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/migrations"
	"github.com/relaystation/relay/ports"
)

// engine is what the test needs of one storage engine: its migrator, its
// store, and a raw SQL probe.
type engine struct {
	migrate func(direction string) (string, error)
	open    func(t *testing.T) ports.Store
	// scalar runs a query that returns one integer.
	scalar func(t *testing.T, query string, args ...any) int64
	// hasColumn reports whether table has column (false for a missing table).
	hasColumn func(t *testing.T, table, column string) bool
}

var quiet = slog.New(slog.DiscardHandler)

func TestSQLiteUsageDetailsDownUp(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "relay.db")
	probe := func(t *testing.T) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	usageDetailsDownUp(t, engine{
		migrate: func(direction string) (string, error) {
			return sqlite.Migrate(context.Background(), path, direction, quiet)
		},
		open: func(t *testing.T) ports.Store {
			s, err := sqlite.Open(context.Background(), path, quiet)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		scalar: func(t *testing.T, query string, args ...any) int64 {
			t.Helper()
			var n int64
			if err := probe(t).QueryRow(query, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return n
		},
		hasColumn: func(t *testing.T, table, column string) bool {
			t.Helper()
			var n int
			if err := probe(t).QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

func TestPostgresUsageDetailsDownUp(t *testing.T) {
	t.Parallel()
	url := testenv.MustPostgresDB(t)
	probe := func(t *testing.T) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	usageDetailsDownUp(t, engine{
		migrate: func(direction string) (string, error) {
			return postgres.Migrate(context.Background(), url, direction, quiet)
		},
		open: func(t *testing.T) ports.Store {
			s, err := postgres.Open(context.Background(), url, quiet)
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		scalar: func(t *testing.T, query string, args ...any) int64 {
			t.Helper()
			var n int64
			if err := probe(t).QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return n
		},
		hasColumn: func(t *testing.T, table, column string) bool {
			t.Helper()
			var n int
			err := probe(t).QueryRow(context.Background(),
				`SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`,
				table, column).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	})
}

// newColumns are the columns migration 2 adds, per table.
var newColumns = map[string][]string{
	"usage_records": {"requested_model", "endpoint", "iterations", "web_search_requests", "web_fetch_requests", "service_tier", "speed", "inference_geo", "batch"},
	"usage_daily":   {"web_search_requests", "web_fetch_requests"},
	"owned_objects": {"kind", "id", "key_id", "created_at", "reservation_id", "reserved", "settled_at", "poll_after"},
}

// usageDetailsDownUp migrates to the latest version, writes through every
// new column, rolls migration 2 back and checks that the records written
// before survive in the columns migration 1 made, then migrates up again.
func usageDetailsDownUp(t *testing.T, e engine) {
	ctx := context.Background()
	migrate := func(direction, want string) {
		t.Helper()
		out, err := e.migrate(direction)
		if err != nil {
			t.Fatalf("migrate %s: %v", direction, err)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("migrate %s: %q, want it to say %q", direction, out, want)
		}
	}
	columns := func(want bool) {
		t.Helper()
		for table, cols := range newColumns {
			for _, c := range cols {
				if got := e.hasColumn(t, table, c); got != want {
					t.Fatalf("%s.%s exists = %v, want %v", table, c, got, want)
				}
			}
		}
	}

	migrate(migrations.Up, "to 2")
	columns(true)
	s := e.open(t)
	key := uuid.New()
	at := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	rec := domain.UsageRecord{
		RequestID: "req_1", KeyID: key, Time: at, Model: "claude-opus-4-5", RequestedModel: "claude-opus-4",
		Endpoint: "messages", Status: 200, Usage: domain.Usage{InputTokens: 10, OutputTokens: 5},
		Iterations:  []domain.Iteration{{Type: "message", Usage: domain.Usage{InputTokens: 10, OutputTokens: 5}}},
		ServerTools: domain.ServerToolUse{WebSearchRequests: 2, WebFetchRequests: 1},
		ServiceTier: "standard", Speed: "fast", InferenceGeo: "us", Batch: true,
	}
	if err := s.InsertUsage(ctx, []domain.UsageRecord{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectBatch, ID: "msgbatch_1", KeyID: key, CreatedAt: at, PollAfter: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	migrate(migrations.Down, "from version 2 to 1")
	columns(false)
	if n := e.scalar(t, `SELECT count(*) FROM usage_records WHERE input_tokens = 10 AND output_tokens = 5`); n != 1 {
		t.Fatalf("%d usage records after rolling back migration 2, want 1", n)
	}
	if n := e.scalar(t, `SELECT sum(requests) FROM usage_daily`); n != 1 {
		t.Fatalf("daily rollup counts %d requests after rolling back migration 2, want 1", n)
	}

	migrate(migrations.Up, "from version 1 to 2")
	columns(true)
	s = e.open(t)
	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The details went with the rolled-back columns; the record stayed.
	if len(logs) != 1 || logs[0].RequestID != rec.RequestID || logs[0].Usage != rec.Usage ||
		logs[0].Iterations != nil || !logs[0].ServerTools.IsZero() || logs[0].Endpoint != "" || logs[0].Batch {
		t.Fatalf("after down and up: %+v", logs)
	}
	if _, err := s.GetObject(ctx, domain.ObjectBatch, "msgbatch_1"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("owned object after down and up: err = %v, want not found", err)
	}
	if err := s.InsertUsage(ctx, []domain.UsageRecord{{RequestID: "req_2", KeyID: key, Time: at, ServerTools: domain.ServerToolUse{WebSearchRequests: 4}}}); err != nil {
		t.Fatal(err)
	}
	if n := e.scalar(t, `SELECT sum(web_search_requests) FROM usage_daily`); n != 4 {
		t.Fatalf("daily web searches = %d after re-migrating, want 4", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// All the way down and up again.
	migrate(migrations.Down, "from version 2 to 1")
	migrate(migrations.Down, "from version 1 to 0")
	columns(false)
	migrate(migrations.Up, "from version 0 to 2")
	columns(true)
}
