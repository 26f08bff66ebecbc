package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// BenchBatch is the batch size the usage writer flushes at full load.
const BenchBatch = 500

// BenchInsertUsage measures InsertUsage throughput with realistic batches
// (50 keys, a few models, one minute of traffic per batch) and reports
// records/s.
func BenchInsertUsage(b *testing.B, s ports.Store) {
	ctx := context.Background()
	if err := s.UpsertTier(ctx, domain.Tier{Name: "basic", Requests: 100, Period: time.Minute}); err != nil {
		b.Fatal(err)
	}
	keys := make([]uuid.UUID, 50)
	for i := range keys {
		k := newKey(fmt.Sprintf("bench-%d", i), base)
		if err := s.CreateKey(ctx, k); err != nil {
			b.Fatal(err)
		}
		keys[i] = k.ID
	}
	models := []string{"claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"}
	batch := make([]domain.UsageRecord, BenchBatch)
	seq := 0
	next := func() {
		for i := range batch {
			seq++
			r := rec(keys[seq%len(keys)], base.Add(time.Duration(seq)*100*time.Millisecond), models[seq%len(models)], int64(seq%100))
			// The relay's own ids (time-ordered): what the unique index
			// costs depends on their order.
			r.RequestID = httpx.NewRequestID()
			batch[i] = r
		}
	}

	b.ResetTimer()
	var elapsed time.Duration
	n := 0
	for b.Loop() {
		b.StopTimer()
		next()
		b.StartTimer()
		start := time.Now()
		if err := s.InsertUsage(ctx, batch); err != nil {
			b.Fatal(err)
		}
		elapsed += time.Since(start)
		n += len(batch)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
}
