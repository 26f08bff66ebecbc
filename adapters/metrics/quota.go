package metrics

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
)

// DefaultMaxQuotaKeys caps how many keys token_quota_usage_ratio exports.
const DefaultMaxQuotaKeys = 10_000

// quotaSourceTimeout bounds how long a scrape waits for a QuotaSource.
const quotaSourceTimeout = 3 * time.Second

// KeyQuota is one limited key's quota use, as token_quota_usage_ratio
// exports it: labelled by id and name, never by the key itself.
type KeyQuota struct {
	ID    uuid.UUID
	Name  string
	Used  int64 // settled (plus, at the caller's choice, reserved) tokens
	Limit int64 // the key's token_limit; keys without one are not exported
}

// QuotaSource reports current quota use for every limited key. It is called
// on each scrape, with a deadline, from the scrape's goroutine.
type QuotaSource func(ctx context.Context) ([]KeyQuota, error)

// quotaCollector exports token_quota_usage_ratio{key_id}, plus key_name
// when Options.QuotaKeyNames is set (names are people's and teams' names:
// they stay out of the metrics unless the operator opts in).
//
// Values arrive in one of two ways. Pushed: SetKeyQuota after a key's usage
// changes, DeleteKeyQuota when it is deleted, disabled or loses its limit.
// Pulled: a QuotaSource asked on every scrape, which then wins over pushed
// values (those remain the fallback when the source fails).
//
// Cardinality bound: at most max keys (Options.MaxQuotaKeys, default
// 10,000) are exported. A key pushed while the table is full is not stored,
// and a source's entries beyond max are not exported; both are counted in
// relay_quota_keys_dropped_total, which makes the truncation visible.
type quotaCollector struct {
	desc    *prometheus.Desc
	names   bool
	max     int
	dropped prometheus.Counter
	srcErrs prometheus.Counter

	mu     sync.Mutex
	keys   map[uuid.UUID]*quotaEntry
	source QuotaSource
}

type quotaEntry struct {
	id          string // uuid.String(), computed once
	name        string
	used, limit int64
}

func newQuotaCollector(max int, names bool, dropped, srcErrs prometheus.Counter) *quotaCollector {
	labels := []string{"key_id"}
	if names {
		labels = append(labels, "key_name")
	}
	return &quotaCollector{
		desc: prometheus.NewDesc("token_quota_usage_ratio",
			"Share of its token_limit a key has used (used/limit; above 1 when overspent). Only keys with a limit; at most Options.MaxQuotaKeys keys.",
			labels, nil),
		names:   names,
		max:     max,
		dropped: dropped,
		srcErrs: srcErrs,
		keys:    make(map[uuid.UUID]*quotaEntry),
	}
}

func (c *quotaCollector) set(q KeyQuota) {
	if q.Limit <= 0 {
		c.delete(q.ID)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.keys[q.ID]
	if !ok {
		if len(c.keys) >= c.max {
			c.dropped.Inc()
			return
		}
		e = &quotaEntry{id: q.ID.String()}
		c.keys[q.ID] = e
	}
	e.name, e.used, e.limit = q.Name, q.Used, q.Limit
}

func (c *quotaCollector) delete(id uuid.UUID) {
	c.mu.Lock()
	delete(c.keys, id)
	c.mu.Unlock()
}

func (c *quotaCollector) setSource(src QuotaSource) {
	c.mu.Lock()
	c.source = src
	c.mu.Unlock()
}

func (c *quotaCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *quotaCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	src := c.source
	c.mu.Unlock()
	if src != nil {
		ctx, cancel := context.WithTimeout(context.Background(), quotaSourceTimeout)
		qs, err := src(ctx)
		cancel()
		if err == nil {
			c.collectSource(ch, qs)
			return
		}
		c.srcErrs.Inc()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.keys {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue,
			float64(e.used)/float64(e.limit), c.labels(e.id, e.name)...)
	}
}

func (c *quotaCollector) collectSource(ch chan<- prometheus.Metric, qs []KeyQuota) {
	limited := qs[:0:0]
	for _, q := range qs {
		if q.Limit > 0 {
			limited = append(limited, q)
		}
	}
	if len(limited) > c.max {
		// Keep the keys closest to their limit: those are the ones alerts need.
		sort.Slice(limited, func(i, j int) bool {
			return ratio(limited[i]) > ratio(limited[j])
		})
		c.dropped.Add(float64(len(limited) - c.max))
		limited = limited[:c.max]
	}
	seen := make(map[uuid.UUID]struct{}, len(limited))
	for _, q := range limited {
		if _, dup := seen[q.ID]; dup {
			continue // a duplicate series would fail the whole scrape
		}
		seen[q.ID] = struct{}{}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, ratio(q), c.labels(q.ID.String(), q.Name)...)
	}
}

func (c *quotaCollector) labels(id, name string) []string {
	if c.names {
		return []string{id, name}
	}
	return []string{id}
}

func ratio(q KeyQuota) float64 { return float64(q.Used) / float64(q.Limit) }
