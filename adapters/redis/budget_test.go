package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	goredis "github.com/redis/go-redis/v9"

	"github.com/relaystation/relay/adapters/budgettest"
	"github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

func TestBudgetLedgerContract(t *testing.T) {
	budgettest.Run(t, func(tb testing.TB) ports.BudgetLedger {
		rdb, prefix := testenv.MustRedis(tb)
		return redis.NewBudgetLedger(rdb, redis.WithPrefix(prefix))
	})
}

// TestBudgetLedgerTwoReplicas runs the suite with two ledgers on two
// clients sharing one prefix: reservations on one replica are settled on
// the other, and concurrent admission is spread over both.
func TestBudgetLedgerTwoReplicas(t *testing.T) {
	budgettest.RunReplicas(t, func(tb testing.TB) []ports.BudgetLedger {
		rdb, prefix := testenv.MustRedis(tb)
		return []ports.BudgetLedger{
			redis.NewBudgetLedger(rdb, redis.WithPrefix(prefix)),
			redis.NewBudgetLedger(mustSecondClient(tb), redis.WithPrefix(prefix)),
		}
	})
}

// TestBudgetKeysUnderPrefix checks that the budget ledger writes only its
// four keys, under the prefix, each with an expiry, and prunes bucket
// fields past their retention.
func TestBudgetKeysUnderPrefix(t *testing.T) {
	rdb, prefix := testenv.MustRedis(t)
	ctx := context.Background()
	l := redis.NewBudgetLedger(rdb, redis.WithPrefix(prefix))
	key, at := uuid.New(), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: 100}, {Window: budget.Month, Limit: 100}}
	if err := l.Seed(ctx, key, budget.History{AsOf: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, key, "a", bs, 1, at, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx, key, "b", 1, at); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	base := prefix + "budget:{" + key.String() + "}:"
	want := map[string]bool{base + "spend": true, base + "res": true, base + "exp": true, base + "done": true}
	for _, k := range keys {
		if !want[k] {
			t.Errorf("unexpected key %q", k)
		}
		if ttl, err := rdb.PTTL(ctx, k).Result(); err != nil || ttl <= 0 {
			t.Errorf("key %q has no expiry (pttl %v, err %v)", k, ttl, err)
		}
		delete(want, k)
	}
	for k := range want {
		t.Errorf("missing key %q", k)
	}
	fields := func() []string {
		t.Helper()
		fs, err := rdb.HKeys(ctx, base+"spend").Result()
		if err != nil {
			t.Fatal(err)
		}
		return fs
	}
	if fs := fields(); len(fs) != 10 { // 4 buckets, t, at, lo1..lo4
		t.Fatalf("spend fields after one settle: %v", fs)
	}
	// Six hours and a quarter later the 5-minute bucket is gone; 34 days
	// later every bucket is.
	if err := l.Settle(ctx, key, "c", 1, at.Add(6*time.Hour+15*time.Minute)); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields() {
		if f == "m:"+itoa(at.Unix()/300) {
			t.Fatalf("5-minute bucket %s kept past FineRetention", f)
		}
	}
	if err := l.Settle(ctx, key, "d", 1, at.Add(34*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, f := range fields() {
		if strings.HasSuffix(f, ":"+itoa(at.Unix()/300)) || strings.HasSuffix(f, ":"+itoa(at.Unix()/900)) ||
			strings.HasSuffix(f, ":"+itoa(at.Unix()/3600)) || strings.HasSuffix(f, ":"+itoa(at.Unix()/86400)) {
			t.Fatalf("bucket %s kept past CoarseRetention", f)
		}
	}
	s, err := l.State(ctx, key, []budget.Budget{{Window: budget.Total, Limit: 100}}, at.Add(34*24*time.Hour))
	if err != nil || s[0].Used != 3 || s[0].Reserved != 1 {
		t.Fatalf("total after pruning: %+v, %v; want 3 used and 1 reserved", s, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestBudgetErrorsWrappedNotDecided: an unreachable Redis is an error for
// the caller's policy, never a decision.
func TestBudgetErrorsWrappedNotDecided(t *testing.T) {
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	l := redis.NewBudgetLedger(rdb)
	bs := []budget.Budget{{Window: budget.Day, Limit: 10}}
	if _, err := l.Reserve(ctx, uuid.New(), "a", bs, 1, time.Now(), time.Minute); err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("Reserve with Redis down: err = %v, want an internal error", err)
	}
	if err := l.Settle(ctx, uuid.New(), "a", 1, time.Now()); err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("Settle with Redis down: err = %v, want an internal error", err)
	}
}
