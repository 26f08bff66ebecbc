package httpadapter_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
)

var assetRef = regexp.MustCompile(`/ui/assets/[^"]+\.js`)

func noRedirect(req *http.Request) (*http.Response, error) {
	return (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
}

func TestDashboardRoutes(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""))
	if h, _ := e.c.HealthWithResponse(context.Background()); h.StatusCode() != 200 {
		t.Fatalf("health: %d", h.StatusCode())
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/", nil)
	resp, err := noRedirect(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	for _, p := range []string{"/ui/", "/ui/keys", "/ui/keys/" + uuid.NewString(), "/ui/me"} {
		resp, body := e.raw(http.MethodGet, p, "", nil)
		if resp.StatusCode != 200 || !strings.Contains(string(body), `<div id="app">`) {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, trunc(body))
			continue
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") ||
			resp.Header.Get("Cache-Control") != "no-cache" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: headers %v", p, resp.Header)
		}
	}
	_, index := e.raw(http.MethodGet, "/ui/", "", nil)
	asset := assetRef.FindString(string(index))
	if asset == "" {
		t.Fatalf("index.html names no script: %s", index)
	}
	resp, _ = e.raw(http.MethodGet, asset, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("GET %s: %d %v", asset, resp.StatusCode, resp.Header)
	}
	// The dashboard never takes the proxy's paths, nor the proxy the dashboard's.
	if resp, body := e.raw(http.MethodGet, "/ui/assets/missing.js", "", nil); resp.StatusCode != 404 {
		t.Errorf("missing asset: %d %s", resp.StatusCode, trunc(body))
	}
	before := e.proxied.Load()
	if resp, _ := e.raw(http.MethodPost, "/ui/keys", `{}`, nil); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/keys: %d", resp.StatusCode)
	}
	if e.proxied.Load() != before {
		t.Error("a dashboard path reached the proxy")
	}
}

func TestDashboardAdminAllowList(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""), withAdminIPs("10.0.0.0/8"))
	if h, _ := e.c.HealthWithResponse(context.Background()); h.StatusCode() != 200 {
		t.Fatalf("health: %d", h.StatusCode())
	}
	for _, p := range []string{"/ui/", "/ui/keys", "/ui/login", "/ui"} {
		resp, body := e.raw(http.MethodGet, p, "", nil)
		if resp.StatusCode != 403 || !strings.Contains(string(body), `"permission_error"`) {
			t.Errorf("GET %s from outside the allow-list: %d %s", p, resp.StatusCode, trunc(body))
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: the refusal lacks the CSP", p)
		}
	}
	// The key holder's page, and what it loads, are for everyone.
	resp, index := e.raw(http.MethodGet, "/ui/me", "", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /ui/me from outside the allow-list: %d %s", resp.StatusCode, trunc(index))
	}
	asset := assetRef.FindString(string(index))
	if resp, _ := e.raw(http.MethodGet, asset, "", nil); asset == "" || resp.StatusCode != 200 {
		t.Errorf("GET %q from outside the allow-list: %d", asset, resp.StatusCode)
	}
}

func TestAdminUsageByKey(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		mine := e.createKey(client.CreateKeyRequest{Name: "mine"})
		theirs := e.createKey(client.CreateKeyRequest{Name: "theirs"})
		now := time.Now().UTC()
		rec := func(key uuid.UUID, at time.Time, model string, in int64) domain.UsageRecord {
			return domain.UsageRecord{RequestID: "req_" + uuid.NewString(), KeyID: key, Time: at, Model: model,
				Path: "/v1/messages", Status: 200, Usage: domain.Usage{InputTokens: in, OutputTokens: 1}}
		}
		recs := []domain.UsageRecord{
			rec(mine.Id, now, "m-a", 10), rec(mine.Id, now.Add(-24*time.Hour), "m-b", 20),
			rec(theirs.Id, now, "m-secret", 1000),
		}
		if err := e.store.InsertUsage(ctx, recs); err != nil {
			t.Fatal(err)
		}
		// Day-aligned (the rollup) and not (the records) agree.
		day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
		ranges := map[string][2]time.Time{
			"rollup":  {day.AddDate(0, 0, -6), day.AddDate(0, 0, 1)},
			"records": {now.Add(-72 * time.Hour), now.Add(time.Minute)},
		}
		for name, rg := range ranges {
			from, to := rg[0], rg[1]
			for _, g := range []client.AdminUsageParamsGroupBy{client.AdminUsageParamsGroupByDay, client.AdminUsageParamsGroupByModel} {
				r, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{KeyId: &mine.Id, From: &from, To: &to, GroupBy: &g}, e.admin())
				if r.JSON200 == nil || r.JSON200.Totals.Requests != 2 || r.JSON200.Totals.InputTokens != 30 || len(r.JSON200.Groups) != 2 {
					t.Errorf("%s, by %s: %d %s", name, g, r.StatusCode(), r.Body)
					continue
				}
				if strings.Contains(string(r.Body), "m-secret") {
					t.Errorf("%s: another key's usage: %s", name, r.Body)
				}
			}
		}
		nilID := uuid.Nil
		if r, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{KeyId: &nilID}, e.admin()); r.StatusCode() != 400 {
			t.Errorf("nil key id: %d %s", r.StatusCode(), r.Body)
		}
	})
}
