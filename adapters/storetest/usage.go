package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

var recSeq atomic.Int64

// rec returns a record with every field set and small, distinct token
// counts. Every fifth n also carries iterations, as a compacted or advised
// request does.
func rec(key uuid.UUID, at time.Time, model string, n int64) domain.UsageRecord {
	r := domain.UsageRecord{
		RequestID:         fmt.Sprintf("req_%06d_%s", recSeq.Add(1), uuid.NewString()[:8]),
		KeyID:             key,
		Time:              at,
		Model:             model,
		RequestedModel:    model + "-latest",
		Path:              "/v1/messages",
		Endpoint:          "messages",
		Status:            200,
		Stream:            true,
		Usage:             domain.Usage{InputTokens: n, OutputTokens: 2 * n, CacheCreationInputTokens: 3 * n, CacheReadInputTokens: 4 * n, CacheCreation5mTokens: n, CacheCreation1hTokens: 2 * n},
		ServerTools:       domain.ServerToolUse{WebSearchRequests: n, WebFetchRequests: n % 3},
		ServiceTier:       "standard",
		Speed:             "fast",
		InferenceGeo:      "us",
		Estimated:         n%2 == 1,
		Batch:             n%3 == 0,
		Latency:           1500 * time.Millisecond,
		TTFB:              250*time.Millisecond + 17*time.Microsecond,
		UpstreamRequestID: "req_upstream_" + fmt.Sprint(n),
		Upstream:          "primary",
		SessionID:         "session-1",
		ClientIP:          "203.0.113.9",
		ErrorType:         "",
		Attempts:          1,
	}
	if n%5 == 0 {
		r.Iterations = iterations(n)
	}
	r.Cost = cost(n)
	return r
}

// cost returns a priced cost with every class distinct, so a swapped column
// shows; every second n is priced with the 5-minute fallback, every seventh
// has unpriced tokens, and every fifth carries a detail, as a request with
// iterations does.
func cost(n int64) domain.RecordCost {
	c := domain.RecordCost{
		CostBreakdown: domain.CostBreakdown{
			Input: domain.Nanodollars(3_000 * n), Output: domain.Nanodollars(15_000 * n),
			CacheWrite5m: domain.Nanodollars(3_750 * n), CacheWrite1h: domain.Nanodollars(6_001 * n),
			CacheRead: domain.Nanodollars(307 * n), WebSearch: domain.Nanodollars(10_000_000 * n),
			WebFetch: domain.Nanodollars(11 * n), CacheSaved: domain.Nanodollars(2_693 * n),
		},
		PriceVersion: "2025-03-01",
		Fallback5m:   n%2 == 0,
		Unpriced:     n%7 == 0,
	}
	c.Total, _ = c.Sum()
	if n%5 == 0 {
		c.Detail = json.RawMessage(fmt.Sprintf(`{"price_version":"2025-03-01","parts":[{"type":"compaction","model":"claude-haiku-4-5","total":%d}],"total":%d}`, n, c.Total))
	}
	return c
}

// iterations returns a compaction step and the final message step, whose
// counts are distinct in every field.
func iterations(n int64) []domain.Iteration {
	return []domain.Iteration{
		{Type: "compaction", Model: "claude-haiku-4-5", Usage: domain.Usage{InputTokens: 100 + n, OutputTokens: 7, CacheCreationInputTokens: 3, CacheReadInputTokens: 4, CacheCreation5mTokens: 1, CacheCreation1hTokens: 2}},
		{Type: "message", Usage: domain.Usage{InputTokens: n, OutputTokens: 2 * n, CacheCreationInputTokens: 3 * n, CacheReadInputTokens: 4 * n, CacheCreation5mTokens: n, CacheCreation1hTokens: 2 * n}},
	}
}

func normRec(r domain.UsageRecord) domain.UsageRecord {
	r.Time = normTime(r.Time)
	r.Latency = r.Latency.Truncate(time.Microsecond)
	r.TTFB = r.TTFB.Truncate(time.Microsecond)
	return r
}

func sumUsage(recs []domain.UsageRecord) domain.Usage {
	var u domain.Usage
	for _, r := range recs {
		u = u.Add(r.Usage)
	}
	return u
}

func testUsageRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k := mustKey(t, s, newKey("user", base))

	r := rec(k.ID, base.Add(90*time.Minute+123456789*time.Nanosecond), "claude-sonnet-4-5", 10)
	r.Status = 529
	r.ErrorType = "overloaded_error"
	r.Stream = false
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{r}), "insert")
	must(t, s.InsertUsage(ctx, nil), "insert empty batch")

	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	must(t, err, "logs")
	if len(logs) != 1 {
		t.Fatalf("%d logs, want 1", len(logs))
	}
	if want := normRec(r); !reflect.DeepEqual(logs[0], want) {
		t.Fatalf("record:\n got %+v\nwant %+v", logs[0], want)
	}
}

func testUsageDetailsRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()

	// Every new field set, iterations included.
	full := rec(key, base.Add(time.Minute), "claude-opus-4-5", 7)
	full.Iterations = iterations(7)
	full.Usage = domain.BilledUsage(full.Usage, full.Iterations)
	full.ServerTools = domain.ServerToolUse{WebSearchRequests: 12, WebFetchRequests: 3}
	full.ServiceTier, full.Speed, full.InferenceGeo = "priority", "fast", "eu"
	full.Endpoint, full.Batch = "batches.results", true
	// One iteration, with a model of its own.
	one := rec(key, base.Add(2*time.Minute), "claude-sonnet-4-5", 8)
	one.Iterations = []domain.Iteration{{Type: "advisor_message", Model: "claude-opus-4-5", Usage: domain.Usage{InputTokens: 1 << 40, OutputTokens: 1}}}
	// None of the new fields: they come back empty, iterations nil.
	bare := domain.UsageRecord{RequestID: "req_bare_" + uuid.NewString(), KeyID: key, Time: base.Add(3 * time.Minute), Model: "m"}
	// An empty, non-nil list is no iterations.
	empty := bare
	empty.RequestID = "req_empty_" + uuid.NewString()
	empty.Time = base.Add(4 * time.Minute)
	empty.Iterations = []domain.Iteration{}
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{full, one, bare, empty}), "insert")

	logs, err := s.UsageLogs(ctx, domain.LogQuery{KeyID: &key})
	must(t, err, "logs")
	empty.Iterations = nil
	want := []domain.UsageRecord{normRec(empty), normRec(bare), normRec(one), normRec(full)}
	if len(logs) != len(want) {
		t.Fatalf("%d logs, want %d", len(logs), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(logs[i], want[i]) {
			t.Errorf("record %s:\n got %+v\nwant %+v", want[i].RequestID, logs[i], want[i])
		}
	}
	if logs[0].Iterations != nil || logs[1].Iterations != nil {
		t.Errorf("records without iterations read back %#v and %#v, want nil", logs[0].Iterations, logs[1].Iterations)
	}
}

// DailyKey names one row of the daily rollup.
type DailyKey struct {
	KeyID uuid.UUID
	Day   string // YYYY-MM-DD, UTC
	Model string
}

// DailyServerTools reads every row's server-tool sums from the daily
// rollup. No port answers them yet, so each adapter's test reads its own
// table.
type DailyServerTools func(t *testing.T) map[DailyKey]domain.ServerToolUse

// ServerToolRollup checks that InsertUsage sums server-tool calls into the
// daily rollup in the same transaction as the records, once per request id.
// s must be empty; read reads s's rollup.
func ServerToolRollup(t *testing.T, s ports.Store, read DailyServerTools) {
	t.Helper()
	ctx := ctxT(t)
	k1, k2 := uuid.New(), uuid.New()
	day := 24 * time.Hour
	recs := []domain.UsageRecord{
		rec(k1, base.Add(time.Hour), "opus", 1),
		rec(k1, base.Add(2*time.Hour), "opus", 2),
		rec(k1, base.Add(3*time.Hour), "sonnet", 3),
		rec(k2, base.Add(4*time.Hour), "opus", 4),
		rec(k1, base.Add(day+time.Hour), "opus", 5),
		rec(k1, base.Add(day+2*time.Hour), "opus", 0), // no server tools
	}
	must(t, s.InsertUsage(ctx, recs[:3]), "first batch")
	// A retry of the first batch with changed counts, plus the rest.
	retry := slices.Clone(recs[:3])
	retry[0].ServerTools.WebSearchRequests = 1000
	must(t, s.InsertUsage(ctx, append(retry, recs[3:]...)), "retried batch")

	want := map[DailyKey]domain.ServerToolUse{}
	for _, r := range recs {
		k := DailyKey{r.KeyID, r.Time.UTC().Format(time.DateOnly), r.Model}
		w := want[k]
		w.WebSearchRequests += r.ServerTools.WebSearchRequests
		w.WebFetchRequests += r.ServerTools.WebFetchRequests
		want[k] = w
	}
	if got := read(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("daily server-tool sums:\n got %v\nwant %v", got, want)
	}
}

func testUsageIdempotent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k := newKey("user", base)
	k.TokensUsed = 5
	mustKey(t, s, k)

	late := rec(k.ID, base.Add(3*time.Hour), "m1", 3)
	early := rec(k.ID, base.Add(time.Hour), "m1", 1)
	mid := rec(k.ID, base.Add(2*time.Hour), "m2", 2)

	// A duplicate inside one batch counts once.
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{late, early, late}), "first batch")
	// A retried batch with one new record counts only the new one, even
	// if the retry carries different numbers for a stored request id.
	changed := early
	changed.Usage.InputTokens = 1_000_000
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{changed, mid, late}), "retried batch")
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{late, early, mid}), "pure retry")

	stored := []domain.UsageRecord{late, early, mid}
	got, err := s.GetKey(ctx, k.ID)
	must(t, err, "get key")
	if want := 5 + sumUsage(stored).Total(); got.TokensUsed != want {
		t.Fatalf("tokens_used = %d, want %d", got.TokensUsed, want)
	}
	// last_used_at is the newest request, not the last one written.
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(late.Time) {
		t.Fatalf("last_used_at = %v, want %v", got.LastUsedAt, late.Time)
	}
	if got.UpdatedAt != normTime(k.UpdatedAt) {
		t.Fatalf("usage changed updated_at: %v", got.UpdatedAt)
	}

	logs, err := s.UsageLogs(ctx, domain.LogQuery{})
	must(t, err, "logs")
	if len(logs) != 3 {
		t.Fatalf("%d records stored, want 3", len(logs))
	}
	totals, err := s.UsageTotals(ctx, domain.UsageQuery{})
	must(t, err, "totals")
	want := totalsOf(stored, func(domain.UsageRecord) string { return "" })
	if !reflect.DeepEqual(totals, want) {
		t.Fatalf("totals = %+v, want %+v", totals, want)
	}
}

func testUsageUnknownKey(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	// Usage is an audit log: a record for a key the store does not know is
	// kept rather than poisoning the batch.
	ghost := uuid.New()
	r := rec(ghost, base, "m", 4)
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{r}), "insert for unknown key")
	logs, err := s.UsageLogs(ctx, domain.LogQuery{KeyID: &ghost})
	must(t, err, "logs")
	if len(logs) != 1 || logs[0].RequestID != r.RequestID {
		t.Fatalf("logs = %+v", logs)
	}
}

func testUsageHostileText(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	// Text from clients (a model name in a JSON body) may hold NUL bytes or
	// invalid UTF-8. It must never fail a batch, which the writer would
	// retry forever; it is stored with NULs dropped and bad bytes replaced.
	key := uuid.New()
	r := rec(key, base, "claude\x00-evil\xff", 1)
	r.SessionID = "\x00"
	r.Path = "/v1/messages?\xc3"
	r.RequestedModel = "opus\x00\xfe"
	r.Endpoint = "\xc3messages"
	r.ServiceTier = "pri\x00ority"
	r.Speed = "\xff"
	r.InferenceGeo = "u\x00s\xc3"
	r.Iterations = []domain.Iteration{{Type: "advisor\x00_message\xff", Model: "\x00claude\xc3", Usage: domain.Usage{InputTokens: 1}}}
	good := rec(key, base.Add(time.Second), "fine", 2)
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{r, good}), "insert hostile text")

	logs, err := s.UsageLogs(ctx, domain.LogQuery{KeyID: &key})
	must(t, err, "logs")
	if len(logs) != 2 {
		t.Fatalf("%d records, want 2", len(logs))
	}
	got := logs[1]
	if got.Model != "claude-evil\uFFFD" || got.SessionID != "" || got.Path != "/v1/messages?\uFFFD" {
		t.Fatalf("stored text: model=%q session=%q path=%q", got.Model, got.SessionID, got.Path)
	}
	if got.RequestedModel != "opus\uFFFD" || got.Endpoint != "\uFFFDmessages" || got.ServiceTier != "priority" ||
		got.Speed != "\uFFFD" || got.InferenceGeo != "us\uFFFD" {
		t.Fatalf("stored text: requested_model=%q endpoint=%q service_tier=%q speed=%q inference_geo=%q",
			got.RequestedModel, got.Endpoint, got.ServiceTier, got.Speed, got.InferenceGeo)
	}
	wantIts := []domain.Iteration{{Type: "advisor_message\uFFFD", Model: "claude\uFFFD", Usage: domain.Usage{InputTokens: 1}}}
	if !reflect.DeepEqual(got.Iterations, wantIts) {
		t.Fatalf("stored iterations = %+v, want %+v", got.Iterations, wantIts)
	}
	totals, err := s.UsageTotals(ctx, domain.UsageQuery{GroupBy: domain.GroupModel})
	must(t, err, "totals")
	if len(totals) != 2 || totals[0].Group != "claude-evil\uFFFD" {
		t.Fatalf("totals by model = %+v", totals)
	}
}

// usageFixture stores records over three days, two keys (one later
// deleted) and two models, and returns them.
func usageFixture(t *testing.T, s ports.Store) (k1, k2 domain.APIKey, recs []domain.UsageRecord) {
	t.Helper()
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k1 = mustKey(t, s, newKey("one", base))
	k2 = mustKey(t, s, newKey("two", base))
	day := 24 * time.Hour
	recs = []domain.UsageRecord{
		rec(k1.ID, base.Add(1*time.Hour), "opus", 1),
		rec(k1.ID, base.Add(23*time.Hour+59*time.Minute), "sonnet", 2),
		rec(k2.ID, base.Add(day), "opus", 3), // exactly midnight: day 2
		rec(k1.ID, base.Add(day+12*time.Hour), "sonnet", 4),
		rec(k2.ID, base.Add(2*day+time.Minute), "sonnet", 5),
		rec(k1.ID, base.Add(2*day+23*time.Hour), "opus", 6),
	}
	// Two upstreams, one of them serving both keys on one day, and a
	// refusal that no upstream served.
	for i, up := range []string{"primary", "up_b", "up_b", "primary", "", "up_b"} {
		recs[i].Upstream = up
	}
	must(t, s.InsertUsage(ctx, recs[:2]), "insert")
	must(t, s.InsertUsage(ctx, recs[2:]), "insert")
	must(t, s.DeleteKey(ctx, k2.ID, base.Add(4*day)), "delete k2")
	return k1, k2, recs
}

// totalsOf sums recs per group, as UsageTotals should; grouped by key
// (group yields the key id), each group carries the key's name.
func totalsOf(recs []domain.UsageRecord, group func(domain.UsageRecord) string) []domain.UsageTotals {
	m := map[string]*domain.UsageTotals{}
	for _, r := range recs {
		g := group(r)
		if m[g] == nil {
			m[g] = &domain.UsageTotals{Group: g}
			if g != "" && g == r.KeyID.String() {
				m[g].KeyName = keyName(g)
			}
		}
		m[g].Requests++
		m[g].Usage = m[g].Usage.Add(r.Usage)
		m[g].Cost, _ = m[g].Cost.Add(r.Cost.CostBreakdown)
		m[g].CostTotal += r.Cost.Total
	}
	out := make([]domain.UsageTotals, 0, len(m))
	for _, v := range m {
		out = append(out, *v)
	}
	slices.SortFunc(out, func(a, b domain.UsageTotals) int { return strings.Compare(a.Group, b.Group) })
	return out
}

func filterRecs(recs []domain.UsageRecord, keep func(domain.UsageRecord) bool) []domain.UsageRecord {
	var out []domain.UsageRecord
	for _, r := range recs {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

func sortedTotals(ts []domain.UsageTotals) []domain.UsageTotals {
	ts = slices.Clone(ts)
	slices.SortFunc(ts, func(a, b domain.UsageTotals) int { return strings.Compare(a.Group, b.Group) })
	return ts
}

func testUsageTotalsGrouping(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	k1, _, recs := usageFixture(t, s)
	groups := map[domain.GroupBy]func(domain.UsageRecord) string{
		domain.GroupNone:     func(domain.UsageRecord) string { return "" },
		domain.GroupKey:      func(r domain.UsageRecord) string { return r.KeyID.String() },
		domain.GroupDay:      func(r domain.UsageRecord) string { return r.Time.UTC().Format(time.DateOnly) },
		domain.GroupModel:    func(r domain.UsageRecord) string { return r.Model },
		domain.GroupUpstream: func(r domain.UsageRecord) string { return r.Upstream },
	}
	day := 24 * time.Hour
	ranges := []struct {
		name     string
		from, to time.Time
	}{
		{"unbounded", time.Time{}, time.Time{}},
		{"day-aligned", base.Add(day), base.Add(3 * day)},
		{"not aligned", base.Add(23 * time.Hour), base.Add(2*day + time.Minute)},
		{"not aligned, long", base.Add(time.Hour), base.Add(3*day - time.Second)},
		{"not aligned, from only", base.Add(time.Hour), time.Time{}},
		{"non-UTC zone", base.Add(day).In(time.FixedZone("X", -5*3600)), base.Add(2 * day)},
	}
	for _, rg := range ranges {
		in := filterRecs(recs, func(r domain.UsageRecord) bool {
			return (rg.from.IsZero() || !r.Time.Before(rg.from)) && (rg.to.IsZero() || r.Time.Before(rg.to))
		})
		for g, fn := range groups {
			for _, byKey := range []bool{false, true} {
				q := domain.UsageQuery{From: rg.from, To: rg.to, GroupBy: g}
				subset := in
				if byKey {
					q.KeyID = &k1.ID
					subset = filterRecs(in, func(r domain.UsageRecord) bool { return r.KeyID == k1.ID })
				}
				got, err := s.UsageTotals(ctx, q)
				must(t, err, "totals")
				want := totalsOf(subset, fn)
				if !reflect.DeepEqual(sortedTotals(got), want) {
					t.Errorf("%s group=%q key=%v:\n got %+v\nwant %+v", rg.name, g, byKey, got, want)
				}
			}
		}
	}

	_, err := s.UsageTotals(ctx, domain.UsageQuery{GroupBy: "week"})
	wantKind(t, err, domain.KindInvalid, "unknown grouping")
}

func testUsageTotalsBounds(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	_, _, recs := usageFixture(t, s)

	// From is inclusive and To exclusive, on both the rollup and raw paths.
	at := recs[2].Time // exactly midnight
	for _, rg := range [][2]time.Time{{at, at.Add(time.Microsecond)}, {at.Add(-time.Microsecond), at}} {
		got, err := s.UsageTotals(ctx, domain.UsageQuery{From: rg[0], To: rg[1]})
		must(t, err, "totals")
		wantReq := int64(0)
		if rg[0].Equal(at) {
			wantReq = 1
		}
		if len(got) != 1 || got[0].Requests != wantReq {
			t.Errorf("[%v, %v): %+v, want %d requests", rg[0], rg[1], got, wantReq)
		}
	}
	day := 24 * time.Hour
	got, err := s.UsageTotals(ctx, domain.UsageQuery{From: base.Add(day), To: base.Add(2 * day), GroupBy: domain.GroupDay})
	must(t, err, "one day")
	if len(got) != 1 || got[0].Group != "2025-03-11" || got[0].Requests != 2 {
		t.Errorf("day 2 = %+v", got)
	}

	// An empty range: one zero row ungrouped, no rows grouped.
	empty := domain.UsageQuery{From: base.Add(100 * day), To: base.Add(101 * day)}
	for _, aligned := range []bool{true, false} {
		if !aligned {
			empty.From = empty.From.Add(time.Second)
		}
		got, err := s.UsageTotals(ctx, empty)
		must(t, err, "empty totals")
		if !reflect.DeepEqual(got, []domain.UsageTotals{{}}) {
			t.Errorf("empty ungrouped (aligned=%v) = %+v, want one zero row", aligned, got)
		}
		q := empty
		q.GroupBy = domain.GroupModel
		got, err = s.UsageTotals(ctx, q)
		must(t, err, "empty grouped totals")
		if len(got) != 0 {
			t.Errorf("empty grouped (aligned=%v) = %+v, want none", aligned, got)
		}
	}
}

func logIDs(recs []domain.UsageRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestID
	}
	return out
}

// newestFirst sorts like UsageLogs: by time, then request id, descending.
func newestFirst(recs []domain.UsageRecord) []domain.UsageRecord {
	recs = slices.Clone(recs)
	slices.SortFunc(recs, func(a, b domain.UsageRecord) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return strings.Compare(b.RequestID, a.RequestID)
	})
	return recs
}

func testUsageLogs(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	k1, k2, recs := usageFixture(t, s)
	r429 := rec(k1.ID, recs[3].Time, "sonnet", 9) // shares a timestamp
	r429.Status = 429
	r429.ErrorType = "rate_limit_error"
	must(t, s.InsertUsage(ctx, []domain.UsageRecord{r429}), "insert 429")
	all := append(slices.Clone(recs), r429)

	day := 24 * time.Hour
	from, to := base.Add(day), base.Add(2*day+time.Minute)
	status, ok := 429, 200
	cases := []struct {
		name string
		q    domain.LogQuery
		keep func(domain.UsageRecord) bool
	}{
		{"all", domain.LogQuery{}, func(domain.UsageRecord) bool { return true }},
		{"key", domain.LogQuery{KeyID: &k2.ID}, func(r domain.UsageRecord) bool { return r.KeyID == k2.ID }},
		{"from inclusive", domain.LogQuery{From: &from}, func(r domain.UsageRecord) bool { return !r.Time.Before(from) }},
		{"to exclusive", domain.LogQuery{To: &to}, func(r domain.UsageRecord) bool { return r.Time.Before(to) }},
		{"range and key", domain.LogQuery{From: &from, To: &to, KeyID: &k1.ID}, func(r domain.UsageRecord) bool {
			return !r.Time.Before(from) && r.Time.Before(to) && r.KeyID == k1.ID
		}},
		{"status 429", domain.LogQuery{Status: &status}, func(r domain.UsageRecord) bool { return r.Status == 429 }},
		{"status 200", domain.LogQuery{Status: &ok}, func(r domain.UsageRecord) bool { return r.Status == 200 }},
		{"limit", domain.LogQuery{Limit: 2}, func(r domain.UsageRecord) bool { return !r.Time.Before(recs[4].Time) }},
	}
	for _, tc := range cases {
		got, err := s.UsageLogs(ctx, tc.q)
		must(t, err, tc.name)
		want := newestFirst(filterRecs(all, tc.keep))
		if !slices.Equal(logIDs(got), logIDs(want)) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, logIDs(got), logIDs(want))
		}
	}
}

func testUsageLogsPagination(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	var recs []domain.UsageRecord
	for i := range 23 {
		// Triples share a timestamp, so the request id must break ties.
		recs = append(recs, rec(key, base.Add(time.Duration(i/3)*time.Second), "m", int64(i)))
	}
	must(t, s.InsertUsage(ctx, recs), "insert")
	want := newestFirst(recs)

	var got []domain.UsageRecord
	q := domain.LogQuery{Limit: 5}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not terminate")
		}
		list, err := s.UsageLogs(ctx, q)
		must(t, err, "page")
		if len(list) > 5 {
			t.Fatalf("page of %d, limit 5", len(list))
		}
		got = append(got, list...)
		if len(list) < 5 {
			break
		}
		last := list[len(list)-1]
		q.After = &domain.LogCursor{Time: last.Time, RequestID: last.RequestID}
	}
	if !slices.Equal(logIDs(got), logIDs(want)) {
		t.Fatalf("paged logs:\n got %v\nwant %v", logIDs(got), logIDs(want))
	}
}

func testUsageConcurrent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	keys := []domain.APIKey{
		mustKey(t, s, newKey("k1", base)),
		mustKey(t, s, newKey("k2", base)),
		mustKey(t, s, newKey("k3", base)),
	}
	const workers, batches, perBatch = 12, 8, 25

	var mu sync.Mutex
	want := map[uuid.UUID]int64{}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		// Build the batches before starting, so the generator is not raced.
		var plan [][]domain.UsageRecord
		for b := range batches {
			batch := make([]domain.UsageRecord, perBatch)
			for i := range batch {
				// Every batch spans all keys, in varying order, to provoke
				// lock-order conflicts between writers.
				k := keys[(w+b+i)%len(keys)]
				batch[i] = rec(k.ID, base.Add(time.Duration(w*batches+b)*time.Minute), fmt.Sprintf("m%d", i%2), int64(1+(w+i)%7))
			}
			plan = append(plan, batch)
		}
		for _, batch := range plan {
			mu.Lock()
			for _, r := range batch {
				want[r.KeyID] += r.Usage.Total()
			}
			mu.Unlock()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i, batch := range plan {
				if err := s.InsertUsage(ctx, batch); err != nil {
					errs <- err
					return
				}
				// Resend the previous batch, as a writer retrying after a
				// timeout would.
				if i > 0 {
					if err := s.InsertUsage(ctx, plan[i-1]); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent insert: %v", err)
	}

	var total int64
	for _, k := range keys {
		got, err := s.GetKey(ctx, k.ID)
		must(t, err, "get key")
		if got.TokensUsed != want[k.ID] {
			t.Errorf("key %s tokens_used = %d, want %d", k.Name, got.TokensUsed, want[k.ID])
		}
		total += want[k.ID]
	}
	totals, err := s.UsageTotals(ctx, domain.UsageQuery{GroupBy: domain.GroupKey})
	must(t, err, "totals")
	var sumReq, sumTok int64
	for _, tt := range totals {
		sumReq += tt.Requests
		sumTok += tt.Usage.Total()
		id := uuid.MustParse(tt.Group)
		if tt.Usage.Total() != want[id] {
			t.Errorf("rollup for %s = %d, want %d", id, tt.Usage.Total(), want[id])
		}
	}
	if sumReq != workers*batches*perBatch || sumTok != total {
		t.Fatalf("rollup: %d requests / %d tokens, want %d / %d", sumReq, sumTok, workers*batches*perBatch, total)
	}
	logs, err := s.UsageLogs(ctx, domain.LogQuery{Limit: 100000})
	must(t, err, "logs")
	if len(logs) != workers*batches*perBatch {
		t.Fatalf("%d records stored, want %d", len(logs), workers*batches*perBatch)
	}
}
