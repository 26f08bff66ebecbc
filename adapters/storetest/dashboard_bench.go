package storetest

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// The dashboard benchmark: a relay with DashboardKeys keys and
// DashboardRecords usage records over DashboardDays days, and every store
// call a dashboard page makes, each of which must answer within
// DashboardBudget.
const (
	DashboardKeys    = 10_000
	DashboardRecords = 1_000_000
	DashboardDays    = 90
	// DashboardBudget is the most one call may take on average.
	DashboardBudget = 200 * time.Millisecond
	// DashboardSeedVersion names the data NewDashboard seeds: a cached
	// seeded database is reused only at the same version.
	DashboardSeedVersion = 2

	dashboardBatch = 5_000
)

// Dashboard is the seeded data set, as the benchmark needs to know it. It
// is the same every time (NewDashboard is deterministic), so a database
// seeded once can be benchmarked again.
type Dashboard struct {
	// Now is the dashboard's "now": the records end just before it. It is
	// not on an hour, as a real now is not, and in the middle of a month,
	// where totals per key over the last days read the most.
	Now  time.Time
	Keys []domain.APIKey
	// TopKey has the most records (about a seventh of them); TypicalKey
	// has about a hundred.
	TopKey, TypicalKey uuid.UUID
}

var (
	dashboardModels    = []string{"claude-sonnet-5-5", "claude-opus-5-5", "claude-haiku-5-5", "claude-sonnet-4-6", "claude-fable-5-2", "claude-opus-4-6"}
	dashboardModelCDF  = []float64{0.50, 0.65, 0.85, 0.93, 0.97, 1}
	dashboardUpstreams = []string{"primary", "secondary", "backup"}
	dashboardUpCDF     = []float64{0.70, 0.95, 1}
	dashboardTeams     = []string{"platform", "search", "billing", "growth", "mobile", "data", "infra", "support", "research", "sales"}
	dashboardPurposes  = []string{"ci-bot", "prod", "staging", "dev", "notebook", "claude-code", "eval", "batch"}
)

// NewDashboard describes the data set: the keys (a twentieth deleted, a
// thirteenth inactive, created over the year before Now) and where the
// records fall.
func NewDashboard() Dashboard {
	d := Dashboard{Now: time.Date(2026, 12, 16, 14, 37, 21, 0, time.UTC)}
	rng := rand.New(rand.NewPCG(DashboardSeedVersion, 1))
	start := d.Now.AddDate(-1, 0, 0)
	for i := range DashboardKeys {
		var id uuid.UUID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		id[6] = id[6]&0x0f | 0x40 // version 4
		id[8] = id[8]&0x3f | 0x80 // variant 10
		at := start.Add(time.Duration(i) * (365 * 24 * time.Hour / DashboardKeys)).Truncate(time.Microsecond)
		k := domain.APIKey{
			ID:          id,
			Name:        fmt.Sprintf("%s-%s-%04d", dashboardTeams[i%len(dashboardTeams)], dashboardPurposes[(i/len(dashboardTeams))%len(dashboardPurposes)], i),
			Description: "seeded for the dashboard benchmark",
			KeyHash:     "hash-" + id.String(), KeyPrefix: "sk-proxy-" + id.String()[:4] + "…",
			IsActive: i%13 != 0, CreatedAt: at, UpdatedAt: at,
		}
		if i%3 == 0 {
			k.RateLimitTier = "basic"
		}
		if i%20 == 19 {
			del := d.Now.Add(-10 * 24 * time.Hour)
			k.DeletedAt = &del
		}
		d.Keys = append(d.Keys, k)
	}
	d.TopKey = d.Keys[0].ID
	d.TypicalKey = d.Keys[70].ID // Zipf rank 71: about a hundred records
	return d
}

func pick(rng *rand.Rand, items []string, cdf []float64) string {
	u := rng.Float64()
	for i, c := range cdf {
		if u < c {
			return items[i]
		}
	}
	return items[len(items)-1]
}

// logNormal is a log-normal value with the given median.
func logNormal(rng *rand.Rand, median, sigma float64) float64 {
	return median * math.Exp(sigma*rng.NormFloat64())
}

// dashboardRecords calls fn with the records in time order, in batches.
// Keys follow a Zipf law (a few keys make most of the traffic), models and
// upstreams a skewed mix; about 96 % of requests succeed, the rest are the
// upstream's 4xx, 429, 5xx and 529 and the relay's own refusals (which
// made no attempt and have no first byte); one in a hundred failed over.
// Every record is priced with the seed price table.
func (d Dashboard) dashboardRecords(tb testing.TB, fn func([]domain.UsageRecord)) {
	tb.Helper()
	table, err := pricing.Seed()
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(DashboardSeedVersion, 2))
	zipf := rand.NewZipf(rng, 1.1, 1, DashboardKeys-1)
	start := d.Now.Add(-DashboardDays * 24 * time.Hour)
	step := DashboardDays * 24 * time.Hour / DashboardRecords
	batch := make([]domain.UsageRecord, 0, dashboardBatch)
	for i := range DashboardRecords {
		at := start.Add(time.Duration(i)*step + time.Duration(rng.Int64N(int64(step)))).Truncate(time.Microsecond)
		k := d.Keys[zipf.Uint64()]
		r := domain.UsageRecord{
			RequestID: fmt.Sprintf("req_%08x%016x", i, rng.Uint64()),
			KeyID:     k.ID, Time: at, Model: pick(rng, dashboardModels, dashboardModelCDF),
			Path: "/v1/messages", Endpoint: "messages", Status: 200, Stream: rng.IntN(4) != 0,
			Upstream:  pick(rng, dashboardUpstreams, dashboardUpCDF),
			SessionID: fmt.Sprintf("session-%d", rng.IntN(50_000)), ClientIP: fmt.Sprintf("10.%d.%d.%d", rng.IntN(4), rng.IntN(256), rng.IntN(256)),
			ServiceTier: "standard", Attempts: 1,
		}
		r.UpstreamRequestID = fmt.Sprintf("req_011C%016x", rng.Uint64())
		switch u := rng.Float64(); {
		case u < 0.008: // the relay's rate limit
			r.Status, r.Upstream, r.Attempts, r.ErrorType = 429, "", 0, "rate_limit_error"
		case u < 0.011: // unknown or disabled keys, disallowed models
			r.Status, r.Upstream, r.Attempts, r.ErrorType = 401+2*rng.IntN(2), "", 0, "authentication_error"
		case u < 0.012: // the usage queue or a limiter backend
			r.Status, r.Upstream, r.Attempts, r.ErrorType = 503, "", 0, "overloaded_error"
		case u < 0.019:
			r.Status, r.ErrorType = 400, "invalid_request_error"
		case u < 0.031:
			r.Status, r.ErrorType = 429, "rate_limit_error"
		case u < 0.034:
			r.Status, r.ErrorType = 500, "api_error"
		case u < 0.040:
			r.Status, r.ErrorType = 529, "overloaded_error"
		}
		if r.Upstream == "" {
			r.UpstreamRequestID = ""
		}
		if r.Status == 200 {
			in := int64(logNormal(rng, 1_500, 1.2)) + 1
			r.Usage = domain.Usage{InputTokens: in, OutputTokens: int64(logNormal(rng, 400, 1)) + 1}
			if rng.IntN(10) < 6 {
				r.Usage.CacheReadInputTokens = int64(logNormal(rng, 20_000, 1))
			}
			if rng.IntN(10) == 0 {
				w := int64(logNormal(rng, 5_000, 1))
				r.Usage.CacheCreationInputTokens, r.Usage.CacheCreation5mTokens = w, w
			}
			r.TTFB = time.Duration(logNormal(rng, float64(700*time.Millisecond), 0.8))
			r.Latency = r.TTFB + time.Duration(logNormal(rng, float64(8*time.Second), 0.9))
		} else if r.Upstream != "" {
			r.TTFB = time.Duration(logNormal(rng, float64(300*time.Millisecond), 0.8))
			r.Latency = r.TTFB
		} else {
			r.Latency = time.Duration(rng.IntN(2_000)) * time.Microsecond
		}
		if r.Upstream != "" && rng.IntN(100) == 0 {
			r.Attempts = 2
			r.TriedUpstreams = []string{"backup"}
		}
		if pricing.Billable(&r) {
			r.Cost, _, _ = table.PriceRecord(&r, pricing.Policy{})
		}
		batch = append(batch, r)
		if len(batch) == dashboardBatch {
			fn(batch)
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		fn(batch)
	}
}

// Seed writes the data set into an empty, migrated store: the keys (with
// a few goroutines, as the store takes them one by one) and the records
// in batches of 5,000, in time order, as the usage writer would.
func (d Dashboard) Seed(tb testing.TB, s ports.Store) {
	tb.Helper()
	ctx := context.Background()
	start := time.Now()
	if err := s.UpsertTier(ctx, domain.Tier{Name: "basic", Requests: 100, Period: time.Minute, CreatedAt: d.Now, UpdatedAt: d.Now}); err != nil {
		tb.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	const workers = 8
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(d.Keys); i += workers {
				k := d.Keys[i]
				k.DeletedAt = nil
				err := s.CreateKey(ctx, k)
				if err == nil && d.Keys[i].DeletedAt != nil {
					err = s.DeleteKey(ctx, k.ID, *d.Keys[i].DeletedAt)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		tb.Fatalf("seed keys: %v", errs[0])
	}
	keysDone := time.Now()
	n := 0
	d.dashboardRecords(tb, func(recs []domain.UsageRecord) {
		if err := s.InsertUsage(ctx, recs); err != nil {
			tb.Fatalf("seed usage: %v", err)
		}
		n += len(recs)
	})
	tb.Logf("seeded %d keys in %v and %d usage records in %v", len(d.Keys), keysDone.Sub(start).Round(time.Millisecond),
		n, time.Since(keysDone).Round(time.Millisecond))
}

// BenchDashboard runs every store call a dashboard page makes against a
// store holding d, one sub-benchmark each, and fails each that takes more
// than DashboardBudget on average. Run it with a fixed count, e.g.
// -benchtime 20x.
func BenchDashboard(b *testing.B, s ports.Store, d Dashboard) {
	ctx := context.Background()
	now := d.Now
	hourAgo := now.Truncate(time.Hour) // aligned ranges end on the hour, or the day
	dayAligned := now.Truncate(24 * time.Hour)
	run := func(name string, fn func() error) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if err := fn(); err != nil {
					b.Fatal(err)
				}
			}
			per := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(per.Microseconds())/1000, "ms/call")
			if per > DashboardBudget {
				b.Errorf("%s: %v per call, over the %v budget", name, per.Round(time.Microsecond), DashboardBudget)
			}
		})
	}

	// The keys page.
	run("ListKeys/first", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50})
		return err
	})
	last := d.Keys[len(d.Keys)/2]
	run("ListKeys/page", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50, After: &domain.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}})
		return err
	})
	active := true
	run("ListKeys/active", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50, Active: &active})
		return err
	})
	run("ListKeys/search", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50, NameContains: "Claude-Code"})
		return err
	})
	run("ListKeys/search_rare", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50, NameContains: "0042"})
		return err
	})
	run("ListKeys/search_none", func() error {
		_, err := s.ListKeys(ctx, domain.KeyFilter{Limit: 50, NameContains: "no-such-key"})
		return err
	})

	// Totals: the overview, the usage page and a key's page.
	groups := []domain.GroupBy{domain.GroupNone, domain.GroupDay, domain.GroupModel, domain.GroupKey, domain.GroupUpstream}
	spans := []struct {
		name string
		d    time.Duration
	}{{"24h", 24 * time.Hour}, {"7d", 7 * 24 * time.Hour}, {"30d", 30 * 24 * time.Hour}, {"90d", 90 * 24 * time.Hour}}
	for _, key := range []struct {
		name string
		id   *uuid.UUID
	}{{"all", nil}, {"topkey", &d.TopKey}, {"key", &d.TypicalKey}} {
		for _, sp := range spans {
			for _, g := range groups {
				if key.id != nil && g == domain.GroupKey {
					continue
				}
				gname := string(g)
				if g == domain.GroupNone {
					gname = "none"
				}
				ranges := []struct {
					name     string
					from, to time.Time
				}{{"now", now.Add(-sp.d), now}, {"hours", hourAgo.Add(-sp.d), hourAgo}, {"days", dayAligned.Add(-sp.d), dayAligned}}
				for _, rg := range ranges {
					q := domain.UsageQuery{KeyID: key.id, From: rg.from, To: rg.to, GroupBy: g}
					run(fmt.Sprintf("UsageTotals/%s/%s/%s/%s", key.name, sp.name, gname, rg.name), func() error {
						_, err := s.UsageTotals(ctx, q)
						return err
					})
				}
			}
		}
	}

	// The overview's charts.
	for _, sq := range []struct {
		name string
		q    domain.SeriesQuery
	}{
		{"hourly/7d", domain.SeriesQuery{From: hourAgo.Add(-7 * 24 * time.Hour), To: hourAgo.Add(time.Hour), Step: time.Hour}},
		{"hourly/90d", domain.SeriesQuery{From: hourAgo.Add(-90 * 24 * time.Hour), To: hourAgo.Add(time.Hour), Step: time.Hour}},
		{"daily/90d", domain.SeriesQuery{From: dayAligned.Add(-90 * 24 * time.Hour), To: dayAligned.Add(24 * time.Hour), Step: 24 * time.Hour}},
	} {
		run("UsageSeries/"+sq.name, func() error {
			_, err := s.UsageSeries(ctx, sq.q)
			return err
		})
	}

	// The logs page: the first page with each filter, a few together, a
	// time range and a page deep in the past.
	status := func(n int) *int { return &n }
	text := func(s string) *string { return &s }
	dayBefore, weekBefore := now.Add(-24*time.Hour), now.Add(-7*24*time.Hour)
	monthBefore := now.Add(-30 * 24 * time.Hour)
	logs := []struct {
		name string
		q    domain.LogQuery
	}{
		{"first", domain.LogQuery{}},
		{"topkey", domain.LogQuery{KeyID: &d.TopKey}},
		{"key", domain.LogQuery{KeyID: &d.TypicalKey}},
		{"status_200", domain.LogQuery{Status: status(200)}},
		{"status_429", domain.LogQuery{Status: status(429)}},
		{"status_529", domain.LogQuery{Status: status(529)}},
		{"status_404", domain.LogQuery{Status: status(404)}}, // none stored
		{"model", domain.LogQuery{Model: text("claude-sonnet-5-5")}},
		{"model_rare", domain.LogQuery{Model: text("claude-opus-4-6")}},
		{"model_none", domain.LogQuery{Model: text("claude-unknown")}},
		{"upstream", domain.LogQuery{Upstream: text("primary")}},
		{"upstream_rare", domain.LogQuery{Upstream: text("backup")}},
		{"upstream_none", domain.LogQuery{Upstream: text("decommissioned")}},
		{"refusals", domain.LogQuery{RefusalsOnly: true}},
		{"range_24h", domain.LogQuery{From: &dayBefore, To: &now}},
		{"range_past_week", domain.LogQuery{From: &monthBefore, To: &weekBefore}},
		{"topkey_status_529", domain.LogQuery{KeyID: &d.TopKey, Status: status(529)}},
		{"topkey_refusals", domain.LogQuery{KeyID: &d.TopKey, RefusalsOnly: true}},
		{"key_status_500", domain.LogQuery{KeyID: &d.TypicalKey, Status: status(500)}},
		{"model_status_529", domain.LogQuery{Model: text("claude-opus-5-5"), Status: status(529)}},
		{"upstream_status_500", domain.LogQuery{Upstream: text("secondary"), Status: status(500)}},
		{"model_upstream", domain.LogQuery{Model: text("claude-fable-5-2"), Upstream: text("backup")}},
		{"deep_cursor", domain.LogQuery{After: &domain.LogCursor{Time: now.Add(-60 * 24 * time.Hour), RequestID: "req_8"}}},
		{"topkey_deep_cursor", domain.LogQuery{KeyID: &d.TopKey, After: &domain.LogCursor{Time: now.Add(-80 * 24 * time.Hour)}}},
		{"status_deep_cursor", domain.LogQuery{Status: status(529), After: &domain.LogCursor{Time: now.Add(-80 * 24 * time.Hour)}}},
	}
	for _, l := range logs {
		q := l.q
		q.Limit = 50
		run("UsageLogs/"+l.name, func() error {
			_, err := s.UsageLogs(ctx, q)
			return err
		})
	}

	// What a budget is seeded from, for a key's page and the first request
	// of a key with a budget.
	for _, k := range []struct {
		name string
		id   uuid.UUID
	}{{"topkey", d.TopKey}, {"key", d.TypicalKey}} {
		run("SpendHistory/"+k.name, func() error {
			_, err := s.SpendHistory(ctx, k.id, now)
			return err
		})
	}
}
