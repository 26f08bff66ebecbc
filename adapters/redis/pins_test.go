package redis_test

import (
	"context"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/pintest"
	"github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

func TestPinsContract(t *testing.T) {
	t.Parallel()
	pintest.Run(t, func(tb testing.TB) ports.SessionPins {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewSessionPins(rdb, redis.WithPrefix(prefix))
	})
}

// TestPinsTwoReplicas runs the suite with two stores on two connection
// pools sharing one prefix, as two replicas with the same REDIS_URL: a
// session pinned through one is pinned alike through the other.
func TestPinsTwoReplicas(t *testing.T) {
	t.Parallel()
	pintest.RunReplicas(t, func(tb testing.TB) []ports.SessionPins {
		rdb, prefix := testenv.MustRedis(tb)
		return []ports.SessionPins{
			redis.NewSessionPins(rdb, redis.WithPrefix(prefix)),
			redis.NewSessionPins(mustPinReplicaClient(tb), redis.WithPrefix(prefix)),
		}
	})
}

// mustPinReplicaClient opens another connection pool to the test Redis, as
// a second replica would.
func mustPinReplicaClient(tb testing.TB) *goredis.Client {
	tb.Helper()
	opts, err := goredis.ParseURL(testenv.RedisURL())
	if err != nil {
		tb.Fatalf("parse redis url: %v", err)
	}
	c := goredis.NewClient(opts)
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// TestPinsKeysUnderPrefix: one key per pin, under the prefix, expiring
// with the pin's TTL.
func TestPinsKeysUnderPrefix(t *testing.T) {
	t.Parallel()
	rdb, prefix := testenv.MustRedis(t)
	ctx := context.Background()
	s := redis.NewSessionPins(rdb, redis.WithPrefix(prefix))
	if err := s.Set(ctx, "c.0123abcd", "upstream-2", time.Hour); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != prefix+"pin:c.0123abcd" {
		t.Fatalf("keys %v, want [%spin:c.0123abcd]", keys, prefix)
	}
	ttl, err := rdb.PTTL(ctx, keys[0]).Result()
	if err != nil || ttl <= 59*time.Minute || ttl > time.Hour {
		t.Fatalf("pttl %v (err %v), want about an hour", ttl, err)
	}
	if v, _ := rdb.Get(ctx, keys[0]).Result(); v != "upstream-2" {
		t.Fatalf("value %q, want the upstream id", v)
	}
}

// TestPinsErrorWhenRedisDown: an unreachable Redis is an error, never a
// pin or a claim that there is none; the caller then picks unpinned.
func TestPinsErrorWhenRedisDown(t *testing.T) {
	t.Parallel()
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rdb.Close() })
	s := redis.NewSessionPins(rdb)
	ctx := context.Background()
	if up, ok, err := s.Get(ctx, "c.s"); err == nil || ok || up != "" {
		t.Fatalf("Get with Redis down: %q, %v, %v; want an error", up, ok, err)
	}
	if err := s.Set(ctx, "c.s", "a", time.Minute); err == nil {
		t.Fatal("Set with Redis down succeeded")
	}
}
