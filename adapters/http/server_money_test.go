package httpadapter_test

import (
	"bytes"
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
	"github.com/relaystation/relay/domain/pricing"
)

// Component tests of the money side of the management API: key budgets and
// allowed models, costs in the usage views, the price table and
// repricing. Tests that need the store's money ports call needMoneyStore.

func (e *testEnv) adminHeaders() map[string]string {
	return map[string]string{"Authorization": "Bearer " + e.token}
}

// decode unmarshals an answer, keeping numbers as their text.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %T: %v in %s", v, err, trunc(body))
	}
	return v
}

// sameUSD reports whether an amount from the API is exactly want dollars.
func sameUSD(got json.Number, want string) bool {
	g, err1 := domain.ParseUSD(got.String())
	w, err2 := domain.ParseUSD(want)
	return err1 == nil && err2 == nil && g == w
}

type budgetView struct {
	Window, LimitUSD, TimeZone string
}

func budgetsOf(bs []client.Budget) []budgetView {
	out := []budgetView{}
	for _, b := range bs {
		v := budgetView{Window: string(b.Window), LimitUSD: b.LimitUsd.String()}
		if b.TimeZone != nil {
			v.TimeZone = *b.TimeZone
		}
		out = append(out, v)
	}
	return out
}

// checkBudgets compares budgets from the API with want (window, USD, zone),
// amounts exactly.
func checkBudgets(t *testing.T, what string, got []client.Budget, want ...budgetView) {
	t.Helper()
	g := budgetsOf(got)
	ok := len(g) == len(want)
	for i := 0; ok && i < len(g); i++ {
		ok = g[i].Window == want[i].Window && g[i].TimeZone == want[i].TimeZone && sameUSD(json.Number(g[i].LimitUSD), want[i].LimitUSD)
	}
	if !ok {
		t.Errorf("%s: budgets %+v, want %+v", what, g, want)
	}
}

func TestKeyBudgetsAndAllowedModels(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		resp, body := e.raw("POST", "/admin/api-keys", `{"name":"budgeted",
			"budgets":[{"window":"5h","limit_usd":10},{"window":"day","limit_usd":0.1,"time_zone":"Europe/Paris"},
				{"window":"total","limit_usd":10.123456789},{"window":"month","limit_usd":"200.5"}],
			"allowed_models":["claude-sonnet-*","claude-haiku-4-5","claude-sonnet-*"]}`, e.adminHeaders())
		if resp.StatusCode != 201 {
			t.Fatalf("create: %d %s", resp.StatusCode, body)
		}
		// Exact decimal text, never a float's.
		for _, want := range []string{`"limit_usd":10.123456789`, `"limit_usd":0.100000`, `"limit_usd":200.500000`} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("create answer lacks %s: %s", want, body)
			}
		}
		k := decode[client.CreatedAPIKey](t, body)
		wantBudgets := []budgetView{{"5h", "10", ""}, {"day", "0.1", "Europe/Paris"}, {"total", "10.123456789", ""}, {"month", "200.5", ""}}
		wantModels := []string{"claude-sonnet-*", "claude-haiku-4-5"}
		checkBudgets(t, "create", k.Budgets, wantBudgets...)
		if !reflect.DeepEqual(k.AllowedModels, wantModels) {
			t.Errorf("create: allowed_models %q", k.AllowedModels)
		}

		e.needMoneyStore(t)
		g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin())
		if g.JSON200 == nil {
			t.Fatalf("get: %d %s", g.StatusCode(), g.Body)
		}
		checkBudgets(t, "get", g.JSON200.Budgets, wantBudgets...)
		if !reflect.DeepEqual(g.JSON200.AllowedModels, wantModels) || !bytes.Contains(g.Body, []byte(`"limit_usd":10.123456789`)) {
			t.Errorf("get: %s", g.Body)
		}
		l, _ := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{Name: ptr("budgeted")}, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 1 {
			t.Fatalf("list: %s", l.Body)
		}
		checkBudgets(t, "list", l.JSON200.Data[0].Budgets, wantBudgets...)

		// The quota views show each budget's window now.
		for who, get := range map[string]func() (*client.Quota, []byte){
			"holder": func() (*client.Quota, []byte) {
				q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
				return q.JSON200, q.Body
			},
			"admin": func() (*client.Quota, []byte) {
				q, _ := e.c.GetKeyQuotaWithResponse(ctx, k.Id, e.admin())
				return q.JSON200, q.Body
			},
		} {
			q, body := get()
			if q == nil || len(q.Budgets) != 4 {
				t.Fatalf("%s quota: %s", who, body)
			}
			for i, b := range q.Budgets {
				w := wantBudgets[i]
				if string(b.Window) != w.Window || !sameUSD(b.LimitUsd, w.LimitUSD) || !sameUSD(b.UsedUsd, "0") ||
					!sameUSD(b.ReservedUsd, "0") || !sameUSD(b.RemainingUsd, w.LimitUSD) {
					t.Errorf("%s quota budget %d: %+v", who, i, b)
				}
				// Nothing spent: a 5h window has nothing to reset, total never does.
				if wantNull := w.Window == "5h" || w.Window == "total"; (b.ResetsAt == nil) != wantNull {
					t.Errorf("%s quota budget %s: resets_at %v", who, w.Window, b.ResetsAt)
				}
			}
			if z := q.Budgets[1].TimeZone; z == nil || *z != "Europe/Paris" {
				t.Errorf("%s quota: day time_zone %v", who, z)
			}
			if at := q.Budgets[1].ResetsAt; at != nil && !at.After(time.Now()) {
				t.Errorf("%s quota: the day resets at %s, in the past", who, at)
			}
		}

		// PATCH replaces the lists; absent fields stay; empty lists clear.
		p, _ := e.c.UpdateKeyWithBodyWithResponse(ctx, k.Id, "application/json",
			strings.NewReader(`{"budgets":[{"window":"week","limit_usd":50,"time_zone":"Asia/Tokyo"}],"allowed_models":[]}`), e.admin())
		if p.JSON200 == nil {
			t.Fatalf("patch: %d %s", p.StatusCode(), p.Body)
		}
		checkBudgets(t, "patch", p.JSON200.Budgets, budgetView{"week", "50", "Asia/Tokyo"})
		if len(p.JSON200.AllowedModels) != 0 {
			t.Errorf("patch: allowed_models %q", p.JSON200.AllowedModels)
		}
		p, _ = e.c.UpdateKeyWithBodyWithResponse(ctx, k.Id, "application/json",
			strings.NewReader(`{"name":"renamed","allowed_models":["claude-opus-4-*"]}`), e.admin())
		if p.JSON200 == nil {
			t.Fatalf("patch name: %d %s", p.StatusCode(), p.Body)
		}
		checkBudgets(t, "patch name", p.JSON200.Budgets, budgetView{"week", "50", "Asia/Tokyo"})
		g, _ = e.c.GetKeyWithResponse(ctx, k.Id, e.admin())
		if g.JSON200 == nil || !reflect.DeepEqual(g.JSON200.AllowedModels, []string{"claude-opus-4-*"}) {
			t.Fatalf("get after patch: %s", g.Body)
		}
		checkBudgets(t, "get after patch", g.JSON200.Budgets, budgetView{"week", "50", "Asia/Tokyo"})
		q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
		if q.JSON200 == nil || len(q.JSON200.Budgets) != 1 || q.JSON200.Budgets[0].Window != client.BudgetWindowWeek {
			t.Errorf("quota after patch: %s", q.Body)
		}
		p, _ = e.c.UpdateKeyWithBodyWithResponse(ctx, k.Id, "application/json", strings.NewReader(`{"budgets":[]}`), e.admin())
		if p.JSON200 == nil || len(p.JSON200.Budgets) != 0 {
			t.Fatalf("clear budgets: %d %s", p.StatusCode(), p.Body)
		}
		q, _ = e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
		if q.JSON200 == nil || len(q.JSON200.Budgets) != 0 {
			t.Errorf("quota without budgets: %s", q.Body)
		}
		if q, _ := e.c.GetKeyQuotaWithResponse(ctx, uuid.New(), e.admin()); q.StatusCode() != 404 {
			t.Errorf("admin quota of an unknown key: %d", q.StatusCode())
		}
	})
}

func TestKeyBudgetsBadInput(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		k := e.createKey(client.CreateKeyRequest{Name: "victim"})
		budgets := func(items ...string) string { return `{"name":"x","budgets":[` + strings.Join(items, ",") + `]}` }
		nine := make([]string, 9)
		for i := range nine {
			nine[i] = fmt.Sprintf(`{"window":"day","limit_usd":1,"time_zone":"Etc/GMT+%d"}`, i+1)
		}
		models := make([]string, 257)
		for i := range models {
			models[i] = fmt.Sprintf(`"m-%d"`, i)
		}
		cases := []struct{ name, method, body, msg string }{
			{"exponent", "POST", budgets(`{"window":"day","limit_usd":1e2}`), "budgets[0].limit_usd"},
			{"exponent in a string", "POST", budgets(`{"window":"day","limit_usd":"1e2"}`), "budgets[0].limit_usd"},
			{"negative", "POST", budgets(`{"window":"day","limit_usd":-1}`), "negative"},
			{"ten decimals", "POST", budgets(`{"window":"day","limit_usd":0.0000000001}`), "more than 9 decimal places"},
			{"zero", "POST", budgets(`{"window":"day","limit_usd":0}`), "more than 0"},
			{"over the max", "POST", budgets(`{"window":"day","limit_usd":9007199.254740992}`), "at most"},
			{"not a number", "POST", budgets(`{"window":"day","limit_usd":"ten"}`), ""},
			{"a bool", "POST", budgets(`{"window":"day","limit_usd":true}`), ""},
			{"missing limit", "POST", budgets(`{"window":"day"}`), "limit_usd"},
			{"unknown window", "POST", budgets(`{"window":"hour","limit_usd":1}`), ""},
			{"unknown field", "POST", budgets(`{"window":"day","limit_usd":1,"currency":"EUR"}`), ""},
			{"nine budgets", "POST", budgets(nine...), ""},
			{"same window twice", "POST", budgets(`{"window":"week","limit_usd":1}`, `{"window":"week","limit_usd":2}`), "one budget per window"},
			{"time_zone on 5h", "POST", budgets(`{"window":"5h","limit_usd":1,"time_zone":"Europe/Paris"}`), "time_zone applies only"},
			{"time_zone on total", "POST", budgets(`{"window":"total","limit_usd":1,"time_zone":"UTC"}`), "time_zone applies only"},
			{"unknown zone", "POST", budgets(`{"window":"day","limit_usd":1,"time_zone":"Mars/Olympus"}`), "not a known IANA zone"},
			{"bad glob", "POST", `{"name":"x","allowed_models":["claude-["]}`, "not a valid glob"},
			{"model with a space", "POST", `{"name":"x","allowed_models":["claude sonnet"]}`, "printable ASCII"},
			{"257 models", "POST", `{"name":"x","allowed_models":[` + strings.Join(models, ",") + `]}`, ""},
			{"exponent on patch", "PATCH", `{"budgets":[{"window":"day","limit_usd":1E2}]}`, "budgets[0].limit_usd"},
			{"same window on patch", "PATCH", `{"budgets":[{"window":"day","limit_usd":1},{"window":"day","limit_usd":1}]}`, "one budget per window"},
			{"bad glob on patch", "PATCH", `{"allowed_models":["[a-"]}`, "not a valid glob"},
			{"budgets null on patch", "PATCH", `{"budgets":null}`, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				path := "/admin/api-keys"
				if tc.method == "PATCH" {
					path += "/" + k.Id.String()
				}
				resp, body := e.raw(tc.method, path, tc.body, e.adminHeaders())
				if resp.StatusCode != 400 || !strings.Contains(string(body), `"type":"invalid_request_error"`) || !strings.Contains(string(body), tc.msg) {
					t.Errorf("%s %s: %d %s; want 400 mentioning %q", tc.method, tc.body, resp.StatusCode, trunc(body), tc.msg)
				}
			})
		}
	})
}

// insertRecords stores usage records directly, as the usage writer does.
func (e *testEnv) insertRecords(t *testing.T, recs ...domain.UsageRecord) {
	t.Helper()
	if err := e.store.InsertUsage(context.Background(), recs); err != nil {
		t.Fatalf("insert usage: %v", err)
	}
}

func TestUsageViewsCarryCosts(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		e.needMoneyStore(t)
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "spender"})
		now := time.Now().UTC().Truncate(time.Millisecond)
		detail := json.RawMessage(`{"price_version":"2026-12-01.1","input":3000,"total":3000,"unpriced":["claude-nope"]}`)
		recs := []domain.UsageRecord{
			{RequestID: "req_cost_a_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-time.Minute), Model: "claude-sonnet-4-5-20250929",
				Path: "/v1/messages", Status: 200, Upstream: "primary", Usage: domain.Usage{InputTokens: 1000, OutputTokens: 100},
				Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 3_000_000, Output: 1_500_000}, Total: 4_500_000,
					PriceVersion: "2026-12-01.1"}},
			{RequestID: "req_cost_b_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-2 * time.Minute), Model: "claude-haiku-4-5-20251001",
				Path: "/v1/messages", Status: 200, Upstream: "backup", Usage: domain.Usage{InputTokens: 3, CacheCreationInputTokens: 10},
				ServerTools: domain.ServerToolUse{WebSearchRequests: 1},
				Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 3000, CacheWrite5m: 12_500, WebSearch: 10_000_000},
					Total: 10_015_500, PriceVersion: "2026-12-01.1", Fallback5m: true, Unpriced: true, Detail: detail}},
			{RequestID: "req_cost_c_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-3 * time.Minute), Model: "claude-sonnet-4-5-20250929",
				Path: "/v1/messages", Status: 429, ErrorType: "rate_limit_error"},
		}
		e.insertRecords(t, recs...)
		const total = "0.014515500"

		u, _ := e.c.KeyUsageWithResponse(ctx, &client.KeyUsageParams{}, bearer(k.ApiKey))
		if u.JSON200 == nil || !sameUSD(u.JSON200.CostUsd, total) || !sameUSD(u.JSON200.Cost.WebSearch, "0.01") ||
			!sameUSD(u.JSON200.Cost.Input, "0.003003") || !sameUSD(u.JSON200.Cost.CacheWrite5m, "0.0000125") || len(u.JSON200.ByModel) != 2 {
			t.Fatalf("key usage: %d %s", u.StatusCode(), u.Body)
		}
		for _, m := range u.JSON200.ByModel {
			want := map[string]string{"claude-sonnet-4-5-20250929": "0.0045", "claude-haiku-4-5-20251001": "0.0100155"}[m.Model]
			if !sameUSD(m.CostUsd, want) {
				t.Errorf("by_model %s: cost_usd %s, want %s", m.Model, m.CostUsd, want)
			}
		}
		d, _ := e.c.KeyUsageDailyWithResponse(ctx, &client.KeyUsageDailyParams{}, bearer(k.ApiKey))
		if d.JSON200 == nil {
			t.Fatalf("daily: %s", d.Body)
		}
		var daySum domain.Nanodollars
		for _, row := range d.JSON200.Data {
			n, err := domain.ParseUSD(row.CostUsd.String())
			if err != nil {
				t.Fatalf("daily cost_usd %q: %v", row.CostUsd, err)
			}
			daySum += n
		}
		if daySum != 14_515_500 {
			t.Errorf("daily costs sum to %s, want %s", daySum, total)
		}
		for _, g := range []client.AdminUsageParamsGroupBy{client.AdminUsageParamsGroupByKey, client.AdminUsageParamsGroupByDay, client.AdminUsageParamsGroupByModel} {
			a, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{KeyId: &k.Id, GroupBy: &g}, e.admin())
			if a.JSON200 == nil || !sameUSD(a.JSON200.Totals.CostUsd, total) || len(a.JSON200.Groups) == 0 {
				t.Fatalf("admin usage by %s: %s", g, a.Body)
			}
			var sum domain.Nanodollars
			for _, row := range a.JSON200.Groups {
				n, _ := domain.ParseUSD(row.CostUsd.String())
				sum += n
			}
			if sum != 14_515_500 {
				t.Errorf("admin usage by %s: groups sum to %s", g, sum)
			}
		}

		l, _ := e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{KeyId: &k.Id}, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 3 {
			t.Fatalf("logs: %s", l.Body)
		}
		a, b, c := l.JSON200.Data[0], l.JSON200.Data[1], l.JSON200.Data[2]
		if !sameUSD(a.CostUsd, "0.0045") || !sameUSD(a.Cost.Output, "0.0015") || a.PriceVersion == nil || *a.PriceVersion != "2026-12-01.1" ||
			a.CostFallback5m || a.CostUnpriced || a.CostDetail != nil || a.Upstream != "primary" {
			t.Errorf("log a: %+v", a)
		}
		if !sameUSD(b.CostUsd, "0.0100155") || !b.CostFallback5m || !b.CostUnpriced || b.CostDetail == nil || b.Upstream != "backup" {
			t.Errorf("log b: %+v", b)
		} else {
			var got, want any
			_ = json.Unmarshal(*b.CostDetail, &got)
			_ = json.Unmarshal(detail, &want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("cost_detail %s, want %s", *b.CostDetail, detail)
			}
		}
		if !sameUSD(c.CostUsd, "0") || c.PriceVersion != nil || c.CostDetail != nil {
			t.Errorf("log c (never priced): %+v", c)
		}
		lk, _ := e.c.KeyUsageLogsWithResponse(ctx, &client.KeyUsageLogsParams{}, bearer(k.ApiKey))
		if lk.JSON200 == nil || len(lk.JSON200.Data) != 3 || !sameUSD(lk.JSON200.Data[0].CostUsd, "0.0045") {
			t.Errorf("key logs: %s", lk.Body)
		}

		// Filters.
		filters := []struct {
			name string
			p    client.AdminUsageLogsParams
			want []string
		}{
			{"model", client.AdminUsageLogsParams{Model: ptr("claude-haiku-4-5-20251001")}, []string{recs[1].RequestID}},
			{"upstream", client.AdminUsageLogsParams{Upstream: ptr("primary")}, []string{recs[0].RequestID}},
			{"refusals", client.AdminUsageLogsParams{RefusalsOnly: ptr(true)}, []string{recs[2].RequestID}},
			{"model and refusals", client.AdminUsageLogsParams{Model: ptr("claude-sonnet-4-5-20250929"), RefusalsOnly: ptr(true)}, []string{recs[2].RequestID}},
			{"no match", client.AdminUsageLogsParams{Model: ptr("claude-nope")}, nil},
		}
		for _, f := range filters {
			p := f.p
			p.KeyId = &k.Id
			r, _ := e.c.AdminUsageLogsWithResponse(ctx, &p, e.admin())
			if r.JSON200 == nil {
				t.Fatalf("%s: %s", f.name, r.Body)
			}
			var got []string
			for _, row := range r.JSON200.Data {
				got = append(got, row.RequestId)
			}
			if !reflect.DeepEqual(got, f.want) {
				t.Errorf("filter %s: %v, want %v", f.name, got, f.want)
			}
		}
		for _, path := range []string{"/admin/usage/logs?model=", "/admin/usage/logs?upstream=" + strings.Repeat("u", 257), "/admin/usage/logs?refusals_only=maybe"} {
			if resp, body := e.raw("GET", path, "", e.adminHeaders()); resp.StatusCode != 400 {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, trunc(body))
			}
		}
	})
}

// tableWith is the seed table's JSON with another version and change
// applied to its decoded form.
func tableWith(t *testing.T, version string, change func(map[string]any)) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(pricing.SeedJSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = version
	if change != nil {
		change(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameJSONValue(t *testing.T, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("decode %s: %v", trunc(a), err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("decode %s: %v", trunc(b), err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestPricingEndpoints(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		seed, err := pricing.Seed()
		if err != nil {
			t.Fatal(err)
		}
		g, _ := e.c.GetPricingWithResponse(ctx, e.admin())
		if g.JSON200 == nil || g.JSON200.Version != seed.Version || g.JSON200.Retrieved != seed.Retrieved ||
			g.JSON200.Policy.Unpriced != client.Refuse || g.JSON200.Policy.FallbackModel != nil || len(g.JSON200.UnpricedModels) != 0 {
			t.Fatalf("get pricing: %d %s", g.StatusCode(), trunc(g.Body))
		}
		var models []pricing.Entry
		if err := json.Unmarshal(g.JSON200.Models, &models); err != nil || len(models) != len(seed.Models) {
			t.Fatalf("models: %d, %v", len(models), err)
		}
		if e, ok := seed.Entry(models[0].ID); !ok || e.Rates != models[0].Rates {
			t.Errorf("first model %+v, seed %+v", models[0], e)
		}
		vs, _ := e.c.ListPricingVersionsWithResponse(ctx, e.admin())
		if vs.JSON200 == nil || len(vs.JSON200.Data) != 1 || vs.JSON200.Data[0].Version != seed.Version || vs.JSON200.Data[0].CreatedBy != "seed" {
			t.Fatalf("versions: %s", vs.Body)
		}
		// The stored table, checked against the spec's PriceTable schema.
		v, _ := e.c.GetPricingVersionWithResponse(ctx, seed.Version, e.admin())
		if v.JSON200 == nil || !sameJSONValue(t, v.JSON200.Table, pricing.SeedJSON()) {
			t.Fatalf("get version: %d %s", v.StatusCode(), trunc(v.Body))
		}
		if r, _ := e.c.GetPricingVersionWithResponse(ctx, "no-such-version", e.admin()); r.StatusCode() != 404 {
			t.Errorf("unknown version: %d %s", r.StatusCode(), r.Body)
		}

		e.needMoneyStore(t)
		// A new version, with one price changed.
		table := tableWith(t, "ops-1", func(m map[string]any) {
			m["models"].([]any)[0].(map[string]any)["rates"].(map[string]any)["input"] = 9.5
		})
		p, _ := e.c.PutPricingWithResponse(ctx, client.PutPricingRequest{Table: table, Comment: ptr("raise fable")}, e.admin())
		if p.JSON200 == nil || p.JSON200.Version != "ops-1" {
			t.Fatalf("put: %d %s", p.StatusCode(), trunc(p.Body))
		}
		g, _ = e.c.GetPricingWithResponse(ctx, e.admin())
		if g.JSON200 == nil || g.JSON200.Version != "ops-1" || !bytes.Contains(g.JSON200.Models, []byte(`"input":"9.5"`)) {
			t.Errorf("current after put: %s", trunc(g.Body))
		}
		vs, _ = e.c.ListPricingVersionsWithResponse(ctx, e.admin())
		if vs.JSON200 == nil || len(vs.JSON200.Data) != 2 || vs.JSON200.Data[0].Version != "ops-1" ||
			vs.JSON200.Data[0].CreatedBy != testAdminUser || vs.JSON200.Data[0].Comment != "raise fable" || vs.JSON200.Data[0].CreatedAt == nil {
			t.Errorf("versions after put: %s", vs.Body)
		}
		v, _ = e.c.GetPricingVersionWithResponse(ctx, "ops-1", e.admin())
		if v.JSON200 == nil || !sameJSONValue(t, v.JSON200.Table, table) {
			t.Errorf("stored table: %s", trunc(v.Body))
		}
		if r, _ := e.c.PutPricingWithResponse(ctx, client.PutPricingRequest{Table: table}, e.admin()); r.StatusCode() != 409 ||
			!strings.Contains(string(r.Body), "already stored") {
			t.Errorf("same version again: %d %s", r.StatusCode(), r.Body)
		}
		bad := tableWith(t, "ops-bad", func(m map[string]any) {
			delete(m["models"].([]any)[1].(map[string]any)["rates"].(map[string]any), "output")
			m["models"].([]any)[2].(map[string]any)["batch"] = "-1"
		})
		for name, tc := range map[string]struct {
			body, msg string
		}{
			"invalid table":   {`{"table":` + string(bad) + `}`, "missing output"},
			"no models":       {`{"table":{"version":"ops-x","models":[]}}`, "no models"},
			"no version":      {`{"table":{"models":[]}}`, "version is required"},
			"unknown field":   {`{"table":{"version":"ops-x","models":[],"currency":"EUR"}}`, "unknown field"},
			"table not given": {`{"comment":"x"}`, "table"},
			"table a string":  {`{"table":"{}"}`, "table"},
		} {
			resp, body := e.raw("PUT", "/admin/pricing", tc.body, e.adminHeaders())
			if resp.StatusCode != 400 || !strings.Contains(string(body), tc.msg) {
				t.Errorf("%s: %d %s; want 400 mentioning %q", name, resp.StatusCode, trunc(body), tc.msg)
			}
		}

		// Extend: add a model and replace another, as a new version.
		entries := `[{"id":"claude-test-1","rates":{"input":"1","output":"2","cache_write_5m":"1.25","cache_write_1h":"2","cache_read":"0.1"}},
			{"id":"claude-haiku-4-5-20251001","aliases":["claude-haiku-4-5"],"patterns":["claude-haiku-4-5-20*"],
			 "rates":{"input":1.5,"output":7.5,"cache_write_5m":"1.875","cache_write_1h":"3","cache_read":"0.15"}}]`
		resp, body := e.raw("POST", "/admin/pricing/models", `{"version":"ops-2","base_version":"ops-1","models":`+entries+`}`, e.adminHeaders())
		if resp.StatusCode != 200 {
			t.Fatalf("extend: %d %s", resp.StatusCode, trunc(body))
		}
		ext := decode[client.Pricing](t, body)
		if err := json.Unmarshal(ext.Models, &models); err != nil || ext.Version != "ops-2" || len(models) != len(seed.Models)+1 {
			t.Fatalf("extended: %s with %d models (%v)", ext.Version, len(models), err)
		}
		if !bytes.Contains(ext.Models, []byte(`"id":"claude-test-1"`)) || !bytes.Contains(ext.Models, []byte(`"input":"9.5"`)) ||
			!bytes.Contains(ext.Models, []byte(`"input":"1.5"`)) {
			t.Errorf("extended models lost or missed an entry")
		}
		for name, tc := range map[string]struct {
			body   string
			status int
		}{
			"stale base":      {`{"version":"ops-3","base_version":"ops-1","models":` + entries + `}`, 409},
			"stored version":  {`{"version":"ops-1","models":` + entries + `}`, 409},
			"unknown field":   {`{"version":"ops-3","models":[{"id":"x","colour":"red","rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}}]}`, 400},
			"invalid rates":   {`{"version":"ops-3","models":[{"id":"x","rates":{"input":"1"}}]}`, 400},
			"no entries":      {`{"version":"ops-3","models":[]}`, 400},
			"no version":      {`{"models":` + entries + `}`, 400},
			"version too big": {`{"version":"` + strings.Repeat("v", 201) + `","models":` + entries + `}`, 400},
		} {
			if resp, body := e.raw("POST", "/admin/pricing/models", tc.body, e.adminHeaders()); resp.StatusCode != tc.status {
				t.Errorf("extend, %s: %d %s; want %d", name, resp.StatusCode, trunc(body), tc.status)
			}
		}
		g, _ = e.c.GetPricingWithResponse(ctx, e.admin())
		if g.JSON200 == nil || g.JSON200.Version != "ops-2" {
			t.Errorf("current after refused extends: %s", trunc(g.Body))
		}
	})
}

func TestRepriceEndpoint(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		// Bad ranges are refused whatever the store.
		for name, body := range map[string]string{
			"to before from": `{"from":"2026-12-01T00:00:00Z","to":"2026-11-01T00:00:00Z"}`,
			"empty range":    `{"from":"2026-12-01T00:00:00Z","to":"2026-12-01T00:00:00Z"}`,
			"over 400 days":  `{"from":"2025-01-01T00:00:00Z","to":"2026-03-01T00:00:00Z"}`,
			"no to":          `{"from":"2026-12-01T00:00:00Z"}`,
			"not a time":     `{"from":"yesterday","to":"2026-12-01T00:00:00Z"}`,
			"unknown field":  `{"from":"2026-11-01T00:00:00Z","to":"2026-12-01T00:00:00Z","dry":true}`,
		} {
			if resp, b := e.raw("POST", "/admin/usage/reprice", body, e.adminHeaders()); resp.StatusCode != 400 ||
				!strings.Contains(string(b), "invalid_request_error") {
				t.Errorf("%s: %d %s", name, resp.StatusCode, trunc(b))
			}
		}

		e.needMoneyStore(t)
		ctx := context.Background()
		seed, _ := pricing.Seed()
		k := e.createKey(client.CreateKeyRequest{Name: "repriced", Budgets: &[]client.BudgetInput{{Window: client.BudgetWindowTotal, LimitUsd: "100"}}})
		other := e.createKey(client.CreateKeyRequest{Name: "fresh"})
		now := time.Now().UTC().Truncate(time.Millisecond)
		sonnet := domain.Usage{InputTokens: 1000, OutputTokens: 100} // $0.0045 at the seed's $3/$15
		stale := domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 2_000_000, Output: 1_000_000}, Total: 3_000_000, PriceVersion: "old"}
		var recs []domain.UsageRecord
		for i := range 3 {
			recs = append(recs, domain.UsageRecord{RequestID: fmt.Sprintf("req_stale_%d_%s", i, uuid.NewString()), KeyID: k.Id,
				Time: now.Add(-time.Duration(i+1) * time.Minute), Model: "claude-sonnet-4-5-20250929", Path: "/v1/messages",
				Status: 200, Usage: sonnet, Cost: stale})
		}
		current := domain.UsageRecord{RequestID: "req_current_" + uuid.NewString(), KeyID: other.Id, Time: now.Add(-time.Minute),
			Model: "claude-sonnet-4-5-20250929", Path: "/v1/messages", Status: 200, Usage: sonnet}
		c, err := seed.Price(pricing.FromRecord(current), pricing.Policy{})
		if err != nil {
			t.Fatal(err)
		}
		current.Cost = pricing.RecordCostOf(c)
		refusal := domain.UsageRecord{RequestID: "req_refused_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-time.Minute),
			Model: "claude-sonnet-4-5-20250929", Path: "/v1/messages", Status: 429}
		e.insertRecords(t, append(recs, current, refusal)...)

		// The key's total budget sees the stored (stale) costs.
		used := func() json.Number {
			q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
			if q.JSON200 == nil || len(q.JSON200.Budgets) != 1 {
				t.Fatalf("quota: %s", q.Body)
			}
			return q.JSON200.Budgets[0].UsedUsd
		}
		if u := used(); !sameUSD(u, "0.009") {
			t.Errorf("used before repricing: %s, want 0.009", u)
		}
		from, to := now.Add(-time.Hour), now.Add(time.Second)
		reprice := func(apply bool) client.RepriceReport {
			t.Helper()
			r, err := e.c.RepriceUsageWithResponse(ctx, client.RepriceRequest{From: from, To: to, Apply: &apply}, e.admin())
			if err != nil || r.JSON200 == nil {
				t.Fatalf("reprice (apply %t): %v %d %s", apply, err, r.StatusCode(), r.Body)
			}
			return *r.JSON200
		}
		dry := reprice(false)
		if dry.Examined != 5 || dry.Skipped != 1 || dry.Changed != 3 || dry.Applied != 0 || dry.PriceVersion != seed.Version ||
			!sameUSD(dry.OldTotalUsd, "0.0135") || !sameUSD(dry.NewTotalUsd, "0.018") || !sameUSD(dry.DifferenceUsd, "0.0045") ||
			len(dry.ByModel) != 1 || dry.ByModel[0].Changed != 3 || !sameUSD(dry.ByModel[0].DifferenceUsd, "0.0045") {
			t.Errorf("dry run: %+v", dry)
		}
		l, _ := e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{KeyId: &k.Id}, e.admin())
		if l.JSON200 == nil || l.JSON200.Data[0].PriceVersion == nil || *l.JSON200.Data[0].PriceVersion != "old" {
			t.Fatalf("a dry run changed the logs: %s", trunc(l.Body))
		}

		applied := reprice(true)
		if applied.Changed != 3 || applied.Applied != 3 || applied.KeysReset != 1 || !sameUSD(applied.DifferenceUsd, "0.0045") {
			t.Errorf("apply: %+v", applied)
		}
		l, _ = e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{KeyId: &k.Id}, e.admin())
		if l.JSON200 == nil {
			t.Fatalf("logs: %s", l.Body)
		}
		for _, row := range l.JSON200.Data {
			if row.Status == http.StatusTooManyRequests {
				if row.PriceVersion != nil {
					t.Errorf("the refusal was priced: %+v", row)
				}
				continue
			}
			if row.PriceVersion == nil || *row.PriceVersion != seed.Version || !sameUSD(row.CostUsd, "0.0045") {
				t.Errorf("after apply: %s priced %v at %s", row.RequestId, row.PriceVersion, row.CostUsd)
			}
		}
		a, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{From: &from, To: &to}, e.admin())
		if a.JSON200 == nil || !sameUSD(a.JSON200.Totals.CostUsd, "0.018") {
			t.Errorf("totals after apply: %s", a.Body)
		}
		// The ledger re-seeded from the rewritten costs.
		if u := used(); !sameUSD(u, "0.0135") {
			t.Errorf("used after repricing: %s, want 0.0135", u)
		}

		again := reprice(true)
		if again.Changed != 0 || again.Applied != 0 || again.KeysReset != 0 || !sameUSD(again.DifferenceUsd, "0") || len(again.ByModel) != 0 {
			t.Errorf("second apply: %+v", again)
		}
	})
}
