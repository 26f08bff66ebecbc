package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/ledgertest"
	"github.com/relaystation/relay/adapters/ratelimittest"
	"github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

func TestLedgerContract(t *testing.T) {
	t.Parallel()
	ledgertest.Run(t, func(tb testing.TB) ports.QuotaLedger {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewLedger(rdb, redis.WithPrefix(prefix))
	})
}

// mustSecondClient opens another connection pool to the test Redis, as a
// second replica would.
func mustSecondClient(tb testing.TB) *goredis.Client {
	tb.Helper()
	opts, err := goredis.ParseURL(testenv.RedisURL())
	if err != nil {
		tb.Fatalf("parse redis url: %v", err)
	}
	c := goredis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	return c
}

// TestLedgerTwoReplicas runs the suite with two ledgers on two clients
// sharing one prefix: reservations on one replica are settled on the other,
// and concurrent admission is spread over both.
func TestLedgerTwoReplicas(t *testing.T) {
	t.Parallel()
	ledgertest.RunReplicas(t, func(tb testing.TB) []ports.QuotaLedger {
		rdb, prefix := testenv.MustRedis(tb)
		return []ports.QuotaLedger{
			redis.NewLedger(rdb, redis.WithPrefix(prefix)),
			redis.NewLedger(mustSecondClient(tb), redis.WithPrefix(prefix)),
		}
	})
}

func TestRateLimiterContract(t *testing.T) {
	t.Parallel()
	ratelimittest.Run(t, func(tb testing.TB) ports.RateLimiter {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewRateLimiter(rdb, redis.WithPrefix(prefix))
	})
}

func TestConcurrencyContract(t *testing.T) {
	t.Parallel()
	ratelimittest.RunConcurrency(t, func(tb testing.TB) ports.ConcurrencyLimiter {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewConcurrencyLimiter(rdb, redis.WithPrefix(prefix))
	})
}

// TestConcurrencyTwoReplicas shares one cap between two replicas.
func TestConcurrencyTwoReplicas(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.MustRedis(t)
	a := redis.NewConcurrencyLimiter(rdb, redis.WithPrefix(prefix))
	b := redis.NewConcurrencyLimiter(mustSecondClient(t), redis.WithPrefix(prefix))
	ctx := context.Background()
	ra, ok, err := a.Acquire(ctx, "k", 2, time.Minute)
	if err != nil || !ok {
		t.Fatalf("replica a: ok=%v err=%v", ok, err)
	}
	if _, ok, err := b.Acquire(ctx, "k", 2, time.Minute); err != nil || !ok {
		t.Fatalf("replica b: ok=%v err=%v", ok, err)
	}
	if _, ok, _ := a.Acquire(ctx, "k", 2, time.Minute); ok {
		t.Fatal("third slot granted across replicas under a cap of 2")
	}
	ra()
	if n, _ := b.InFlight(ctx, "k"); n != 1 {
		t.Fatalf("replica b sees %d in flight, want 1", n)
	}
}

// TestKeysUnderPrefix checks that nothing is written outside the prefix.
func TestKeysUnderPrefix(t *testing.T) {
	rdb, prefix := testenv.MustRedis(t)
	ctx := context.Background()
	l := redis.NewLedger(rdb, redis.WithPrefix(prefix))
	key := uuid.New()
	if _, err := l.Reserve(ctx, key, "a", 1, 10, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "b", 1); err != nil {
		t.Fatal(err)
	}
	rl := redis.NewRateLimiter(rdb, redis.WithPrefix(prefix))
	if _, err := rl.Allow(ctx, "r", domain.Limit{Count: 1, Period: time.Minute}, 1); err != nil {
		t.Fatal(err)
	}
	cl := redis.NewConcurrencyLimiter(rdb, redis.WithPrefix(prefix))
	if _, _, err := cl.Acquire(ctx, "c", 1, time.Minute); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		prefix + "quota:{" + key.String() + "}:used": true,
		prefix + "quota:{" + key.String() + "}:res":  true,
		prefix + "quota:{" + key.String() + "}:exp":  true,
		prefix + "quota:{" + key.String() + "}:done": true,
		prefix + "rate:r": true,
		prefix + "conc:c": true,
	}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
		ttl, err := rdb.PTTL(ctx, k).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("key %q has no expiry (pttl %v, err %v)", k, ttl, err)
		}
		delete(want, k)
	}
	for k := range want {
		t.Errorf("missing key %q", k)
	}
}

// TestErrorsWrappedNotDecided checks that an unreachable Redis is an error
// for the caller to apply policy to, never a decision.
func TestErrorsWrappedNotDecided(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	if _, err := redis.NewLedger(rdb).Reserve(ctx, uuid.New(), "a", 1, 10, 0, time.Minute); err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("Reserve with Redis down: err = %v, want an internal error", err)
	}
	if d, err := redis.NewRateLimiter(rdb).Allow(ctx, "k", domain.Limit{Count: 1, Period: time.Second}, 1); err == nil || d.Allowed {
		t.Fatalf("Allow with Redis down: %+v, %v; want an error and no decision", d, err)
	}
	if _, ok, err := redis.NewConcurrencyLimiter(rdb).Acquire(ctx, "k", 1, time.Second); err == nil || ok {
		t.Fatalf("Acquire with Redis down: ok=%v err=%v", ok, err)
	}
}
