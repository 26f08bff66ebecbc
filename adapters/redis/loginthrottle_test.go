package redis_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/adapters/throttletest"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

func TestLoginThrottleContract(t *testing.T) {
	t.Parallel()
	throttletest.Run(t, func(tb testing.TB) ports.LoginThrottle {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewLoginThrottle(rdb, redis.WithPrefix(prefix))
	})
}

// TestLoginThrottleTwoReplicas runs the suite with two stores on two
// clients sharing one prefix, as two replicas with the same REDIS_URL.
func TestLoginThrottleTwoReplicas(t *testing.T) {
	t.Parallel()
	throttletest.RunReplicas(t, func(tb testing.TB) []ports.LoginThrottle {
		rdb, prefix := testenv.MustRedis(tb)
		return []ports.LoginThrottle{
			redis.NewLoginThrottle(rdb, redis.WithPrefix(prefix)),
			redis.NewLoginThrottle(mustSecondClient(tb), redis.WithPrefix(prefix)),
		}
	})
}

var loginPolicy = admin.LoginThrottlePolicy{PerAddress: 3, MaxBackoff: time.Minute, PerUsername: 100, Global: 100,
	Window: time.Hour, KnownAddressTTL: time.Hour}

// TestLoginThrottleKeysUnderPrefix: every key is under the prefix, in one
// hash slot, and expires.
func TestLoginThrottleKeysUnderPrefix(t *testing.T) {
	rdb, prefix := testenv.MustRedis(t)
	th, err := admin.NewLoginThrottle(redis.NewLoginThrottle(rdb, redis.WithPrefix(prefix)), nil, loginPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := th.Reserve(ctx, netip.MustParseAddr("192.0.2.1"), "admin")
	if err != nil {
		t.Fatal(err)
	}
	a.Failed(ctx)
	a, err = th.Reserve(ctx, netip.MustParseAddr("192.0.2.2"), "admin")
	if err != nil {
		t.Fatal(err)
	}
	a.Succeeded(ctx)
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// 192.0.2.1: addr; 192.0.2.2: known (its addr counter is back to
	// nothing and deleted); the username and the global budget.
	if len(keys) != 4 {
		t.Errorf("keys %v, want 4", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix+"login:{login}:") {
			t.Errorf("key %q is outside %slogin:{login}:", k, prefix)
		}
		if strings.Contains(k, "admin") {
			t.Errorf("key %q holds the username", k)
		}
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q has no expiry (pttl %v, err %v)", k, ttl, err)
		}
	}
}

// TestLoginThrottleFallsBackWhileRedisIsDown: with Redis cut off, logins
// are throttled by the replica's own memory store instead of failing; an
// attempt admitted by Redis ends on Redis; once Redis is back it decides
// again, with what it knew.
func TestLoginThrottleFallsBackWhileRedisIsDown(t *testing.T) {
	_, prefix := testenv.MustRedis(t)
	opts, err := goredis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := testenv.NewTCPProxy(t, opts.Addr)
	opts.Addr = proxy.Addr()
	opts.MaxRetries = -1
	opts.DialTimeout = 300 * time.Millisecond
	rdb := goredis.NewClient(opts)
	t.Cleanup(func() { rdb.Close() })
	rdb.AddHook(redis.NewBreaker(200 * time.Millisecond))

	fallback, err := memory.NewLoginThrottle(1000)
	if err != nil {
		t.Fatal(err)
	}
	shared := redis.NewLoginThrottle(rdb, redis.WithPrefix(prefix))
	th, err := admin.NewLoginThrottle(shared, fallback, loginPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	noFallback, err := admin.NewLoginThrottle(shared, nil, loginPolicy, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.1")
	mustReserve := func() *admin.LoginAttempt {
		t.Helper()
		a, err := th.Reserve(ctx, ip, "admin")
		if err != nil {
			t.Fatalf("Reserve: %v", err)
		}
		return a
	}
	mustReserve().Failed(ctx)
	held := mustReserve()

	proxy.Cut()
	for range loginPolicy.PerAddress {
		mustReserve().Failed(ctx)
	}
	if _, err := th.Reserve(ctx, ip, "admin"); !errors.Is(err, admin.ErrLoginThrottled) {
		t.Fatalf("the fallback did not throttle: %v", err)
	}
	if fallback.Len() == 0 {
		t.Fatal("the fallback store was not used")
	}
	if _, err := noFallback.Reserve(ctx, ip, "admin"); domain.KindOf(err) != domain.KindOverloaded {
		t.Fatalf("Redis down without a fallback: %v, want overloaded", err)
	}

	proxy.Restore()
	for deadline := time.Now().Add(10 * time.Second); rdb.Ping(ctx).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatal("Redis did not come back through the proxy")
		}
		time.Sleep(50 * time.Millisecond)
	}
	held.Failed(ctx)
	// Redis saw two failures of three: one more is free, then none.
	mustReserve().Failed(ctx)
	if _, err := th.Reserve(ctx, ip, "admin"); !errors.Is(err, admin.ErrLoginThrottled) {
		t.Fatalf("back on Redis, the address was not throttled: %v", err)
	}
}
