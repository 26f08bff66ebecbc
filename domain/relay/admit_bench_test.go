package relay_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"
)

// benchKeys is a KeyStore double holding one key: the cache in front of it
// is what the hot path exercises.
type benchKeys struct {
	ports.KeyStore
	key domain.APIKey
}

func (b benchKeys) GetKeyByHash(context.Context, string) (domain.APIKey, error) { return b.key, nil }

type benchTiers struct{ ports.TierStore }

func (benchTiers) ListTiers(context.Context) ([]domain.Tier, error) {
	return []domain.Tier{{Name: "bench", Requests: 1 << 30, Period: time.Minute}}, nil
}

type benchUsage struct{}

func (benchUsage) Record(context.Context, domain.UsageRecord) error { return nil }
func (benchUsage) Saturated() bool                                  { return false }

// BenchmarkAdmitSettle measures admission control as the proxy runs it,
// with the in-process adapters: key authentication (HMAC + cache hit), the
// request-rate limiter, and a quota reservation then its settlement. The
// input-token estimate is a constant here; adapters/anthropic benchmarks it.
func BenchmarkAdmitSettle(b *testing.B) { benchAdmitSettle(b, false) }

// BenchmarkAdmitSettleMoney is BenchmarkAdmitSettle for a key with money
// budgets (5h and month, the in-process budget ledger) priced by the seed
// table: the reservation in money and its settlement at the actual cost.
func BenchmarkAdmitSettleMoney(b *testing.B) { benchAdmitSettle(b, true) }

// noSpend is a SpendStore with no persisted spend.
type noSpend struct{}

func (noSpend) SpendHistory(_ context.Context, _ uuid.UUID, asOf time.Time) (budget.History, error) {
	return budget.History{AsOf: asOf}, nil
}

func benchAdmitSettle(b *testing.B, money bool) {
	limit := int64(1 << 50)
	hasher := domain.NewKeyHasher([]byte("bench-secret-bench-secret"))
	raw := "sk-proxy-" + "0123456789abcdefghijABCDEFGHIJ0123456789abc"
	key := domain.APIKey{ID: uuid.New(), Name: "bench", KeyHash: hasher.Hash(raw), TokenLimit: &limit,
		RateLimitTier: "bench", IsActive: true}
	var prices *billing.Prices
	var budgets *billing.Budgets
	if money {
		key.Budgets = []domain.KeyBudget{{Window: "5h", Limit: 1 << 50}, {Window: "month", Limit: 1 << 50, TimeZone: "Europe/Paris"}}
		seed, err := pricing.Seed()
		if err != nil {
			b.Fatal(err)
		}
		if prices, err = billing.NewPrices(context.Background(), nil, seed, pricing.Policy{}, nil, nil); err != nil {
			b.Fatal(err)
		}
		if budgets, err = billing.NewBudgets(memory.NewBudgetLedger(memory.WithSettleRetention(time.Second)), noSpend{}, nil, "UTC"); err != nil {
			b.Fatal(err)
		}
	}
	clock := ports.SystemClock{}
	cache := keycache.New(benchKeys{key: key}, time.Minute, clock)
	svc, err := relay.NewService(relay.ServiceConfig{
		Auth:        relay.NewAuthenticator(hasher, cache, clock),
		Tiers:       relay.NewTierResolver(benchTiers{}, time.Minute, clock),
		Ledger:      memory.NewLedger(memory.WithSettleRetention(time.Second)),
		Rate:        memory.NewRateLimiter(),
		Concurrency: memory.NewConcurrencyLimiter(),
		Usage:       benchUsage{},
		Parser:      anthropic.Parser{},
		Estimator:   mustEstimator(b),
		Prices:      prices,
		Budgets:     budgets,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	in := relay.Call{Route: relay.Route{Endpoint: relay.EndpointMessages, Path: "/v1/messages"},
		ClientIP: netip.MustParseAddr("127.0.0.1"), ContentType: "application/json",
		Body: []byte(`{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello, Claude"}]}`)}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		in.RequestID = "req_" + string(rune('a'+i%26)) + uuid.NewString()
		k, err := svc.Authenticate(ctx, raw, in.ClientIP)
		if err != nil {
			b.Fatal(err)
		}
		adm, err := svc.Admit(ctx, k, in)
		if err != nil {
			b.Fatal(err)
		}
		adm.Finish(ctx, relay.Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true,
			Reply: relay.Reply{Usage: domain.Usage{InputTokens: 20, OutputTokens: 100}, Complete: true, InputReported: true}})
	}
}

func mustEstimator(tb testing.TB) *anthropic.Estimator {
	tb.Helper()
	e, err := anthropic.NewEstimator(anthropic.EstimatorConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return e
}
