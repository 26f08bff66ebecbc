package postgres_test

import (
	"context"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

// MustOpen returns a store on a fresh, migrated database of its own.
func MustOpen(tb testing.TB) *postgres.Store {
	tb.Helper()
	return MustOpenAt(tb, testenv.MustPostgresDB(tb))
}

// MustOpenAt returns a store on the database at url.
func MustOpenAt(tb testing.TB, url string) *postgres.Store {
	tb.Helper()
	return storetest.MustOpen(tb, postgres.Open, url)
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) ports.Store { return MustOpen(t) })
}

func BenchmarkInsertUsage(b *testing.B) {
	storetest.BenchInsertUsage(b, MustOpen(b))
}

// A batch that fails after the staging table was created rolls back on its
// connection, and the next batch on that same connection still succeeds.
func TestInsertUsageAfterFailedBatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := postgres.Open(ctx, testenv.MustPostgresDB(t)+"&pool_max_conns=1", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := uuid.New()
	rec := func(id string, in int64) domain.UsageRecord {
		return domain.UsageRecord{RequestID: id, KeyID: key, Time: time.Now(), Model: "m", Usage: domain.Usage{InputTokens: in}}
	}
	// Two maximal counts overflow the daily rollup's bigint sum.
	err = s.InsertUsage(ctx, []domain.UsageRecord{rec("a", math.MaxInt64), rec("b", math.MaxInt64)})
	if err == nil {
		t.Fatal("overflowing batch succeeded")
	}
	if err := s.InsertUsage(ctx, []domain.UsageRecord{rec("a", 1), rec("c", 2)}); err != nil {
		t.Fatalf("batch after a failed one: %v", err)
	}
	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 {
		t.Fatalf("%d records after rollback and retry, want 2 (nothing from the failed batch)", len(logs))
	}
	totals, err := s.UsageTotals(ctx, domain.UsageQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if totals[0].Usage.InputTokens != 3 {
		t.Fatalf("rollup after failed batch = %+v", totals)
	}
}

func TestServerToolRollup(t *testing.T) {
	t.Parallel()
	url := testenv.MustPostgresDB(t)
	s := MustOpenAt(t, url)
	storetest.ServerToolRollup(t, s, func(t *testing.T) map[storetest.DailyKey]domain.ServerToolUse {
		t.Helper()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		rows, err := c.Query(ctx, `SELECT key_id, to_char(day, 'YYYY-MM-DD'), model, web_search_requests, web_fetch_requests FROM usage_daily`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[storetest.DailyKey]domain.ServerToolUse{}
		for rows.Next() {
			var (
				k storetest.DailyKey
				u domain.ServerToolUse
			)
			if err := rows.Scan(&k.KeyID, &k.Day, &k.Model, &u.WebSearchRequests, &u.WebFetchRequests); err != nil {
				t.Fatal(err)
			}
			out[k] = u
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	})
}
