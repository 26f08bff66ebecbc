package memory_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/domain"
)

// The admission hot path runs, per request: rate-limit Allow, concurrency
// Acquire, quota Reserve; and after the response: Settle and release. These
// benchmarks feed the "< 20 µs admission" target.

func ids(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = "req_" + strconv.Itoa(i)
	}
	return s
}

func BenchmarkLedgerReserveSettle(b *testing.B) {
	l := memory.NewLedger()
	key := uuid.New()
	reqs := ids(b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := l.Reserve(ctx, key, reqs[i], 4096, 1<<62, 0, time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := l.Settle(ctx, key, reqs[i], 1000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLedgerReserveSettleParallel: many keys, as a busy relay sees.
func BenchmarkLedgerReserveSettleParallel(b *testing.B) {
	benchLedgerParallel(b, 1024)
}

// BenchmarkLedgerReserveSettleParallelOneKey: every request on one key, the
// worst case for the per-key lock.
func BenchmarkLedgerReserveSettleParallelOneKey(b *testing.B) {
	benchLedgerParallel(b, 1)
}

func benchLedgerParallel(b *testing.B, nkeys int) {
	l := memory.NewLedger()
	keys := make([]uuid.UUID, nkeys)
	for i := range keys {
		keys[i] = uuid.New()
	}
	reqs := ids(b.N + 1)
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1)
			key := keys[int(i)%nkeys]
			if _, err := l.Reserve(ctx, key, reqs[i], 4096, 1<<62, 0, time.Minute); err != nil {
				b.Fatal(err)
			}
			if err := l.Settle(ctx, key, reqs[i], 1000); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRateLimiterAllow(b *testing.B) {
	r := memory.NewRateLimiter()
	lim := domain.Limit{Count: 1 << 40, Period: time.Minute}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if d, _ := r.Allow(ctx, "requests:6f1c2a9e-2b5e-4d1a-9c39-4d8f2f0b7a11", lim, 1); !d.Allowed {
			b.Fatal("refused")
		}
	}
}

func BenchmarkRateLimiterAllowParallel(b *testing.B) {
	r := memory.NewRateLimiter()
	lim := domain.Limit{Count: 1 << 40, Period: time.Minute}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "requests:" + uuid.NewString()
	}
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if d, _ := r.Allow(ctx, keys[next.Add(1)%int64(len(keys))], lim, 1); !d.Allowed {
				b.Fatal("refused")
			}
		}
	})
}

func BenchmarkConcurrencyAcquireRelease(b *testing.B) {
	c := memory.NewConcurrencyLimiter()
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		release, ok, err := c.Acquire(ctx, "6f1c2a9e-2b5e-4d1a-9c39-4d8f2f0b7a11", 8, time.Minute)
		if err != nil || !ok {
			b.Fatal("refused")
		}
		release()
	}
}

func BenchmarkConcurrencyAcquireReleaseParallel(b *testing.B) {
	c := memory.NewConcurrencyLimiter()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = uuid.NewString()
	}
	var next atomic.Int64
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			release, ok, err := c.Acquire(ctx, keys[next.Add(1)%int64(len(keys))], 1<<20, time.Minute)
			if err != nil || !ok {
				b.Fatal("refused")
			}
			release()
		}
	})
}

// BenchmarkAdmission is the in-process admission sequence end to end:
// Allow, Acquire, Reserve, then Settle and release.
func BenchmarkAdmission(b *testing.B) {
	r := memory.NewRateLimiter()
	c := memory.NewConcurrencyLimiter()
	l := memory.NewLedger()
	key := uuid.New()
	rk, ck := "requests:"+key.String(), key.String()
	lim := domain.Limit{Count: 1 << 40, Period: time.Minute}
	reqs := ids(b.N)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if d, _ := r.Allow(ctx, rk, lim, 1); !d.Allowed {
			b.Fatal("rate refused")
		}
		release, ok, _ := c.Acquire(ctx, ck, 8, time.Minute)
		if !ok {
			b.Fatal("concurrency refused")
		}
		if _, err := l.Reserve(ctx, key, reqs[i], 4096, 1<<62, 0, time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := l.Settle(ctx, key, reqs[i], 1000); err != nil {
			b.Fatal(err)
		}
		release()
	}
}
