package metrics

import (
	"context"
	"sort"
	"sync"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaystation/relay/domain"
)

// Budget windows, the values of relay_budget_usage_ratio's window label
// (domain/budget's Window values). Any other window is exported as "other".
var budgetWindows = []string{"5h", "day", "week", "month", "total"}

// KeyBudgetUse is one money budget of a key, as relay_budget_usage_ratio
// exports it: labelled by key id, window and (opt-in) name, never by the key
// itself.
type KeyBudgetUse struct {
	ID     uuid.UUID
	Name   string
	Window string // "5h", "day", "week", "month" or "total"
	// Used is what settled requests spent in the window.
	Used domain.Nanodollars
	// Reserved is what requests in flight hold against the budget. It is
	// not part of the ratio (see budgetCollector).
	Reserved domain.Nanodollars
	// Limit is the budget's limit; entries without one are not exported.
	Limit domain.Nanodollars
}

// BudgetSource reports current use of every key budget. It is called on
// each scrape, with a deadline, from the scrape's goroutine.
type BudgetSource func(ctx context.Context) ([]KeyBudgetUse, error)

// budgetCollector exports relay_budget_usage_ratio{key_id, window}, plus
// key_name when Options.QuotaKeyNames is set, like token_quota_usage_ratio.
//
// The ratio is Used/Limit: settled spend only. Reservations are left out
// because they are holds for requests in flight, mostly given back when the
// request settles for less; counting them would make the gauge (and the
// budget alerts) jump with every burst of traffic for money that is never
// spent. So a key can be refused (admission counts what it reserves) while
// its ratio is still a little under 1.
//
// Values come only from a BudgetSource, asked on every scrape. When it
// fails, relay_budget_source_errors_total counts it and the last successful
// scrape's series are exported again, so an outage of the source does not
// resolve budget alerts; without a source nothing is exported.
//
// Cardinality bound: at most max series (Options.MaxQuotaKeys, one series
// per key and window). Beyond that the budgets closest to their limit are
// kept and the rest counted in relay_budget_keys_dropped_total, once per
// scrape. A key may carry budgets on one window in two time zones (a day in
// UTC and one in Europe/Paris); they would share labels, so the one closest
// to its limit is exported.
type budgetCollector struct {
	desc    *prometheus.Desc
	names   bool
	max     int
	dropped prometheus.Counter
	srcErrs prometheus.Counter

	mu     sync.Mutex
	source BudgetSource
	last   []budgetSeries // the last successful scrape's series
}

type budgetSeries struct {
	id, name, window string
	ratio            float64
}

func newBudgetCollector(max int, names bool, dropped, srcErrs prometheus.Counter) *budgetCollector {
	labels := []string{"key_id", "window"}
	if names {
		labels = append(labels, "key_name")
	}
	return &budgetCollector{
		desc: prometheus.NewDesc("relay_budget_usage_ratio",
			"Share of a money budget a key has spent in its window (used/limit, reservations of requests in flight excluded; above 1 when overspent). Only budgets with a limit; at most Options.MaxQuotaKeys key and window series.",
			labels, nil),
		names:   names,
		max:     max,
		dropped: dropped,
		srcErrs: srcErrs,
	}
}

func (c *budgetCollector) setSource(src BudgetSource) {
	c.mu.Lock()
	c.source, c.last = src, nil
	c.mu.Unlock()
}

func (c *budgetCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.desc
	ch <- c.dropped.Desc()
	ch <- c.srcErrs.Desc()
}

func (c *budgetCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.source
	c.mu.Unlock()
	defer func() { ch <- c.dropped; ch <- c.srcErrs }()
	if src == nil {
		return
	}
	// The same bound as a QuotaSource's: both run inside one scrape.
	ctx, cancel := context.WithTimeout(context.Background(), quotaSourceTimeout)
	uses, err := src(ctx)
	cancel()
	var series []budgetSeries
	if err != nil {
		c.srcErrs.Inc()
		c.mu.Lock()
		series = c.last
		c.mu.Unlock()
	} else {
		series = c.series(uses)
		c.mu.Lock()
		c.last = series
		c.mu.Unlock()
	}
	for _, s := range series {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, s.ratio, c.labels(s)...)
	}
}

// series turns a source's answer into at most max series with distinct
// labels: a duplicate would fail the whole scrape.
func (c *budgetCollector) series(uses []KeyBudgetUse) []budgetSeries {
	type labelKey struct {
		id     uuid.UUID
		window string
	}
	at := make(map[labelKey]int, len(uses))
	out := make([]budgetSeries, 0, len(uses))
	for _, u := range uses {
		if u.Limit <= 0 {
			continue
		}
		w := closedAt(budgetWindows, closedIndex(budgetWindows, u.Window))
		r := float64(u.Used) / float64(u.Limit)
		k := labelKey{u.ID, w}
		if i, dup := at[k]; dup {
			if r > out[i].ratio {
				out[i].ratio, out[i].name = r, u.Name
			}
			continue
		}
		at[k] = len(out)
		out = append(out, budgetSeries{id: u.ID.String(), name: u.Name, window: w, ratio: r})
	}
	if len(out) > c.max {
		// Keep the budgets closest to their limit: those are the ones alerts need.
		sort.SliceStable(out, func(i, j int) bool { return out[i].ratio > out[j].ratio })
		c.dropped.Add(float64(len(out) - c.max))
		out = out[:c.max:c.max]
	}
	return out
}

func (c *budgetCollector) labels(s budgetSeries) []string {
	if c.names {
		return []string{s.id, s.window, s.name}
	}
	return []string{s.id, s.window}
}
