package sqlite_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/relaystation/relay/adapters/sqlite"
	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/ports"
)

// MustOpen returns a store on a fresh, migrated database file of its own.
func MustOpen(tb testing.TB) *sqlite.Store {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "relay.db")
	s, err := sqlite.Open(context.Background(), path, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open SQLite store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) ports.Store { return MustOpen(t) })
}

func BenchmarkInsertUsage(b *testing.B) {
	storetest.BenchInsertUsage(b, MustOpen(b))
}
