package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

func testUsageCostRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }

	detailed := rec(key, at(1), "claude-opus-4-5", 10) // fallback 5m and a detail
	unpriced := rec(key, at(2), "claude-unknown", 7)   // unpriced tokens, no detail
	never := domain.UsageRecord{RequestID: "req_never_" + uuid.NewString(), KeyID: key, Time: at(3), Model: "m"}
	refusal := rec(key, at(4), "claude-sonnet-4-5", 3)
	refusal.Status, refusal.Upstream = 429, ""
	refusal.Cost = domain.RecordCost{PriceVersion: "2025-03-01", Unpriced: true}
	// Amounts past 2⁵³ read back exactly: a float would round them.
	huge := rec(key, at(5), "claude-opus-4-5", 1)
	huge.Cost = domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 1<<53 + 1, Output: 1<<60 + 3}, PriceVersion: "v"}
	huge.Cost.Total, _ = huge.Cost.Sum()
	// A detail keeps its bytes, spacing included.
	spaced := rec(key, at(6), "m", 4)
	spaced.Cost.Detail = json.RawMessage("{ \"parts\" : [ 1, 2 ] }\n")
	// A detail that is not JSON is dropped, not stored: readers pass it on
	// as JSON.
	broken := rec(key, at(7), "m", 6)
	broken.Cost.Detail = json.RawMessage(`{"parts": [`)
	// An empty, non-nil detail is none.
	empty := rec(key, at(8), "m", 8)
	empty.Cost.Detail = json.RawMessage{}

	recs := []domain.UsageRecord{detailed, unpriced, never, refusal, huge, spaced, broken, empty}
	must(t, s.InsertUsage(ctx, recs), "insert")
	broken.Cost.Detail, empty.Cost.Detail = nil, nil

	logs, err := s.UsageLogs(ctx, domain.LogQuery{KeyID: &key})
	must(t, err, "logs")
	want := newestFirst([]domain.UsageRecord{detailed, unpriced, never, refusal, huge, spaced, broken, empty})
	if len(logs) != len(want) {
		t.Fatalf("%d logs, want %d", len(logs), len(want))
	}
	for i := range want {
		if w := normRec(want[i]); !reflect.DeepEqual(logs[i], w) {
			t.Errorf("record %s:\n got %+v\nwant %+v", w.RequestID, logs[i], w)
		}
		if len(want[i].Cost.Detail) == 0 && logs[i].Cost.Detail != nil {
			t.Errorf("record %s: detail %q, want nil", want[i].RequestID, logs[i].Cost.Detail)
		}
	}
	// Text in a cost is cleaned as all stored text is, and a detail stays
	// JSON.
	hostile := rec(key, at(9), "m", 5)
	hostile.Cost.PriceVersion = "2025\x00-03\xff"
	hostile.Cost.Detail = json.RawMessage("{\"model\":\"claude\xff\"}")
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{hostile}), "insert hostile cost")
	logs, err = s.UsageLogs(ctx, domain.LogQuery{KeyID: &key, Limit: 1})
	must(t, err, "logs")
	if c := logs[0].Cost; c.PriceVersion != "2025-03\uFFFD" || string(c.Detail) != "{\"model\":\"claude\uFFFD\"}" || !json.Valid(c.Detail) {
		t.Fatalf("hostile cost stored as version %q, detail %q", c.PriceVersion, c.Detail)
	}
}

// totalsBothWays returns the totals of every stored record grouped by g,
// once over an unbounded range (the rollups alone) and once from a second
// after the epoch (the rollups, and the records of the partial hour or day
// it starts in).
func totalsBothWays(t *testing.T, s ports.Store, g domain.GroupBy) (rollup, records []domain.UsageTotals) {
	t.Helper()
	ctx := ctxT(t)
	rollup, err := s.UsageTotals(ctx, domain.UsageQuery{GroupBy: g})
	must(t, err, "totals from the rollup")
	records, err = s.UsageTotals(ctx, domain.UsageQuery{GroupBy: g, From: time.Unix(1, 0)})
	must(t, err, "totals from the records")
	return sortedTotals(rollup), sortedTotals(records)
}

var groupings = map[domain.GroupBy]func(domain.UsageRecord) string{
	domain.GroupNone:     func(domain.UsageRecord) string { return "" },
	domain.GroupKey:      func(r domain.UsageRecord) string { return r.KeyID.String() },
	domain.GroupDay:      func(r domain.UsageRecord) string { return r.Time.UTC().Format(time.DateOnly) },
	domain.GroupModel:    func(r domain.UsageRecord) string { return r.Model },
	domain.GroupUpstream: func(r domain.UsageRecord) string { return r.Upstream },
}

// wantTotals checks that the rollup and the records both sum to recs, in
// every grouping.
func wantTotals(t *testing.T, s ports.Store, recs []domain.UsageRecord, what string) {
	t.Helper()
	for g, fn := range groupings {
		rollup, records := totalsBothWays(t, s, g)
		want := totalsOf(recs, fn)
		if !reflect.DeepEqual(rollup, want) {
			t.Errorf("%s, group %q, from the rollup:\n got %+v\nwant %+v", what, g, rollup, want)
		}
		if !reflect.DeepEqual(records, want) {
			t.Errorf("%s, group %q, from the records:\n got %+v\nwant %+v", what, g, records, want)
		}
	}
}

func testUsageTotalsCost(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	_, _, recs := usageFixture(t, s)
	// Records without a price, or with nothing priced, add nothing.
	never := domain.UsageRecord{RequestID: "req_never_" + uuid.NewString(), KeyID: recs[0].KeyID, Time: recs[0].Time, Model: "opus"}
	refusal := rec(recs[1].KeyID, recs[1].Time, "sonnet", 3)
	refusal.Status, refusal.Upstream, refusal.Cost = 429, "", domain.RecordCost{PriceVersion: "2025-03-01", Unpriced: true}
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{never, refusal}), "insert unpriced")
	recs = append(recs, never, refusal)
	wantTotals(t, s, recs, "stored records")

	var total domain.Nanodollars
	for _, r := range recs {
		total += r.Cost.Total
	}
	if total == 0 {
		t.Fatal("the fixture costs nothing")
	}
	// A range of whole days (the rollup) and the same records by a range
	// that is not (the records) agree.
	day := 24 * time.Hour
	aligned, err := s.UsageTotals(ctx, domain.UsageQuery{From: base.Add(day), To: base.Add(3 * day), GroupBy: domain.GroupModel})
	must(t, err, "aligned")
	unaligned, err := s.UsageTotals(ctx, domain.UsageQuery{From: base.Add(day), To: base.Add(3*day - time.Microsecond), GroupBy: domain.GroupModel})
	must(t, err, "unaligned")
	in := filterRecs(recs, func(r domain.UsageRecord) bool { return !r.Time.Before(base.Add(day)) })
	if want := totalsOf(in, groupings[domain.GroupModel]); !reflect.DeepEqual(aligned, want) || !reflect.DeepEqual(unaligned, want) {
		t.Fatalf("days 2-3 by model:\n rollup  %+v\n records %+v\n want    %+v", aligned, unaligned, want)
	}
}

// spendOf sums the history's buckets per start (a bucket may be listed
// twice), leaving out empty ones (which may be listed or not).
func spendOf(t *testing.T, h budget.History) map[int64]domain.Nanodollars {
	t.Helper()
	out := map[int64]domain.Nanodollars{}
	for _, b := range h.Buckets {
		if b.Start.Unix()%300 != 0 || b.Start.Nanosecond() != 0 {
			t.Fatalf("bucket start %v is not on a 5-minute boundary", b.Start)
		}
		out[b.Start.Unix()] += b.Amount
	}
	for k, v := range out {
		if v == 0 {
			delete(out, k)
		}
	}
	return out
}

func testSpendHistory(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key, other := uuid.New(), uuid.New()
	// Off every boundary, and finer than the stored microsecond.
	asOf := base.Add(40*24*time.Hour + 7*time.Minute + 13*time.Second + 500*time.Nanosecond)
	start := asOf.Add(-budget.HistorySpan)
	bucket := time.Unix(start.Unix()/300*300+3*300, 0) // a bucket well inside the span
	priced := func(id string, at time.Time, total domain.Nanodollars) domain.UsageRecord {
		r := rec(key, at, "m", 1)
		r.RequestID = id + "_" + uuid.NewString()
		r.Cost = domain.RecordCost{CostBreakdown: domain.CostBreakdown{Output: total}, Total: total, PriceVersion: "v1"}
		return r
	}
	recs := []domain.UsageRecord{
		priced("old", asOf.Add(-40*24*time.Hour), 1_000),                                 // before the span: total only
		priced("just_before", start.Truncate(time.Microsecond), 20_000),                  // 500 ns before the span
		priced("first", start.Truncate(time.Microsecond).Add(time.Microsecond), 300_000), // the first stored instant inside
		priced("a", bucket.Add(10*time.Second), 4_000_000),
		priced("b", bucket.Add(5*time.Minute-time.Microsecond), 50_000_000), // same bucket as a
		priced("c", bucket.Add(5*time.Minute), 600_000_000),                 // the next one
		priced("zero", bucket.Add(20*time.Minute), 0),
		priced("recent", asOf.Add(-time.Second), 7),
		priced("ahead", asOf.Add(time.Hour), 80), // a replica whose clock runs ahead
	}
	theirs := priced("theirs", bucket, 9_000_000_000)
	theirs.KeyID = other
	must(t, s.InsertUsage(ctx, append(slices.Clone(recs), theirs)), "insert")

	h, err := s.SpendHistory(ctx, key, asOf)
	must(t, err, "spend history")
	must(t, h.Validate(), "history is well formed")
	if !h.AsOf.Equal(asOf) {
		t.Fatalf("AsOf = %v, want %v", h.AsOf, asOf)
	}
	want := map[int64]domain.Nanodollars{}
	var total domain.Nanodollars
	for _, r := range recs {
		total += r.Cost.Total
		if !r.Time.Before(start) && r.Cost.Total != 0 {
			want[r.Time.Unix()/300*300] += r.Cost.Total
		}
	}
	if got := spendOf(t, h); !reflect.DeepEqual(got, want) {
		t.Fatalf("buckets:\n got %v\nwant %v", got, want)
	}
	if want[bucket.Unix()] != 54_000_000 {
		t.Fatalf("fixture: bucket %v holds %d", bucket, want[bucket.Unix()])
	}
	if h.Total != total {
		t.Fatalf("total = %d, want %d (records older than the span count)", h.Total, total)
	}
}

func testSpendHistoryEmpty(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	h, err := s.SpendHistory(ctx, uuid.New(), base)
	must(t, err, "history of an unknown key")
	must(t, h.Validate(), "empty history is well formed")
	if len(h.Buckets) != 0 || h.Total != 0 {
		t.Fatalf("history of an unknown key = %+v", h)
	}
	_, err = s.SpendHistory(ctx, uuid.New(), time.Time{})
	wantKind(t, err, domain.KindInvalid, "zero as_of")
}

// normPrice is v as a store returns it: UTC, microsecond precision.
func normPrice(v ports.PriceTableVersion) ports.PriceTableVersion {
	v.CreatedAt = normTime(v.CreatedAt)
	return v
}

func testPriceTables(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	_, err := s.CurrentPriceTable(ctx)
	wantKind(t, err, domain.KindNotFound, "current of none")
	if !isErr(err, domain.ErrNotFound) {
		t.Fatalf("errors.Is(err, ErrNotFound) = false for %v", err)
	}
	list, err := s.ListPriceTables(ctx)
	must(t, err, "list none")
	if len(list) != 0 {
		t.Fatalf("list of none = %+v", list)
	}

	at := base.Add(123456789 * time.Nanosecond).In(time.FixedZone("CET", 3600))
	table := func(v string) []byte {
		// Spacing kept: the store holds the bytes it was given.
		return []byte(fmt.Sprintf("{\n  \"version\": %q,\n  \"models\": {\"claude-opus-4-5\": {\"input\": \"5\"}}\n}\n", v))
	}
	v1 := ports.PriceTableVersion{Version: "2025-11-24", Table: table("2025-11-24"), CreatedAt: at, CreatedBy: "seed", Comment: "embedded seed: anthropic.com/pricing"}
	v2 := ports.PriceTableVersion{Version: "2025-12-01-ops", Table: table("2025-12-01-ops"), CreatedAt: at.Add(time.Hour), CreatedBy: "admin", Comment: "opus discount"}
	// Created earlier but stored later: not the newest.
	v3 := ports.PriceTableVersion{Version: "2025-10-01", Table: table("2025-10-01"), CreatedAt: at.Add(-time.Hour), CreatedBy: "admin"}
	// Created at the same instant as v2 and stored after it: the newest.
	v4 := ports.PriceTableVersion{Version: "2025-12-01-fix", Table: table("2025-12-01-fix"), CreatedAt: v2.CreatedAt, CreatedBy: "admin", Comment: "typo"}

	current := func(want ports.PriceTableVersion, what string) {
		t.Helper()
		got, err := s.CurrentPriceTable(ctx)
		must(t, err, what)
		if !reflect.DeepEqual(got, normPrice(want)) {
			t.Fatalf("%s: current = %+v, want %+v", what, got, normPrice(want))
		}
	}
	must(t, s.PutPriceTable(ctx, v1), "put v1")
	current(v1, "after v1")
	must(t, s.PutPriceTable(ctx, v2), "put v2")
	current(v2, "after v2")
	must(t, s.PutPriceTable(ctx, v3), "put v3")
	current(v2, "after an older v3")
	must(t, s.PutPriceTable(ctx, v4), "put v4")
	current(v4, "after v4, tied with v2")

	for _, v := range []ports.PriceTableVersion{v1, v2, v3, v4} {
		got, err := s.GetPriceTable(ctx, v.Version)
		must(t, err, "get "+v.Version)
		if !reflect.DeepEqual(got, normPrice(v)) {
			t.Fatalf("get %s:\n got %+v\nwant %+v", v.Version, got, normPrice(v))
		}
		if got.CreatedAt.Location() != time.UTC {
			t.Fatalf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
		}
	}
	_, err = s.GetPriceTable(ctx, "2099-01-01")
	wantKind(t, err, domain.KindNotFound, "get missing")
	_, err = s.GetPriceTable(ctx, "bad\x00version")
	wantKind(t, err, domain.KindNotFound, "get a version that cannot be stored")

	// A version is stored once and never changes.
	changed := v1
	changed.Table, changed.Comment = table("changed"), "overwrite"
	for _, v := range []ports.PriceTableVersion{v1, changed} {
		err := s.PutPriceTable(ctx, v)
		wantKind(t, err, domain.KindConflict, "put "+v.Version+" again")
		if !isErr(err, domain.ErrConflict) {
			t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
		}
	}
	got, err := s.GetPriceTable(ctx, v1.Version)
	must(t, err, "get v1 after conflicts")
	if !reflect.DeepEqual(got, normPrice(v1)) {
		t.Fatalf("v1 changed by a refused put: %+v", got)
	}

	list, err = s.ListPriceTables(ctx)
	must(t, err, "list")
	var want []ports.PriceTableVersion
	for _, v := range []ports.PriceTableVersion{v4, v2, v1, v3} {
		v = normPrice(v)
		v.Table = nil
		want = append(want, v)
	}
	if !reflect.DeepEqual(list, want) {
		t.Fatalf("list:\n got %+v\nwant %+v", list, want)
	}

	// A zero CreatedAt is the time of storing.
	before := time.Now().Add(-time.Second)
	must(t, s.PutPriceTable(ctx, ports.PriceTableVersion{Version: "now", Table: []byte(`{}`)}), "put without a time")
	got, err = s.GetPriceTable(ctx, "now")
	must(t, err, "get now")
	if got.CreatedAt.Before(before) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedAt of a version stored without one = %v", got.CreatedAt)
	}
}

func testPriceTablesInvalid(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	ok := ports.PriceTableVersion{Version: "v1", Table: []byte(`{"models":{}}`), CreatedAt: base, CreatedBy: "admin"}
	cases := map[string]func(*ports.PriceTableVersion){
		"empty version":     func(v *ports.PriceTableVersion) { v.Version = "" },
		"version with NUL":  func(v *ports.PriceTableVersion) { v.Version = "v\x00" },
		"version not UTF-8": func(v *ports.PriceTableVersion) { v.Version = "v\xff" },
		"no table":          func(v *ports.PriceTableVersion) { v.Table = nil },
		"table not JSON":    func(v *ports.PriceTableVersion) { v.Table = []byte(`{"models":`) },
		"table not UTF-8":   func(v *ports.PriceTableVersion) { v.Table = []byte("{\"m\":\"\xff\"}") },
		"author with NUL":   func(v *ports.PriceTableVersion) { v.CreatedBy = "ad\x00min" },
		"comment not UTF-8": func(v *ports.PriceTableVersion) { v.Comment = "\xc3" },
	}
	for name, change := range cases {
		v := ok
		change(&v)
		wantKind(t, s.PutPriceTable(ctx, v), domain.KindInvalid, name)
	}
	list, err := s.ListPriceTables(ctx)
	must(t, err, "list")
	if len(list) != 0 {
		t.Fatalf("refused versions were stored: %+v", list)
	}
}

// repriced is c priced again under another version: every class changed,
// the detail replaced by one or dropped.
func repriced(c domain.RecordCost, version string, withDetail bool) domain.RecordCost {
	n := c
	n.CostBreakdown = domain.CostBreakdown{
		Input: c.Input*2 + 1, Output: c.Output / 2, CacheWrite5m: c.CacheWrite5m + 5, CacheWrite1h: c.CacheWrite1h * 3,
		CacheRead: 0, WebSearch: c.WebSearch + 7, WebFetch: c.WebFetch + 11, CacheSaved: c.CacheSaved*2 + 13,
	}
	n.Total, _ = n.Sum()
	n.PriceVersion = version
	n.Fallback5m, n.Unpriced = !c.Fallback5m, false
	n.Detail = nil
	if withDetail {
		n.Detail = json.RawMessage(fmt.Sprintf(`{"price_version":%q,"total":%d}`, version, n.Total))
	}
	return n
}

// storedCosts reads every stored record's cost, as a repricer does.
func storedCosts(t *testing.T, s ports.Store) map[string]domain.RecordCost {
	t.Helper()
	logs, err := s.UsageLogs(ctxT(t), domain.LogQuery{Limit: 1 << 20})
	must(t, err, "logs")
	out := map[string]domain.RecordCost{}
	for _, r := range logs {
		out[r.RequestID] = r.Cost
	}
	return out
}

// withCosts is recs with the costs stored now.
func withCosts(t *testing.T, s ports.Store, recs []domain.UsageRecord) []domain.UsageRecord {
	t.Helper()
	costs := storedCosts(t, s)
	out := slices.Clone(recs)
	for i := range out {
		out[i].Cost = costs[out[i].RequestID]
	}
	return out
}

func testRepriceApplies(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	k1, _, recs := usageFixture(t, s)
	before, err := s.GetKey(ctx, k1.ID)
	must(t, err, "get key")

	n, err := s.UpdateUsageCosts(ctx, nil)
	if err != nil || n != 0 {
		t.Fatalf("empty repricing = %d, %v", n, err)
	}

	// Reprice four records, on three days and both models, one twice over
	// the call (its second update reads what the first wrote).
	stored := storedCosts(t, s)
	var updates []ports.CostUpdate
	want := slices.Clone(recs)
	for i, r := range recs[:4] {
		old := stored[r.RequestID]
		updates = append(updates, ports.CostUpdate{RequestID: r.RequestID, Old: old, New: repriced(old, "2025-06-01", i%2 == 0)})
		want[i].Cost = updates[i].New
	}
	again := repriced(updates[0].New, "2025-07-01", false)
	updates = append(updates, ports.CostUpdate{RequestID: recs[0].RequestID, Old: updates[0].New, New: again})
	want[0].Cost = again

	n, err = s.UpdateUsageCosts(ctx, updates)
	must(t, err, "reprice")
	if n != len(updates) {
		t.Fatalf("applied %d of %d updates", n, len(updates))
	}
	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	must(t, err, "logs")
	byID := map[string]domain.UsageRecord{}
	for _, r := range logs {
		byID[r.RequestID] = r
	}
	for _, w := range want {
		if got := byID[w.RequestID]; !reflect.DeepEqual(got, normRec(w)) {
			t.Errorf("record %s after repricing:\n got %+v\nwant %+v", w.RequestID, got.Cost, w.Cost)
		}
	}
	wantTotals(t, s, want, "after repricing")

	var k1Total domain.Nanodollars
	for _, r := range want {
		if r.KeyID == k1.ID {
			k1Total += r.Cost.Total
		}
	}
	h, err := s.SpendHistory(ctx, k1.ID, base.Add(10*24*time.Hour))
	must(t, err, "spend history")
	if h.Total != k1Total {
		t.Fatalf("spend total after repricing = %d, want %d", h.Total, k1Total)
	}
	after, err := s.GetKey(ctx, k1.ID)
	must(t, err, "get key")
	if after.TokensUsed != before.TokensUsed || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatalf("repricing changed the key: %s, was %s", fmtKey(after), fmtKey(before))
	}

	// The same updates again find every record changed: none applies.
	n, err = s.UpdateUsageCosts(ctx, updates[:4])
	must(t, err, "reprice again")
	if n != 0 {
		t.Fatalf("a repeated repricing applied %d updates", n)
	}
	wantTotals(t, s, want, "after a repeated repricing")
}

func testRepriceSkipsStale(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	var recs []domain.UsageRecord
	for i := range 6 {
		recs = append(recs, rec(key, base.Add(time.Duration(i)*time.Hour), fmt.Sprintf("m%d", i%2), int64(i+1)))
	}
	must(t, s.InsertUsage(ctx, recs), "insert")
	cur := func(i int) domain.RecordCost { return recs[i].Cost }
	wrongTotal := cur(0)
	wrongTotal.Total++
	wrongVersion := cur(1)
	wrongVersion.PriceVersion = "2024-01-01"
	// The classes differ from the stored ones, the total and version do
	// not: the update applies, and the rollup moves by what the record
	// held, so it still agrees with the records.
	oddClasses := cur(2)
	oddClasses.Input, oddClasses.Output = oddClasses.Output, oddClasses.Input+1
	updates := []ports.CostUpdate{
		{RequestID: recs[0].RequestID, Old: wrongTotal, New: repriced(cur(0), "v2", false)},
		{RequestID: recs[1].RequestID, Old: wrongVersion, New: repriced(cur(1), "v2", false)},
		{RequestID: recs[2].RequestID, Old: oddClasses, New: repriced(cur(2), "v2", true)},
		{RequestID: "req_never_stored", Old: cur(3), New: repriced(cur(3), "v2", false)},
		{RequestID: "req_\x00", Old: cur(3), New: repriced(cur(3), "v2", false)},
		// Two updates from one read: the second finds the first's work.
		{RequestID: recs[3].RequestID, Old: cur(3), New: repriced(cur(3), "v2", false)},
		{RequestID: recs[3].RequestID, Old: cur(3), New: repriced(cur(3), "v3", false)},
		// An update that changes nothing is still applied.
		{RequestID: recs[4].RequestID, Old: cur(4), New: cur(4)},
	}
	n, err := s.UpdateUsageCosts(ctx, updates)
	must(t, err, "reprice")
	if n != 3 {
		t.Fatalf("applied %d updates, want 3 (records 2, 3 and 4)", n)
	}
	want := slices.Clone(recs)
	want[2].Cost = updates[2].New
	want[3].Cost = updates[5].New
	got := withCosts(t, s, recs)
	for i := range want {
		if !reflect.DeepEqual(got[i].Cost, want[i].Cost) {
			t.Errorf("record %d cost:\n got %+v\nwant %+v", i, got[i].Cost, want[i].Cost)
		}
	}
	wantTotals(t, s, want, "after a partly stale repricing")
}

func testRepriceInvalid(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	r := rec(key, base, "m", 3)
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{r}), "insert")
	good := ports.CostUpdate{RequestID: r.RequestID, Old: r.Cost, New: repriced(r.Cost, "v2", false)}
	badDetail := good
	badDetail.New.Detail = json.RawMessage(`{"total":`)
	badVersion := good
	badVersion.New.PriceVersion = "v\x00"
	for name, bad := range map[string]ports.CostUpdate{"detail not JSON": badDetail, "version with NUL": badVersion} {
		// The good update in the same call is not written either.
		n, err := s.UpdateUsageCosts(ctx, []ports.CostUpdate{good, bad})
		wantKind(t, err, domain.KindInvalid, name)
		if n != 0 {
			t.Fatalf("%s: applied %d", name, n)
		}
	}
	wantTotals(t, s, []domain.UsageRecord{r}, "after refused repricings")
	if got := withCosts(t, s, []domain.UsageRecord{r}); !reflect.DeepEqual(got[0].Cost, r.Cost) {
		t.Fatalf("cost after refused repricings = %+v", got[0].Cost)
	}
}

// testRepriceConcurrent runs two repricings of the same records, each from
// the same read, beside usage batches of the same keys, days and models:
// every record takes exactly one of the new costs, nothing fails (no
// deadlock between a repricing and a batch), and the rollup still agrees
// with the records.
func testRepriceConcurrent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	keys := []domain.APIKey{mustKey(t, s, newKey("k1", base)), mustKey(t, s, newKey("k2", base)), mustKey(t, s, newKey("k3", base))}
	at := func(i int) time.Time { return base.Add(time.Duration(i%4) * 6 * time.Hour) }
	var recs []domain.UsageRecord
	for i := range 120 {
		recs = append(recs, rec(keys[i%3].ID, at(i), fmt.Sprintf("m%d", i%2), int64(1+i%9)))
	}
	must(t, s.InsertUsage(ctx, recs), "insert")

	const chunk = 10
	plan := func(version string) [][]ports.CostUpdate {
		var out [][]ports.CostUpdate
		for start := 0; start < len(recs); start += chunk {
			var c []ports.CostUpdate
			for _, r := range recs[start:min(start+chunk, len(recs))] {
				c = append(c, ports.CostUpdate{RequestID: r.RequestID, Old: r.Cost, New: repriced(r.Cost, version, false)})
			}
			// Opposite orders for the two repricers.
			if version == "vB" {
				slices.Reverse(c)
			}
			out = append(out, c)
		}
		if version == "vB" {
			slices.Reverse(out)
		}
		return out
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		applied = map[string]int{}
		errs    = make(chan error, 8)
		more    []domain.UsageRecord
	)
	for _, version := range []string{"vA", "vB"} {
		wg.Go(func() {
			for _, c := range plan(version) {
				n, err := s.UpdateUsageCosts(ctx, c)
				if err != nil {
					errs <- fmt.Errorf("reprice %s: %w", version, err)
					return
				}
				mu.Lock()
				applied[version] += n
				mu.Unlock()
			}
		})
	}
	for w := range 2 {
		var batches [][]domain.UsageRecord
		for b := range 8 {
			var batch []domain.UsageRecord
			for i := range 15 {
				batch = append(batch, rec(keys[(w+b+i)%3].ID, at(w+b+i), fmt.Sprintf("m%d", i%2), int64(1+i%5)))
			}
			batches = append(batches, batch)
			more = append(more, batch...)
		}
		wg.Go(func() {
			for _, b := range batches {
				if err := s.InsertUsage(ctx, b); err != nil {
					errs <- fmt.Errorf("insert: %w", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if applied["vA"]+applied["vB"] != len(recs) {
		t.Fatalf("applied %v, want %d in all", applied, len(recs))
	}
	final := withCosts(t, s, recs)
	for i, r := range final {
		if v := r.Cost.PriceVersion; v != "vA" && v != "vB" || !reflect.DeepEqual(r.Cost, repriced(recs[i].Cost, v, false)) {
			t.Fatalf("record %s ended with %+v", r.RequestID, r.Cost)
		}
	}
	wantTotals(t, s, append(final, more...), "after concurrent repricings")
}
