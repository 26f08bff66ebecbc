package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaystation/relay/domain"
)

// Price classes, the values of relay_cost_usd_by_class_total's class label:
// domain.CostBreakdown's fields, spelled as its JSON names.
const (
	CostInput        = "input"
	CostOutput       = "output"
	CostCacheWrite5m = "cache_write_5m"
	CostCacheWrite1h = "cache_write_1h"
	CostCacheRead    = "cache_read"
	CostWebSearch    = "web_search"
	CostWebFetch     = "web_fetch"
)

// costClasses is in the order of costClassAmounts.
var costClasses = [...]string{CostInput, CostOutput, CostCacheWrite5m, CostCacheWrite1h, CostCacheRead, CostWebSearch, CostWebFetch}

func costClassAmounts(b domain.CostBreakdown) [len(costClasses)]domain.Nanodollars {
	return [...]domain.Nanodollars{b.Input, b.Output, b.CacheWrite5m, b.CacheWrite1h, b.CacheRead, b.WebSearch, b.WebFetch}
}

// costRow is one model's cost counters. unpriced is created with usd, so a
// model that was first priced exports it at 0 and increase() sees its first
// unpriced request.
type costRow struct {
	usd      prometheus.Counter
	unpriced prometheus.Counter
}

// nanosToUSD converts for export only: the relay's sums stay exact in
// nanodollars, and a float64 counter of dollars is what PromQL sums.
func nanosToUSD(n domain.Nanodollars) float64 { return float64(n) / domain.NanosPerUSD }

// Priced records what a request cost: c.Total in relay_cost_usd_total{model}
// (model normalised as everywhere else), each class in
// relay_cost_usd_by_class_total{class}, and one
// relay_unpriced_requests_total{model} when c.Unpriced says some tokens had
// no price (their cost is missing from the totals, not guessed).
//
// Amounts below zero are not counted: a counter cannot go down, and pricing
// a request never produces one (only a repricing's difference would).
func (m *Metrics) Priced(model string, c domain.RecordCost) {
	if m == nil {
		return
	}
	row := m.costRows.get(NormalizeModel(model))
	if c.Total > 0 {
		row.usd.Add(nanosToUSD(c.Total))
	}
	if c.Unpriced {
		row.unpriced.Inc()
	}
	for i, n := range costClassAmounts(c.CostBreakdown) {
		if n > 0 {
			m.costClasses[i].Add(nanosToUSD(n))
		}
	}
}
