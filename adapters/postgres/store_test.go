package postgres_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

// MustOpen returns a store on a fresh, migrated database of its own.
func MustOpen(tb testing.TB) *postgres.Store {
	tb.Helper()
	url := testenv.MustPostgresDB(tb)
	s, err := postgres.Open(context.Background(), url, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open PostgreSQL store: %v", err)
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
