package redis

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/internal/testenv"
)

func TestBreakerFailsFastWhileRedisIsAway(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	c := goredis.NewClient(&goredis.Options{Addr: dead, MaxRetries: -1, DialerRetries: 1})
	defer c.Close()
	b := NewBreaker(200 * time.Millisecond)
	c.AddHook(b)
	ctx := context.Background()

	if err := c.Get(ctx, "k").Err(); err == nil || errors.Is(err, ErrUnavailable) {
		t.Fatalf("first call: want a connection error, got %v", err)
	}
	start := time.Now()
	for i := 0; i < 100; i++ {
		if err := c.Get(ctx, "k").Err(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("call %d while open: %v", i, err)
		}
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("100 calls with the breaker open took %v", d)
	}
	time.Sleep(250 * time.Millisecond)
	if err := c.Get(ctx, "k").Err(); errors.Is(err, ErrUnavailable) {
		t.Fatal("the breaker did not let a call through after its cooldown")
	}
}

func TestBreakerPassesAnswersThrough(t *testing.T) {
	rdb, prefix := testenv.MustRedis(t)
	b := NewBreaker(time.Second)
	rdb.AddHook(b)
	ctx := context.Background()
	if err := rdb.Get(ctx, prefix+"missing").Err(); !errors.Is(err, goredis.Nil) {
		t.Fatalf("missing key: %v", err)
	}
	if err := rdb.Eval(ctx, "return redis.error_reply('boom')", nil).Err(); err == nil {
		t.Fatal("script error lost")
	}
	if b.open() {
		t.Fatal("answers from a working Redis tripped the breaker")
	}
	if err := rdb.Set(ctx, prefix+"k", "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
}
