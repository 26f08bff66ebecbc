package httpadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
)

// Component tests of what the dashboard's overview, key list and logs ask
// beyond the single-key views: the usage series, the key list's quota
// views, bulk disable and enable, and retries on the request logs.

// seriesBase is a whole UTC hour in the past, at noon, so a test's hours
// never straddle a day whatever time it runs.
func seriesBase() time.Time {
	return time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -3).Add(12 * time.Hour)
}

// histogramOf is the TTFB histogram the relay keeps for recs, to check the
// API's percentiles against the domain's own reading of the same records.
func histogramOf(recs []domain.UsageRecord) domain.SeriesPoint {
	p := domain.SeriesPoint{TTFB: make([]int64, domain.TTFBBuckets)}
	for _, r := range recs {
		if b, ok := domain.TTFBBucket(r.TTFB); ok {
			p.TTFB[b]++
		}
	}
	return p
}

func msOf(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }

func TestUsageSeries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "series"})
		h := seriesBase()
		rec := func(at time.Time, status int, upstream string, ttfb time.Duration, cost, saved domain.Nanodollars) domain.UsageRecord {
			return domain.UsageRecord{RequestID: "req_series_" + uuid.NewString(), KeyID: k.Id, Time: at, Model: "claude-sonnet-4-5",
				Path: "/v1/messages", Status: status, Upstream: upstream, TTFB: ttfb, Latency: ttfb + time.Second,
				Usage: domain.Usage{InputTokens: 10, CacheReadInputTokens: 100},
				Cost:  domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: cost, CacheSaved: saved}, Total: cost, PriceVersion: "v1"}}
		}
		// Hour A (h-3): ten quick answers. Hour B (h-1): one of each class,
		// two of them refused by the relay itself (no upstream).
		var hourA, hourB []domain.UsageRecord
		for i := range 10 {
			hourA = append(hourA, rec(h.Add(-3*time.Hour+time.Duration(i)*time.Minute), 200, "primary", 80*time.Millisecond, 1000, 270))
		}
		hourB = []domain.UsageRecord{
			rec(h.Add(-time.Hour+time.Minute), 200, "primary", 4*time.Second, 5000, 900),
			rec(h.Add(-time.Hour+2*time.Minute), 429, "", 0, 0, 0),
			rec(h.Add(-time.Hour+3*time.Minute), 500, "primary", 300*time.Millisecond, 0, 0),
			rec(h.Add(-time.Hour+4*time.Minute), 529, "primary", 0, 0, 0),
			rec(h.Add(-time.Hour+5*time.Minute), 401, "", 0, 0, 0),
		}
		e.insertRecords(t, append(append([]domain.UsageRecord{}, hourA...), hourB...)...)

		from, to := h.Add(-4*time.Hour), h.Add(time.Hour)
		r, err := e.c.AdminUsageSeriesWithResponse(ctx, &client.AdminUsageSeriesParams{From: from, To: to}, e.admin())
		if err != nil || r.JSON200 == nil {
			t.Fatalf("series: %v %d %s", err, r.StatusCode(), r.Body)
		}
		s := r.JSON200
		if s.Step != client.UsageSeriesStepHour || !s.From.Equal(from) || !s.To.Equal(to) {
			t.Errorf("series of 5 hours: step %s, [%s, %s)", s.Step, s.From, s.To)
		}
		// Only the hours with requests, oldest first.
		if len(s.Points) != 2 || !s.Points[0].Start.Equal(h.Add(-3*time.Hour)) || !s.Points[1].Start.Equal(h.Add(-time.Hour)) {
			t.Fatalf("points: %s", r.Body)
		}
		a, b := s.Points[0], s.Points[1]
		if a.Requests != 10 || a.Status != (client.StatusCounts{Ok: 10}) || a.TtfbSamples != 10 || a.InputTokens != 100 ||
			!sameUSD(a.CostUsd, "0.00001") || !sameUSD(a.CacheSavedUsd, "0.0000027") {
			t.Errorf("hour A: %+v", a)
		}
		wantB := client.StatusCounts{Ok: 1, ClientError: 1, RateLimited: 1, ServerError: 1, Overloaded: 1, Refused: 2}
		if b.Requests != 5 || b.Status != wantB || b.TtfbSamples != 2 || !sameUSD(b.CostUsd, "0.000005") || !sameUSD(b.CacheSavedUsd, "0.0000009") {
			t.Errorf("hour B: %+v", b)
		}
		// The percentiles are the domain's reading of the records' histogram:
		// per point, and for the whole range from the merged histogram.
		for _, c := range []struct {
			name string
			got  client.SeriesTotals
			recs []domain.UsageRecord
		}{
			{"hour A", client.SeriesTotals{TtfbP50Ms: a.TtfbP50Ms, TtfbP95Ms: a.TtfbP95Ms}, hourA},
			{"hour B", client.SeriesTotals{TtfbP50Ms: b.TtfbP50Ms, TtfbP95Ms: b.TtfbP95Ms}, hourB},
			{"totals", s.Totals, append(append([]domain.UsageRecord{}, hourA...), hourB...)},
		} {
			want := histogramOf(c.recs)
			if c.got.TtfbP50Ms == nil || c.got.TtfbP95Ms == nil ||
				*c.got.TtfbP50Ms != msOf(want.TTFBQuantile(0.5)) || *c.got.TtfbP95Ms != msOf(want.TTFBQuantile(0.95)) {
				t.Errorf("%s: p50 %v p95 %v, want %v and %v", c.name, c.got.TtfbP50Ms, c.got.TtfbP95Ms,
					msOf(want.TTFBQuantile(0.5)), msOf(want.TTFBQuantile(0.95)))
			}
		}
		// Ten answers under 100 ms and two slow ones: the median is quick,
		// the 95th percentile in the 4-second bucket.
		if p50, p95 := *s.Totals.TtfbP50Ms, *s.Totals.TtfbP95Ms; p50 <= 63 || p50 > 100 || p95 <= 2500 || p95 > 4000 {
			t.Errorf("totals: p50 %d ms, p95 %d ms", p50, p95)
		}
		if s.Totals.Requests != 15 || s.Totals.TtfbSamples != 12 || s.Totals.Status.Ok != 11 || s.Totals.Status.Refused != 2 ||
			!sameUSD(s.Totals.CostUsd, "0.000015") || !sameUSD(s.Totals.CacheSavedUsd, "0.0000036") || s.Totals.TotalTokens != 1650 {
			t.Errorf("totals: %+v", s.Totals)
		}
		// A step without a first byte has no percentile (null, not 0).
		if !strings.Contains(string(r.Body), `"ttfb_p50_ms":`) {
			t.Errorf("no percentiles in %s", r.Body)
		}
		empty, _ := e.c.AdminUsageSeriesWithResponse(ctx, &client.AdminUsageSeriesParams{From: h.Add(-48 * time.Hour), To: h.Add(-47 * time.Hour)}, e.admin())
		if empty.JSON200 == nil || len(empty.JSON200.Points) != 0 || empty.JSON200.Totals.TtfbP50Ms != nil ||
			!strings.Contains(string(empty.Body), `"ttfb_p50_ms":null`) {
			t.Errorf("an empty range: %s", empty.Body)
		}

		// Days: the hourly points summed per UTC day; a range longer than
		// 7 days gets days by default.
		day := h.Truncate(24 * time.Hour)
		for _, p := range []client.AdminUsageSeriesParams{
			{From: day.AddDate(0, 0, -1), To: day.AddDate(0, 0, 1), Step: ptr(client.AdminUsageSeriesParamsStepDay)},
			{From: day.AddDate(0, 0, -7), To: day.AddDate(0, 0, 1)},
		} {
			d, _ := e.c.AdminUsageSeriesWithResponse(ctx, &p, e.admin())
			if d.JSON200 == nil || d.JSON200.Step != client.UsageSeriesStepDay || len(d.JSON200.Points) != 1 {
				t.Fatalf("days: %d %s", d.StatusCode(), d.Body)
			}
			pt := d.JSON200.Points[0]
			if !pt.Start.Equal(day) || pt.Requests != 15 || pt.Status != s.Totals.Status ||
				*pt.TtfbP95Ms != *s.Totals.TtfbP95Ms || !sameUSD(pt.CostUsd, "0.000015") {
				t.Errorf("day point %+v, want the hours' totals %+v", pt, s.Totals)
			}
		}
		// 90 days of hours are 2,160 steps: allowed.
		if r, _ := e.c.AdminUsageSeriesWithResponse(ctx, &client.AdminUsageSeriesParams{From: day.AddDate(0, 0, -89), To: day.AddDate(0, 0, 1),
			Step: ptr(client.AdminUsageSeriesParamsStepHour)}, e.admin()); r.JSON200 == nil || len(r.JSON200.Points) != 2 {
			t.Errorf("90 days hourly: %d %s", r.StatusCode(), trunc(r.Body))
		}
	})
}

func TestUsageSeriesBadInput(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		h := seriesBase()
		q := func(from, to time.Time) string {
			return "from=" + from.Format(time.RFC3339) + "&to=" + to.Format(time.RFC3339)
		}
		for name, query := range map[string]string{
			"no from":          "to=" + h.Format(time.RFC3339),
			"no to":            "from=" + h.Format(time.RFC3339),
			"not a time":       "from=yesterday&to=" + h.Format(time.RFC3339),
			"not whole hours":  q(h.Add(30*time.Minute), h.Add(2*time.Hour)),
			"backwards":        q(h, h.Add(-time.Hour)),
			"empty":            q(h, h),
			"a week step":      q(h.Add(-time.Hour), h) + "&step=week",
			"93 days of hours": q(h.AddDate(0, 0, -93), h) + "&step=hour",
			"4 years of days":  q(h.AddDate(-4, 0, 0), h) + "&step=day",
		} {
			resp, body := e.raw(http.MethodGet, "/admin/usage/series?"+strings.ReplaceAll(query, "+", "%2B"), "", e.adminHeaders())
			if resp.StatusCode != 400 || !strings.Contains(string(body), `"invalid_request_error"`) {
				t.Errorf("%s: %d %s", name, resp.StatusCode, body)
			}
		}
		if resp, _ := e.raw(http.MethodGet, "/admin/usage/series?"+q(h.Add(-time.Hour), h), "", nil); resp.StatusCode != 401 {
			t.Errorf("without a token: %d", resp.StatusCode)
		}
	})
}

func TestUsageTotalsCarryKeyNamesAndCacheSavings(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		alice := e.createKey(client.CreateKeyRequest{Name: "alice"})
		gone := e.createKey(client.CreateKeyRequest{Name: "gone"})
		now := time.Now().UTC().Add(-time.Minute)
		rec := func(key uuid.UUID, cost, saved domain.Nanodollars) domain.UsageRecord {
			return domain.UsageRecord{RequestID: "req_names_" + uuid.NewString(), KeyID: key, Time: now, Model: "claude-sonnet-4-5",
				Path: "/v1/messages", Status: 200, Upstream: "primary", Usage: domain.Usage{CacheReadInputTokens: 1000},
				Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{CacheRead: cost, CacheSaved: saved}, Total: cost, PriceVersion: "v1"}}
		}
		e.insertRecords(t, rec(alice.Id, 300, 2700), rec(alice.Id, 300, 2700), rec(gone.Id, 30, 270))
		if r, _ := e.c.DeleteKeyWithResponse(ctx, gone.Id, e.admin()); r.StatusCode() != 204 {
			t.Fatalf("delete: %d", r.StatusCode())
		}
		by := client.AdminUsageParamsGroupByKey
		u, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{GroupBy: &by}, e.admin())
		if u.JSON200 == nil || !sameUSD(u.JSON200.Totals.CacheSavedUsd, "0.000005670") || len(u.JSON200.Groups) != 2 {
			t.Fatalf("by key: %s", u.Body)
		}
		names := map[string]string{}
		for _, g := range u.JSON200.Groups {
			if g.KeyName == nil {
				t.Fatalf("group %s has no key_name: %s", g.Group, u.Body)
			}
			names[g.Group] = *g.KeyName
			want := map[string]string{alice.Id.String(): "0.0000054", gone.Id.String(): "0.00000027"}[g.Group]
			if !sameUSD(g.CacheSavedUsd, want) {
				t.Errorf("group %s: cache_saved_usd %s, want %s", g.Group, g.CacheSavedUsd, want)
			}
		}
		// A deleted key keeps its name in the admin views.
		if want := map[string]string{alice.Id.String(): "alice", gone.Id.String(): "gone"}; !reflect.DeepEqual(names, want) {
			t.Errorf("names %v, want %v", names, want)
		}
		// Other groupings carry no key_name.
		byModel := client.AdminUsageParamsGroupByModel
		m, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{GroupBy: &byModel}, e.admin())
		if m.JSON200 == nil || strings.Contains(string(m.Body), "key_name") {
			t.Errorf("by model: %s", m.Body)
		}
		// The key holder's views carry the savings too.
		ku, _ := e.c.KeyUsageWithResponse(ctx, &client.KeyUsageParams{}, bearer(alice.ApiKey))
		if ku.JSON200 == nil || !sameUSD(ku.JSON200.CacheSavedUsd, "0.0000054") || !sameUSD(ku.JSON200.ByModel[0].CacheSavedUsd, "0.0000054") {
			t.Errorf("key usage: %s", ku.Body)
		}
	})
}

func TestKeyListCarriesQuotaViews(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		limited := e.createKey(client.CreateKeyRequest{Name: "quota-limited", TokenLimit: ptr(int64(10_000))})
		resp, body := e.raw("POST", "/admin/api-keys", `{"name":"quota-budgeted","budgets":[{"window":"day","limit_usd":"5"},{"window":"total","limit_usd":"50"}]}`, e.adminHeaders())
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		budgeted := decode[client.CreatedAPIKey](t, body)
		plain := e.createKey(client.CreateKeyRequest{Name: "quota-plain"})
		now := time.Now().UTC().Add(-time.Minute)
		e.insertRecords(t,
			domain.UsageRecord{RequestID: "req_q1_" + uuid.NewString(), KeyID: limited.Id, Time: now, Model: "m", Path: "/v1/messages",
				Status: 200, Upstream: "primary", Usage: domain.Usage{InputTokens: 1200, OutputTokens: 300}},
			domain.UsageRecord{RequestID: "req_q2_" + uuid.NewString(), KeyID: budgeted.Id, Time: now, Model: "m", Path: "/v1/messages",
				Status: 200, Upstream: "primary", Usage: domain.Usage{InputTokens: 10},
				Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 1_250_000_000}, Total: 1_250_000_000, PriceVersion: "v1"}},
		)

		l, _ := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{Name: ptr("quota-")}, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 3 {
			t.Fatalf("list: %d %s", l.StatusCode(), l.Body)
		}
		for _, k := range l.JSON200.Data {
			if k.Quota == nil {
				t.Fatalf("%s has no quota view: %s", k.Name, l.Body)
			}
			// Exactly what the per-key quota view says.
			q, _ := e.c.GetKeyQuotaWithResponse(ctx, k.Id, e.admin())
			if q.JSON200 == nil {
				t.Fatalf("quota of %s: %s", k.Name, q.Body)
			}
			want := client.KeyQuotaView{TokensUsed: q.JSON200.TokensUsed, TokensReserved: q.JSON200.TokensReserved,
				TokensRemaining: q.JSON200.TokensRemaining, UsageRatio: q.JSON200.UsageRatio, Budgets: q.JSON200.Budgets}
			if got, w := mustJSON(t, *k.Quota), mustJSON(t, want); got != w {
				t.Errorf("%s: list says %s, the quota view %s", k.Name, got, w)
			}
		}
		byName := map[string]*client.KeyQuotaView{}
		for _, k := range l.JSON200.Data {
			byName[k.Name] = k.Quota
		}
		if q := byName["quota-limited"]; q.TokensUsed != 1500 || q.TokensRemaining == nil || *q.TokensRemaining != 8500 || *q.UsageRatio != 0.15 {
			t.Errorf("limited: %+v", q)
		}
		if q := byName["quota-budgeted"]; len(q.Budgets) != 2 || !sameUSD(q.Budgets[0].UsedUsd, "1.25") || !sameUSD(q.Budgets[0].RemainingUsd, "3.75") ||
			q.Budgets[0].ResetsAt == nil || q.Budgets[1].ResetsAt != nil || !sameUSD(q.Budgets[1].UsedUsd, "1.25") {
			t.Errorf("budgeted: %s", mustJSON(t, q))
		}
		if q := byName["quota-plain"]; q.TokensRemaining != nil || q.UsageRatio != nil || len(q.Budgets) != 0 {
			t.Errorf("plain: %+v", q)
		}
		// The single-key views stay as they were: no quota there.
		g, _ := e.c.GetKeyWithResponse(ctx, plain.Id, e.admin())
		if g.JSON200 == nil || strings.Contains(string(g.Body), `"quota"`) {
			t.Errorf("get: %s", g.Body)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestBulkKeys(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		a := e.createKey(client.CreateKeyRequest{Name: "bulk-a"})
		b := e.createKey(client.CreateKeyRequest{Name: "bulk-b"})
		deleted := e.createKey(client.CreateKeyRequest{Name: "bulk-deleted"})
		if r, _ := e.c.DeleteKeyWithResponse(ctx, deleted.Id, e.admin()); r.StatusCode() != 204 {
			t.Fatalf("delete: %d", r.StatusCode())
		}
		// The keys work, and are cached as working.
		for _, k := range []client.CreatedAPIKey{a, b} {
			if r, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey)); r.StatusCode() != 200 {
				t.Fatalf("%s before: %d", k.Name, r.StatusCode())
			}
		}
		missing := uuid.New()
		ids := []uuid.UUID{a.Id, missing, b.Id, deleted.Id, a.Id}
		r, err := e.c.BulkKeysWithResponse(ctx, client.BulkKeysJSONRequestBody{Action: client.BulkKeysRequestActionDisable, Ids: ids}, e.admin())
		if err != nil || r.JSON200 == nil {
			t.Fatalf("bulk disable: %v %d %s", err, r.StatusCode(), r.Body)
		}
		// A repeated id is collapsed: one result per distinct id, in order.
		want := []client.BulkKeyResult{
			{Id: a.Id, Result: client.Ok, Changed: true},
			{Id: missing, Result: client.NotFound},
			{Id: b.Id, Result: client.Ok, Changed: true},
			{Id: deleted.Id, Result: client.NotFound},
		}
		if got := r.JSON200; got.Ok != 2 || got.NotFound != 2 || got.Action != client.BulkKeysResultActionDisable || !reflect.DeepEqual(got.Results, want) {
			t.Errorf("bulk disable: %s", r.Body)
		}
		// Disabled at once: the proxy keys are refused on this replica.
		for _, k := range []client.CreatedAPIKey{a, b} {
			if g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin()); g.JSON200 == nil || g.JSON200.IsActive {
				t.Errorf("%s still active: %s", k.Name, g.Body)
			}
			if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey)); q.StatusCode() != 401 {
				t.Errorf("%s after: %d", k.Name, q.StatusCode())
			}
		}
		// Again: nothing changes.
		r, _ = e.c.BulkKeysWithResponse(ctx, client.BulkKeysJSONRequestBody{Action: client.BulkKeysRequestActionDisable, Ids: []uuid.UUID{a.Id}}, e.admin())
		if r.JSON200 == nil || r.JSON200.Ok != 1 || r.JSON200.Results[0].Changed {
			t.Errorf("disable again: %s", r.Body)
		}
		r, _ = e.c.BulkKeysWithResponse(ctx, client.BulkKeysJSONRequestBody{Action: client.BulkKeysRequestActionEnable, Ids: []uuid.UUID{a.Id, b.Id}}, e.admin())
		if r.JSON200 == nil || r.JSON200.Ok != 2 || !r.JSON200.Results[0].Changed || !r.JSON200.Results[1].Changed {
			t.Errorf("enable: %s", r.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(a.ApiKey)); q.StatusCode() != 200 {
			t.Errorf("a after enable: %d", q.StatusCode())
		}

		// Audited: each change with the admin who asked, and the call.
		logs := e.logs.String()
		for _, want := range []string{
			fmt.Sprintf(`"msg":"api key disabled","key_id":"%s","name":"bulk-a","by":"admin","via":"bulk"`, a.Id),
			fmt.Sprintf(`"msg":"api key enabled","key_id":"%s","name":"bulk-b","by":"admin","via":"bulk"`, b.Id),
			`"msg":"bulk key action","action":"disable","by":"admin","keys":4,"changed":2,"not_found":2`,
			`"msg":"api request","request_id":`,
			`"op":"bulkKeys","method":"POST","status":200`,
		} {
			if !strings.Contains(logs, want) {
				t.Errorf("the log lacks %s", want)
			}
		}

		tooMany := make([]string, 501)
		for i := range tooMany {
			tooMany[i] = `"` + uuid.NewString() + `"`
		}
		for name, body := range map[string]string{
			"no ids":        `{"action":"disable","ids":[]}`,
			"too many":      `{"action":"disable","ids":[` + strings.Join(tooMany, ",") + `]}`,
			"bad action":    `{"action":"delete","ids":["` + a.Id.String() + `"]}`,
			"no action":     `{"ids":["` + a.Id.String() + `"]}`,
			"not a uuid":    `{"action":"enable","ids":["bulk-a"]}`,
			"nil uuid":      `{"action":"enable","ids":["00000000-0000-0000-0000-000000000000"]}`,
			"unknown field": `{"action":"enable","ids":["` + a.Id.String() + `"],"all":true}`,
			"not JSON":      `{"action":`,
		} {
			resp, got := e.raw(http.MethodPost, "/admin/api-keys/bulk", body, e.adminHeaders())
			if resp.StatusCode != 400 || !strings.Contains(string(got), `"invalid_request_error"`) {
				t.Errorf("%s: %d %s", name, resp.StatusCode, trunc(got))
			}
		}
		// 500 is the most, and allowed.
		many := make([]uuid.UUID, 500)
		for i := range many {
			many[i] = uuid.New()
		}
		if r, _ := e.c.BulkKeysWithResponse(ctx, client.BulkKeysJSONRequestBody{Action: client.BulkKeysRequestActionEnable, Ids: many}, e.admin()); r.JSON200 == nil || r.JSON200.NotFound != 500 {
			t.Errorf("500 ids: %d %s", r.StatusCode(), trunc(r.Body))
		}
		if resp, _ := e.raw(http.MethodPost, "/admin/api-keys/bulk", `{"action":"enable","ids":["`+a.Id.String()+`"]}`, nil); resp.StatusCode != 401 {
			t.Errorf("without a token: %d", resp.StatusCode)
		}
		// The bulk path is not a key id.
		if resp, _ := e.raw(http.MethodGet, "/admin/api-keys/bulk", "", e.adminHeaders()); resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
			t.Errorf("GET bulk: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
		}
	})
}

func TestLogsCarryRetries(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "retried"})
		now := time.Now().UTC().Truncate(time.Millisecond)
		e.insertRecords(t,
			domain.UsageRecord{RequestID: "req_retry_a_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-time.Minute), Model: "m",
				Path: "/v1/messages", Status: 200, Upstream: "primary", Attempts: 3, TriedUpstreams: []string{"eu-1", "eu-2"},
				TTFB: 250 * time.Millisecond,
				Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{CacheRead: 30, CacheSaved: 270}, Total: 30, PriceVersion: "v1"}},
			domain.UsageRecord{RequestID: "req_retry_b_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-2 * time.Minute), Model: "m",
				Path: "/v1/messages", Status: 401, ErrorType: "authentication_error"},
		)
		l, _ := e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{KeyId: &k.Id}, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 2 {
			t.Fatalf("logs: %s", l.Body)
		}
		a, b := l.JSON200.Data[0], l.JSON200.Data[1]
		if a.Attempts != 3 || !reflect.DeepEqual(a.TriedUpstreams, []string{"eu-1", "eu-2"}) || a.Upstream != "primary" ||
			a.TtfbMs != 250 || !sameUSD(a.CacheSavedUsd, "0.00000027") {
			t.Errorf("retried: %+v", a)
		}
		if b.Attempts != 0 || b.TriedUpstreams == nil || len(b.TriedUpstreams) != 0 || b.ErrorType != "authentication_error" {
			t.Errorf("refused: %+v", b)
		}
		if !strings.Contains(string(l.Body), `"tried_upstreams":[]`) {
			t.Errorf("an empty list is not []: %s", l.Body)
		}
	})
}
