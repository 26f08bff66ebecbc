// Package testenv gives tests real PostgreSQL and Redis instances with
// per-test isolation. When a service is absent the test is skipped with a
// message, except under CI=true, where it fails: CI must never silently skip
// the PostgreSQL or Redis suites.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
)

const (
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultRedis    = "redis://127.0.0.1:6379/0"
)

// InCI reports whether the tests run under CI=true.
func InCI() bool { return os.Getenv("CI") == "true" }

func unavailable(tb testing.TB, what string, err error) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%s is required under CI=true but unavailable: %v", what, err)
	}
	tb.Skipf("%s unavailable, skipping (set CI=true to make this fatal): %v", what, err)
}

// PostgresURL is the admin URL of the test server (TEST_DATABASE_URL).
func PostgresURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return defaultPostgres
}

// RedisURL is the URL of the test Redis (TEST_REDIS_URL).
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return defaultRedis
}

func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// MustPostgresDB creates a fresh, empty database for this test, drops it on
// cleanup, and returns its URL.
func MustPostgresDB(tb testing.TB) string {
	tb.Helper()
	admin := PostgresURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		unavailable(tb, "PostgreSQL at "+redactURL(admin), err)
		return ""
	}
	defer conn.Close(context.Background())
	name := "relay_test_" + randomSuffix()
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Logf("drop test database %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse TEST_DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// MustRedis returns a client for the test Redis and a key prefix unique to
// this test; all keys the test creates should start with it. Keys under the
// prefix are deleted on cleanup.
func MustRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		tb.Fatalf("parse TEST_REDIS_URL: %v", err)
	}
	c := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		_ = c.Close()
		unavailable(tb, "Redis at "+RedisURL(), err)
		return nil, ""
	}
	prefix := "relaytest:" + randomSuffix() + ":"
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
		_ = c.Close()
	})
	return c, prefix
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	return strings.TrimSpace(fmt.Sprint(u))
}
