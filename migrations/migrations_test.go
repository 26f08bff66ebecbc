package migrations_test

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/sqlite"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
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
	usageDetailsDownUp(t, newSQLite(t))
}

func TestSQLiteHourlyBackfill(t *testing.T) {
	t.Parallel()
	hourlyBackfill(t, newSQLite(t))
}

func TestPostgresUsageDetailsDownUp(t *testing.T) {
	t.Parallel()
	usageDetailsDownUp(t, newPostgres(t))
}

func TestPostgresHourlyBackfill(t *testing.T) {
	t.Parallel()
	hourlyBackfill(t, newPostgres(t))
}

// newSQLite is the engine of a new SQLite database file.
func newSQLite(t *testing.T) engine {
	path := filepath.Join(t.TempDir(), "relay.db")
	// probe opens the database for one query; the caller closes it.
	probe := func(t *testing.T) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	return engine{
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
			db := probe(t)
			defer db.Close()
			if err := db.QueryRow(query, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return n
		},
		hasColumn: func(t *testing.T, table, column string) bool {
			t.Helper()
			var n int
			db := probe(t)
			defer db.Close()
			if err := db.QueryRow(`SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n); err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	}
}

// newPostgres is the engine of a new PostgreSQL database.
func newPostgres(t *testing.T) engine {
	url := testenv.MustPostgresDB(t)
	// probe connects for one query; the caller closes the connection.
	probe := func(t *testing.T) *pgx.Conn {
		t.Helper()
		c, err := pgx.Connect(context.Background(), url)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	return engine{
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
			c := probe(t)
			defer c.Close(context.Background())
			if err := c.QueryRow(context.Background(), query, args...).Scan(&n); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			return n
		},
		hasColumn: func(t *testing.T, table, column string) bool {
			t.Helper()
			var n int
			c := probe(t)
			defer c.Close(context.Background())
			err := c.QueryRow(context.Background(),
				`SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2`,
				table, column).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			return n == 1
		},
	}
}

// newColumns are the columns each migration after the first adds, per
// table (a table a migration creates lists all of its columns).
var newColumns = map[int]map[string][]string{
	2: {
		"usage_records": {"requested_model", "endpoint", "iterations", "web_search_requests", "web_fetch_requests", "service_tier", "speed", "inference_geo", "batch"},
		"usage_daily":   {"web_search_requests", "web_fetch_requests"},
		"owned_objects": {"kind", "id", "key_id", "created_at", "reservation_id", "reserved", "settled_at", "poll_after"},
	},
	3: {
		"api_keys": {"allowed_models", "budgets"},
		"usage_records": {"cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
			"cost_web_search", "cost_web_fetch", "price_version", "cost_fallback_5m", "cost_unpriced", "cost_detail"},
		"usage_daily": {"cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
			"cost_web_search", "cost_web_fetch"},
		"price_tables": {"version", "seq", "body", "created_at", "created_by", "comment"},
	},
	4: {
		"upstreams": {"id", "name", "url", "sealed_key", "key_last4", "priority", "weight", "max_concurrency",
			"models", "grp", "enabled", "disabled_reason", "created_at", "updated_at"},
		"api_keys":      {"upstream_group"},
		"owned_objects": {"upstream"},
		"usage_daily_upstream": {"day", "upstream", "key_id", "requests", "input_tokens", "output_tokens",
			"cache_creation_input_tokens", "cache_read_input_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens",
			"cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h", "cost_cache_read",
			"cost_web_search", "cost_web_fetch"},
	},
	5: {
		"usage_records":        {"cost_cache_saved", "attempts", "tried_upstreams"},
		"usage_daily":          {"cost_cache_saved"},
		"usage_daily_upstream": {"cost_cache_saved"},
		"usage_hourly": {"hour", "requests", "input_tokens", "output_tokens", "cache_creation_input_tokens",
			"cache_read_input_tokens", "cache_creation_5m_tokens", "cache_creation_1h_tokens", "web_search_requests",
			"web_fetch_requests", "cost_total", "cost_input", "cost_output", "cost_cache_write_5m", "cost_cache_write_1h",
			"cost_cache_read", "cost_web_search", "cost_web_fetch", "cost_cache_saved", "status_ok", "status_client_error",
			"status_rate_limited", "status_server_error", "status_overloaded", "refused",
			"ttfb_b00", "ttfb_b01", "ttfb_b02", "ttfb_b03", "ttfb_b04", "ttfb_b05", "ttfb_b06", "ttfb_b07", "ttfb_b08", "ttfb_b09",
			"ttfb_b10", "ttfb_b11", "ttfb_b12", "ttfb_b13", "ttfb_b14", "ttfb_b15", "ttfb_b16", "ttfb_b17", "ttfb_b18", "ttfb_b19",
			"ttfb_b20", "ttfb_count"},
	},
}

// usageDetailsDownUp migrates to the latest version, writes through every
// column migrations 2 to 5 added, rolls them back one at a time and checks
// that the records written before survive in the columns migration 1 made,
// then migrates up again (migrations 4 and 5 sum the surviving records into
// the upstream and hourly rollups).
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
	// columns checks that the columns of migrations 2 up to `through`
	// exist and those of later ones do not.
	columns := func(through int) {
		t.Helper()
		for version, tables := range newColumns {
			for table, cols := range tables {
				for _, c := range cols {
					if got, want := e.hasColumn(t, table, c), version <= through; got != want {
						t.Fatalf("at version %d: %s.%s exists = %v, want %v", through, table, c, got, want)
					}
				}
			}
		}
	}

	migrate(migrations.Up, "to 5")
	columns(5)
	s := e.open(t)
	key := domain.APIKey{
		ID: uuid.New(), Name: "k", KeyHash: "h", KeyPrefix: "p", IsActive: true, CreatedAt: time.Now(), UpdatedAt: time.Now(),
		AllowedModels: []string{"claude-*"}, Budgets: []domain.KeyBudget{{Window: "day", Limit: 5_000_000_000}},
		UpstreamGroup: "team-a",
	}
	if err := s.CreateKey(ctx, key); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	rec := domain.UsageRecord{
		RequestID: "req_1", KeyID: key.ID, Time: at, Model: "claude-opus-4-5", RequestedModel: "claude-opus-4", Upstream: "up_a",
		Endpoint: "messages", Status: 200, Usage: domain.Usage{InputTokens: 10, OutputTokens: 5},
		Iterations:  []domain.Iteration{{Type: "message", Usage: domain.Usage{InputTokens: 10, OutputTokens: 5}}},
		ServerTools: domain.ServerToolUse{WebSearchRequests: 2, WebFetchRequests: 1},
		ServiceTier: "standard", Speed: "fast", InferenceGeo: "us", Batch: true,
		TTFB: 300 * time.Millisecond, Attempts: 2, TriedUpstreams: []string{"up_z"},
		Cost: domain.RecordCost{
			CostBreakdown: domain.CostBreakdown{Input: 50_000, Output: 125_000, WebSearch: 20_000_000, CacheSaved: 7},
			Total:         20_175_000, PriceVersion: "2025-11-24", Fallback5m: true, Detail: []byte(`{"parts":[]}`),
		},
	}
	if err := s.InsertUsage(ctx, []domain.UsageRecord{rec}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectBatch, ID: "msgbatch_1", KeyID: key.ID, CreatedAt: at, PollAfter: at, Upstream: "up_a"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUpstream(ctx, ports.UpstreamRecord{Upstream: pool.Upstream{ID: "up_a", Name: "a", Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: "v1:x:y", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutPriceTable(ctx, ports.PriceTableVersion{Version: "2025-11-24", Table: []byte(`{}`), CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	survived := func(version int) {
		t.Helper()
		if n := e.scalar(t, `SELECT count(*) FROM usage_records WHERE input_tokens = 10 AND output_tokens = 5`); n != 1 {
			t.Fatalf("%d usage records at version %d, want 1", n, version)
		}
		if n := e.scalar(t, `SELECT sum(requests) FROM usage_daily`); n != 1 {
			t.Fatalf("daily rollup counts %d requests at version %d, want 1", n, version)
		}
		if n := e.scalar(t, `SELECT count(*) FROM api_keys`); n != 1 {
			t.Fatalf("%d keys at version %d, want 1", n, version)
		}
	}
	if n := e.scalar(t, `SELECT sum(requests) FROM usage_daily_upstream WHERE upstream = 'up_a'`); n != 1 {
		t.Fatalf("upstream rollup counts %d requests, want 1", n)
	}
	if n := e.scalar(t, `SELECT sum(cost_cache_saved) FROM usage_hourly`); n != 7 {
		t.Fatalf("hourly rollup saved %d, want 7", n)
	}
	migrate(migrations.Down, "from version 5 to 4")
	columns(4)
	survived(4)
	// The records stored before are summed by migration 5.
	migrate(migrations.Up, "from version 4 to 5")
	columns(5)
	hourly := func(want map[string]int64) {
		t.Helper()
		for col, n := range want {
			if got := e.scalar(t, `SELECT sum(`+col+`) FROM usage_hourly`); got != n {
				t.Fatalf("hourly %s = %d after migrating up, want %d", col, got, n)
			}
		}
	}
	// 300 ms is in the bucket (250 ms, 400 ms], b08.
	hourly(map[string]int64{"requests": 1, "status_ok": 1, "ttfb_b08": 1, "ttfb_count": 1, "cost_total": 20_175_000,
		"cost_cache_saved": 0, "refused": 0, "input_tokens": 10})
	migrate(migrations.Down, "from version 5 to 4")
	migrate(migrations.Down, "from version 4 to 3")
	columns(3)
	survived(3)
	migrate(migrations.Down, "from version 3 to 2")
	columns(2)
	survived(2)
	if n := e.scalar(t, `SELECT sum(web_search_requests) FROM usage_daily`); n != 2 {
		t.Fatalf("daily web searches = %d after rolling back migration 3, want 2", n)
	}
	migrate(migrations.Down, "from version 2 to 1")
	columns(1)
	survived(1)

	migrate(migrations.Up, "from version 1 to 5")
	columns(5)
	// The records already stored are summed into the new upstream rollup.
	if n := e.scalar(t, `SELECT sum(requests) FROM usage_daily_upstream WHERE upstream = 'up_a'`); n != 1 {
		t.Fatalf("upstream rollup counts %d requests after migrating up, want 1", n)
	}
	s = e.open(t)
	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	// The details and the cost went with the rolled-back columns; the
	// record stayed.
	if len(logs) != 1 || logs[0].RequestID != rec.RequestID || logs[0].Usage != rec.Usage ||
		logs[0].Iterations != nil || !logs[0].ServerTools.IsZero() || logs[0].Endpoint != "" || logs[0].Batch ||
		!reflect.DeepEqual(logs[0].Cost, domain.RecordCost{}) {
		t.Fatalf("after down and up: %+v", logs)
	}
	got, err := s.GetKey(ctx, key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.AllowedModels != nil || got.Budgets != nil || got.UpstreamGroup != "" {
		t.Fatalf("key after down and up: models %v, budgets %v, group %q; want none", got.AllowedModels, got.Budgets, got.UpstreamGroup)
	}
	if ups, err := s.ListUpstreams(ctx); err != nil || len(ups) != 0 {
		t.Fatalf("upstreams after down and up: %v, %v; want none", ups, err)
	}
	if _, err := s.GetObject(ctx, domain.ObjectBatch, "msgbatch_1"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("owned object after down and up: err = %v, want not found", err)
	}
	if _, err := s.CurrentPriceTable(ctx); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("price table after down and up: err = %v, want not found", err)
	}
	if err := s.InsertUsage(ctx, []domain.UsageRecord{{RequestID: "req_2", KeyID: key.ID, Time: at,
		ServerTools: domain.ServerToolUse{WebSearchRequests: 4},
		Cost:        domain.RecordCost{CostBreakdown: domain.CostBreakdown{WebSearch: 40_000_000}, Total: 40_000_000, PriceVersion: "v"},
	}, {
		// Refused by the relay itself, in the next hour.
		RequestID: "req_refused", KeyID: key.ID, Time: at.Add(time.Hour), Status: 429,
	}, {
		RequestID: "req_overloaded", KeyID: key.ID, Time: at.Add(time.Hour), Status: 529, Upstream: "up_a", TTFB: 70 * time.Second,
	}}); err != nil {
		t.Fatal(err)
	}
	if n := e.scalar(t, `SELECT sum(web_search_requests) FROM usage_daily`); n != 4 {
		t.Fatalf("daily web searches = %d after re-migrating, want 4", n)
	}
	if n := e.scalar(t, `SELECT sum(cost_total) FROM usage_daily`); n != 40_000_000 {
		t.Fatalf("daily cost = %d after re-migrating, want 40000000", n)
	}
	if n := e.scalar(t, `SELECT sum(requests) FROM usage_daily_upstream`); n != 4 {
		t.Fatalf("upstream rollup counts %d requests after re-migrating, want 4", n)
	}
	if n := e.scalar(t, `SELECT sum(requests) FROM usage_hourly`); n != 4 {
		t.Fatalf("hourly rollup counts %d requests after re-migrating, want 4", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// All the way down and up again.
	migrate(migrations.Down, "from version 5 to 4")
	migrate(migrations.Down, "from version 4 to 3")
	migrate(migrations.Down, "from version 3 to 2")
	migrate(migrations.Down, "from version 2 to 1")
	migrate(migrations.Down, "from version 1 to 0")
	columns(1)
	migrate(migrations.Up, "from version 0 to 5")
	columns(5)
}

// hourlyBackfill writes records at the latest version, rolls migration 5
// back and applies it again: its backfill sums the records into the hourly
// rollup as the store does, per status class and TTFB bucket.
func hourlyBackfill(t *testing.T, e engine) {
	ctx := context.Background()
	if _, err := e.migrate(migrations.Up); err != nil {
		t.Fatal(err)
	}
	s := e.open(t)
	key := uuid.New()
	at := time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)
	var recs []domain.UsageRecord
	statuses := []struct {
		status   int
		upstream string
	}{{200, "a"}, {0, ""}, {400, "a"}, {401, ""}, {429, ""}, {429, "a"}, {500, "a"}, {503, ""}, {529, "a"}, {600, "a"}}
	for i, st := range statuses {
		recs = append(recs, domain.UsageRecord{RequestID: fmt.Sprintf("req_s%d", i), KeyID: key, Time: at.Add(time.Duration(i) * time.Minute),
			Status: st.status, Upstream: st.upstream, Usage: domain.Usage{InputTokens: int64(i)},
			Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: domain.Nanodollars(i)}, Total: domain.Nanodollars(i)}})
	}
	for i, b := range domain.TTFBBucketBounds {
		for j, ttfb := range []time.Duration{b, b + time.Microsecond} {
			recs = append(recs, domain.UsageRecord{RequestID: fmt.Sprintf("req_t%d_%d", i, j), KeyID: key,
				Time: at.Add(-time.Hour - time.Duration(i)*time.Minute), Status: 200, Upstream: "a", TTFB: ttfb})
		}
	}
	// Before the epoch, the hour is floored.
	recs = append(recs, domain.UsageRecord{RequestID: "req_old", KeyID: key, Time: time.Unix(-1, 0), Status: 200})
	if err := s.InsertUsage(ctx, recs); err != nil {
		t.Fatal(err)
	}
	series := func() []domain.SeriesPoint {
		t.Helper()
		var out []domain.SeriesPoint
		for _, q := range []domain.SeriesQuery{
			{From: time.Unix(-3600, 0), To: time.Unix(3600, 0), Step: time.Hour},
			{From: at.Add(-24 * time.Hour), To: at.Add(24 * time.Hour), Step: time.Hour},
		} {
			p, err := s.UsageSeries(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, p...)
		}
		return out
	}
	written := series()
	if len(written) != 4 || written[0].Start.Unix() != -3600 {
		t.Fatalf("series as written: %+v", written)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.migrate(migrations.Down); err != nil {
		t.Fatal(err)
	}
	s = e.open(t) // migrates up again
	defer s.Close()
	if backfilled := series(); !reflect.DeepEqual(backfilled, written) {
		t.Fatalf("backfilled series:\n got %+v\nwant %+v", backfilled, written)
	}
}
