package metrics_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/domain"
)

// BenchmarkObserveProxy is the per-request cost of the proxy's metrics: one
// ObserveProxy (requests, duration, TTFB, four token counters), the
// in-flight gauge pair, one upstream attempt and a quota update.
func BenchmarkObserveProxy(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	key := uuid.New()
	r := metrics.ProxyResult{
		Status: 200, Model: "claude-sonnet-4-5-20250929", Stream: true,
		Duration: 3 * time.Second, TTFB: 400 * time.Millisecond,
		Usage: domain.Usage{InputTokens: 1200, OutputTokens: 300, CacheReadInputTokens: 9000},
	}
	b.ReportAllocs()
	for b.Loop() {
		m.RequestStarted()
		m.UpstreamAttempt("primary", metrics.OutcomeSuccess)
		m.ObserveProxy(r)
		m.SetKeyQuota(key, "team", 100, 1000)
		m.RequestFinished()
	}
}

// BenchmarkObserveProxyParallel is the same observation from every core at
// once: the cost of contention on shared counters.
func BenchmarkObserveProxyParallel(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	models := []string{"claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5", "claude-3-7-sonnet-latest"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			m.ObserveProxy(metrics.ProxyResult{
				Status: 200, Model: models[i%len(models)], Duration: time.Second, TTFB: time.Millisecond,
				Usage: domain.Usage{InputTokens: 10, OutputTokens: 5},
			})
		}
	})
}

// BenchmarkPriced is the per-request cost of recording what a request cost:
// the model's cost counter and the classes it used.
func BenchmarkPriced(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	c := domain.RecordCost{
		CostBreakdown: domain.CostBreakdown{Input: 3_600_000, Output: 4_500_000, CacheRead: 2_700_000},
		Total:         10_800_000, PriceVersion: "2026-01-01",
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Priced("claude-sonnet-4-5-20250929", c)
	}
}

// BenchmarkPricedParallel: the same from every core, on a few models.
func BenchmarkPricedParallel(b *testing.B) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	models := []string{"claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805", "claude-haiku-4-5", "claude-3-7-sonnet-latest"}
	c := domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 30_000, Output: 75_000}, Total: 105_000}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			m.Priced(models[i%len(models)], c)
		}
	})
}

func BenchmarkNormalizeModel(b *testing.B) {
	for _, in := range []string{"claude-sonnet-4-5-20250929", "claude-haiku-4-5-20991231", "gpt-4o"} {
		b.Run(in, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = metrics.NormalizeModel(in)
			}
		})
	}
}

// TestObserveProxyDoesNotAllocate pins the hot path at zero allocations once
// the label children exist.
func TestObserveProxyDoesNotAllocate(t *testing.T) {
	m := metrics.New(metrics.Options{NoRuntimeCollectors: true})
	key := uuid.New()
	r := metrics.ProxyResult{Status: 200, Model: "claude-sonnet-4-5-20250929", Stream: true,
		Duration: time.Second, TTFB: time.Millisecond, Usage: domain.Usage{InputTokens: 1, OutputTokens: 1}}
	cost := domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 3, Output: 15, CacheWrite1h: 6, WebSearch: 10}, Total: 34}
	unpriced := domain.RecordCost{Unpriced: true}
	run := func() {
		m.ObserveProxy(r)
		m.ObserveRequest(metrics.RouteAdmin, 200, "")
		m.UpstreamAttempt("primary", metrics.OutcomeSuccess)
		m.UpstreamRetry("primary", metrics.RetryOverloaded)
		m.Rejected("tokens")
		m.AuthFailed(metrics.AuthUnknown)
		m.SetKeyQuota(key, "team", 1, 2)
		m.Priced("claude-sonnet-4-5-20250929", cost)
		m.Priced("my-finetune", unpriced)
		m.UsageWriter().FlushDone(time.Millisecond, 3, nil)
	}
	run() // creates the children
	if n := testing.AllocsPerRun(200, run); n != 0 {
		t.Errorf("%v allocations per request, want 0", n)
	}
}
