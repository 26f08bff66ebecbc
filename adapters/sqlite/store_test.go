package sqlite_test

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/sqlite"
	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// MustOpen returns a store on a fresh, migrated database file of its own.
func MustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	return MustOpenAt(tb, filepath.Join(tb.TempDir(), "relay.db"))
}

// MustOpenAt returns a store on the database file at path.
func MustOpenAt(tb testing.TB, path string) *sqlite.Store {
	tb.Helper()
	return storetest.MustOpen(tb, sqlite.Open, path)
}

func TestContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) ports.Store { return MustOpen(t) })
}

func BenchmarkInsertUsage(b *testing.B) {
	storetest.BenchInsertUsage(b, MustOpen(b))
}

func TestServerToolRollup(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "relay.db")
	s := MustOpenAt(t, path)
	storetest.ServerToolRollup(t, s, func(t *testing.T) map[storetest.DailyKey]domain.ServerToolUse {
		t.Helper()
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT key_id, day, model, web_search_requests, web_fetch_requests FROM usage_daily`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[storetest.DailyKey]domain.ServerToolUse{}
		for rows.Next() {
			var (
				key, day, model string
				u               domain.ServerToolUse
			)
			if err := rows.Scan(&key, &day, &model, &u.WebSearchRequests, &u.WebFetchRequests); err != nil {
				t.Fatal(err)
			}
			out[storetest.DailyKey{KeyID: uuid.MustParse(key), Day: day, Model: model}] = u
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	})
}
