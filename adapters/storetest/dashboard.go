package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// The dashboard's reads: the attempts of a request, the hourly series, and
// totals over any range (rollups for the whole units, records for the
// edges), each checked against sums computed here from the records.

func testUsageAttemptsRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	// plain is a record with nothing but the common columns (SQLite binds
	// fewer values for it); the others carry details too.
	plain := func(i int) domain.UsageRecord {
		return domain.UsageRecord{
			RequestID: fmt.Sprintf("req_attempts_%d_%s", i, uuid.NewString()[:8]), KeyID: key, Time: at(i), Model: "m",
			Status: 200, Upstream: "primary", Usage: domain.Usage{CacheReadInputTokens: 10},
			Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{CacheRead: 3, CacheSaved: 27}, Total: 3, PriceVersion: "v"},
		}
	}
	cases := []struct {
		attempts   int
		tried      []string
		wantAtt    int
		wantTried  []string
		withDetail bool
	}{
		{attempts: 0, wantAtt: 0},
		{attempts: 1, wantAtt: 1},
		{attempts: 3, tried: []string{"up_a", "up.b"}, wantAtt: 3, wantTried: []string{"up_a", "up.b"}},
		{attempts: 2, tried: []string{"primary"}, wantAtt: 2, wantTried: []string{"primary"}},
		// Past what the column holds, or negative: clamped, never a failed batch.
		{attempts: 1 << 20, wantAtt: 32767},
		{attempts: -4, wantAtt: 0},
		// A comma cannot split an id in two; stored text is cleaned.
		{attempts: 2, tried: []string{"a,b"}, wantAtt: 2, wantTried: []string{"a_b"}},
		{attempts: 2, tried: []string{"x\x00y\xff"}, wantAtt: 2, wantTried: []string{"xy\uFFFD"}},
		{attempts: 4, tried: []string{"a", "b", "c"}, wantAtt: 4, wantTried: []string{"a", "b", "c"}, withDetail: true},
		{attempts: 1, wantAtt: 1, withDetail: true},
	}
	var recs, want []domain.UsageRecord
	for i, c := range cases {
		r := plain(i)
		if c.withDetail {
			r = rec(key, at(i), "m", int64(i+1))
		}
		r.Attempts, r.TriedUpstreams = c.attempts, c.tried
		recs = append(recs, r)
		w := r
		w.Attempts, w.TriedUpstreams = c.wantAtt, c.wantTried
		want = append(want, w)
	}
	must(t, s.InsertUsage(ctx, recs), "insert")
	logs, err := s.UsageLogs(ctx, domain.LogQuery{KeyID: &key, Limit: 100})
	must(t, err, "logs")
	want = newestFirst(want)
	if len(logs) != len(want) {
		t.Fatalf("%d logs, want %d", len(logs), len(want))
	}
	for i := range want {
		if w := normRec(want[i]); !reflect.DeepEqual(logs[i], w) {
			t.Errorf("record %s:\n got attempts %d tried %q cost %+v\nwant attempts %d tried %q cost %+v",
				w.RequestID, logs[i].Attempts, logs[i].TriedUpstreams, logs[i].Cost, w.Attempts, w.TriedUpstreams, w.Cost)
		}
	}
}

// seriesOf is what UsageSeries should return for recs over [from, to) in
// steps of step.
func seriesOf(recs []domain.UsageRecord, from, to time.Time, step time.Duration) []domain.SeriesPoint {
	m := map[time.Time]*domain.SeriesPoint{}
	for _, r := range recs {
		t := normTime(r.Time)
		if t.Before(from) || !t.Before(to) {
			continue
		}
		start := t.Truncate(step).UTC()
		p := m[start]
		if p == nil {
			p = &domain.SeriesPoint{Start: start, TTFB: make([]int64, domain.TTFBBuckets)}
			m[start] = p
		}
		p.Requests++
		p.Usage = p.Usage.Add(r.Usage)
		p.Cost += r.Cost.Total
		p.CacheSaved += r.Cost.CacheSaved
		p.Status.Count(r.Status, r.Upstream)
		// The store keeps microseconds.
		if b, ok := domain.TTFBBucket(r.TTFB.Truncate(time.Microsecond)); ok {
			p.TTFB[b]++
		}
	}
	out := make([]domain.SeriesPoint, 0, len(m))
	for _, p := range m {
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b domain.SeriesPoint) int { return a.Start.Compare(b.Start) })
	return out
}

func testUsageSeries(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	var recs []domain.UsageRecord
	add := func(at time.Time, status int, upstream string, ttfb time.Duration, n int64) {
		r := rec(key, at, "m", n)
		r.Status, r.Upstream, r.TTFB = status, upstream, ttfb
		recs = append(recs, r)
	}
	// Every TTFB bucket at and just past its bound, and none at all.
	for i, b := range domain.TTFBBucketBounds {
		add(base.Add(time.Duration(i)*time.Minute), 200, "primary", b, int64(i+1))
		add(base.Add(time.Duration(i)*time.Minute+time.Second), 200, "primary", b+time.Microsecond, int64(i+2))
	}
	add(base.Add(30*time.Minute), 200, "primary", 0, 3)
	add(base.Add(31*time.Minute), 200, "primary", 999*time.Nanosecond, 4) // under a microsecond: stored as none
	// Every status class, refusals among them, in other hours and days.
	h := time.Hour
	statuses := []struct {
		status   int
		upstream string
	}{{200, "a"}, {304, "a"}, {400, "a"}, {401, ""}, {429, ""}, {429, "b"}, {500, "b"}, {503, ""}, {529, "a"}, {600, "a"}, {0, ""}}
	for i, st := range statuses {
		at := base.Add(h + time.Duration(i)*7*time.Minute) // hours 1 and 2
		add(at, st.status, st.upstream, time.Duration(i+1)*37*time.Millisecond, int64(i+5))
		add(base.Add(26*h+time.Duration(i)*time.Second), st.status, st.upstream, 2*time.Second, int64(i+1)) // day 2, hour 2
	}
	add(base.Add(-time.Microsecond), 200, "a", time.Second, 9) // the hour before base
	add(base.Add(3*24*h+23*h+59*time.Minute), 200, "a", time.Second, 9)

	// Two batches, one hour in both; then the first again, which counts
	// nowhere, and a batch of records stored already and new ones, of
	// which only the new count.
	half := len(recs) / 2
	must(t, s.InsertUsage(ctx, recs[:half]), "insert")
	must(t, s.InsertUsage(ctx, recs[half:len(recs)-3]), "insert")
	must(t, s.InsertUsage(ctx, recs[:half]), "insert again")
	must(t, s.InsertUsage(ctx, recs[half-2:]), "insert some again")
	// Stored records between new ones, a record given twice in one batch,
	// narrow (plain) records and full ones in one call: each record counts
	// once, as the table holds it once.
	n0 := len(recs)
	for i := range 4 {
		add(base.Add(h+time.Duration(40+i)*time.Second), 200, "a", time.Second, int64(i+2))
	}
	for i := n0; i < n0+2; i++ {
		r := &recs[i]
		r.RequestedModel, r.ServerTools, r.Speed, r.InferenceGeo, r.Batch, r.Iterations = "", domain.ServerToolUse{}, "", "", false, nil
		r.Cost.CacheWrite1h, r.Cost.WebSearch, r.Cost.WebFetch, r.Cost.Detail, r.Cost.Fallback5m, r.Cost.Unpriced = 0, 0, 0, nil, false, false
	}
	f := recs[n0:]
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{f[0], recs[1], f[1], recs[half], f[2], f[1], recs[2], f[3], f[0]}),
		"insert stored and new, interleaved, with a record twice")

	check := func(what string, q domain.SeriesQuery, recs []domain.UsageRecord) {
		t.Helper()
		got, err := s.UsageSeries(ctx, q)
		must(t, err, what)
		want := seriesOf(recs, q.From, q.To, q.Step)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
		}
	}
	day := 24 * h
	check("hourly, every record", domain.SeriesQuery{From: base.Add(-day), To: base.Add(5 * day), Step: h}, recs)
	check("hourly, a part", domain.SeriesQuery{From: base.Add(h), To: base.Add(2 * h), Step: h}, recs)
	check("daily, every record", domain.SeriesQuery{From: base.Add(-day), To: base.Add(5 * day), Step: day}, recs)
	// A day step over a range that starts and ends inside days: the first
	// and last days hold their hours in range only.
	check("daily, partial days", domain.SeriesQuery{From: base.Add(2 * h), To: base.Add(26 * h), Step: day}, recs)
	check("nothing in range", domain.SeriesQuery{From: base.Add(10 * day), To: base.Add(11 * day), Step: h}, recs)
	if got, err := s.UsageSeries(ctx, domain.SeriesQuery{From: base.Add(10 * day), To: base.Add(11 * day), Step: h}); err != nil || got == nil {
		t.Errorf("an empty series is %v, %v; want an empty list", got, err)
	}

	// Repricing moves the hourly rollup with the records.
	stored := storedCosts(t, s)
	var updates []ports.CostUpdate
	for i, r := range recs[:5] {
		old := stored[r.RequestID]
		updates = append(updates, ports.CostUpdate{RequestID: r.RequestID, Old: old, New: repriced(old, "2025-06-01", i%2 == 0)})
		recs[i].Cost = updates[i].New
	}
	_, err := s.UpdateUsageCosts(ctx, updates)
	must(t, err, "reprice")
	check("hourly, after repricing", domain.SeriesQuery{From: base.Add(-day), To: base.Add(5 * day), Step: h}, recs)

	for _, q := range []domain.SeriesQuery{
		{From: base, To: base, Step: h},
		{From: base.Add(time.Minute), To: base.Add(h), Step: h},
		{From: base, To: base.Add(93 * day), Step: h},
		{From: base, To: base.Add(day), Step: time.Minute},
	} {
		_, err := s.UsageSeries(ctx, q)
		wantKind(t, err, domain.KindInvalid, fmt.Sprintf("series %+v", q))
	}
}

// testUsageTotalsRandom checks UsageTotals against sums of the records over
// random ranges: open, on a month, a day or an hour, or anywhere, crossing
// months, in the past and up to now (and past it, for a clock that ran
// ahead), in every grouping, for every key and for one.
func testUsageTotalsRandom(t *testing.T, s ports.Store) {
	// About a thousand totals queries: under the race detector the
	// in-process SQLite engine needs 50-60 s for them, ctxT's whole minute.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	mustTier(t, s, "basic")
	keys := []domain.APIKey{mustKey(t, s, newKey("alpha", base)), mustKey(t, s, newKey("beta", base)), mustKey(t, s, newKey("gamma", base))}
	rng := rand.New(rand.NewPCG(7, uint64(time.Now().UnixNano())))
	day, h := 24*time.Hour, time.Hour
	now := time.Now().UTC()
	// Two spans of 80 days, each across three months: around base, and
	// up to a few days past now.
	spans := [][2]time.Time{{base.Add(-40 * day), base.Add(40 * day)}, {now.Add(-77 * day), now.Add(3 * day)}}
	monthOf := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	// randTime is a time in one of the spans: on a month, a day or an hour
	// boundary now and then (or just before one), at any microsecond
	// otherwise.
	randTime := func() time.Time {
		sp := spans[rng.IntN(len(spans))]
		at := sp[0].Add(time.Duration(rng.Int64N(int64(sp[1].Sub(sp[0])))))
		switch rng.IntN(8) {
		case 0:
			return at.Truncate(day)
		case 1:
			return at.Truncate(h)
		case 2:
			return at.Truncate(h).Add(-time.Microsecond)
		case 3:
			return monthOf(at)
		}
		return at.Truncate(time.Microsecond)
	}
	models := []string{"opus", "sonnet", "haiku"}
	upstreams := []string{"primary", "up_b", ""}
	var recs []domain.UsageRecord
	for i := range 600 {
		r := rec(keys[rng.IntN(len(keys))].ID, randTime(), models[rng.IntN(len(models))], int64(rng.IntN(50)+1))
		r.Upstream = upstreams[rng.IntN(len(upstreams))]
		if i%17 == 0 {
			r.KeyID = uuid.New() // a key the store does not know: no name
		}
		recs = append(recs, r)
	}
	for start := 0; start < len(recs); start += 64 {
		must(t, s.InsertUsage(ctx, recs[start:min(start+64, len(recs))]), "insert")
	}
	must(t, s.DeleteKey(ctx, keys[1].ID, now), "delete a key") // its name stays

	bound := func() time.Time {
		switch rng.IntN(6) {
		case 0:
			return time.Time{}
		case 1:
			return randTime().Truncate(day)
		case 2:
			return randTime().Truncate(h)
		case 3:
			return monthOf(randTime())
		}
		return randTime()
	}
	for i := range 120 {
		from, to := bound(), bound()
		if !from.IsZero() && !to.IsZero() && to.Before(from) {
			from, to = to, from
		}
		if i%10 == 0 && !from.IsZero() {
			from = from.In(time.FixedZone("X", 5*3600+1800)) // the range is UTC whatever the zone
		}
		in := filterRecs(recs, func(r domain.UsageRecord) bool {
			return (from.IsZero() || !r.Time.Before(from)) && (to.IsZero() || r.Time.Before(to))
		})
		for g, fn := range groupings {
			for _, key := range []*uuid.UUID{nil, &keys[rng.IntN(len(keys))].ID} {
				q := domain.UsageQuery{From: from, To: to, GroupBy: g, KeyID: key}
				subset := in
				if key != nil {
					subset = filterRecs(in, func(r domain.UsageRecord) bool { return r.KeyID == *key })
				}
				want := totalsOf(subset, fn)
				if g == domain.GroupNone && len(want) == 0 {
					want = []domain.UsageTotals{{}}
				}
				got, err := s.UsageTotals(ctx, q)
				must(t, err, "totals")
				if (len(got) != 0 || len(want) != 0) && !reflect.DeepEqual(got, want) {
					t.Fatalf("from %v to %v, group %q, key %v:\n got %+v\nwant %+v", from, to, g, key, got, want)
				}
			}
		}
	}
}
