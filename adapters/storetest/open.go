package storetest

import (
	"context"
	"log/slog"
	"testing"
)

// MustOpen opens a store with an engine's Open on dsn (a PostgreSQL URL or
// a SQLite file), fails tb if it cannot, and closes it when tb ends.
func MustOpen[S interface{ Close() error }](tb testing.TB, open func(context.Context, string, *slog.Logger) (S, error), dsn string) S {
	tb.Helper()
	s, err := open(context.Background(), dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatalf("open store %T: %v", s, err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}
