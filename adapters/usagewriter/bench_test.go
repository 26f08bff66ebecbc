package usagewriter_test

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
)

// BenchmarkRecord is the cost Record adds to a request, against a store
// that discards: when the flusher falls behind, Record refuses and the
// producer yields, so ns/op is then the writer's sustained rate.
func BenchmarkRecord(b *testing.B) {
	store := &fakeStore{insertUsage: func(context.Context, []domain.UsageRecord) error { return nil }}
	w := usagewriter.New(store, usagewriter.Config{Capacity: 1 << 16})
	r := rec(0, 0)
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := r
		for pb.Next() {
			r.RequestID = "req_" + strconv.FormatInt(next.Add(1), 10)
			for {
				err := w.Record(context.Background(), r)
				if err == nil {
					break
				}
				if domain.KindOf(err) != domain.KindOverloaded {
					b.Fatal(err)
				}
				runtime.Gosched()
			}
		}
	})
	b.StopTimer()
	if err := w.Shutdown(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkPostgresThroughput records b.N records and waits until all are
// in PostgreSQL; records/s is the sustained write rate.
func BenchmarkPostgresThroughput(b *testing.B) {
	for _, n := range []int{100, usagewriter.DefaultBatchSize, 2000} {
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) { benchPostgres(b, n) })
	}
}

func benchPostgres(b *testing.B, batchSize int) {
	url := testenv.MustPostgresDB(b)
	ctx := context.Background()
	store, err := postgres.Open(ctx, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	keys := make([]uuid.UUID, 16)
	for i := range keys {
		keys[i] = uuid.New()
	}
	recs := make([]domain.UsageRecord, b.N)
	now := time.Now().UTC()
	for i := range recs {
		recs[i] = domain.UsageRecord{
			RequestID: "req_" + strconv.Itoa(i), KeyID: keys[i%len(keys)], Time: now,
			Model: "claude-sonnet-4-5", Path: "/v1/messages", Status: 200, Stream: true,
			Usage:   domain.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadInputTokens: 5000},
			Latency: 2 * time.Second, TTFB: 300 * time.Millisecond, Upstream: "primary",
		}
	}
	w := usagewriter.New(store, usagewriter.Config{Capacity: max(b.N, 1), BatchSize: batchSize})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range recs {
		if err := w.Record(ctx, recs[i]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Shutdown(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}
