package postgres_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/storetest"
	"github.com/relaystation/relay/internal/testenv"
)

// BenchmarkDashboard runs the dashboard's store calls over 10,000 keys and
// 1,000,000 usage records, seeded into a fresh database (about a minute):
//
//	go test ./adapters/postgres -run '^$' -bench Dashboard -benchtime 20x
func BenchmarkDashboard(b *testing.B) {
	url := testenv.MustPostgresDB(b)
	s := MustOpenAt(b, url)
	d := storetest.NewDashboard()
	d.Seed(b, s)
	// Statistics and the visibility map, as autovacuum keeps them on a
	// database that has been running for a while.
	c, err := pgx.Connect(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(context.Background(), "VACUUM ANALYZE"); err != nil {
		b.Fatal(err)
	}
	storetest.BenchDashboard(b, s, d)
}
