package redis_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
)

// These measure the Redis round trips admission makes in multi-replica
// mode; they are dominated by the network, not by the scripts.

func BenchmarkLedgerReserveSettle(b *testing.B) {
	rdb, prefix := testenv.MustRedis(b)
	l := redis.NewLedger(rdb, redis.WithPrefix(prefix), redis.WithSettleRetention(time.Second))
	key := uuid.New()
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := "req_" + strconv.FormatInt(next.Add(1), 10)
			if _, err := l.Reserve(ctx, key, id, 4096, 1<<50, 0, time.Minute); err != nil {
				b.Fatal(err)
			}
			if err := l.Settle(ctx, key, id, 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	rdb, prefix := testenv.MustRedis(b)
	r := redis.NewRateLimiter(rdb, redis.WithPrefix(prefix))
	lim := domain.Limit{Count: 1 << 40, Period: time.Minute}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := r.Allow(ctx, "k", lim, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkConcurrencyAcquireRelease(b *testing.B) {
	rdb, prefix := testenv.MustRedis(b)
	c := redis.NewConcurrencyLimiter(rdb, redis.WithPrefix(prefix))
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, ok, err := c.Acquire(ctx, "k", 1<<20, time.Minute)
			if err != nil || !ok {
				b.Fatal(err)
			}
			release()
		}
	})
}
