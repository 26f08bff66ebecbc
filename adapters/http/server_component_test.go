package httpadapter_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

// stores are the real storage engines every component test runs against.
var stores = map[string]func(t *testing.T) ports.Store{
	"sqlite":   func(t *testing.T) ports.Store { return mustOpenStore(t, "") },
	"postgres": func(t *testing.T) ports.Store { return mustOpenStore(t, testenv.MustPostgresDB(t)) },
}

// mustOpenStore opens and migrates a store the way `relay serve` does: an
// empty URL is SQLite under a fresh data directory.
func mustOpenStore(t *testing.T, databaseURL string) ports.Store {
	t.Helper()
	s, err := storage.Open(context.Background(), databaseURL, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open store %q: %v", databaseURL, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func forEachStore(t *testing.T, f func(t *testing.T, e *testEnv)) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, open(t))
			e.login()
			f(t, e)
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestHealthReadyDocs(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		h, err := e.c.HealthWithResponse(ctx)
		if err != nil || h.JSON200 == nil || h.JSON200.Status != "ok" {
			t.Fatalf("health: %v %s", err, h.Body)
		}
		r, err := e.c.ReadyWithResponse(ctx)
		if err != nil || r.JSON200 == nil {
			t.Fatalf("ready: %v %s", err, r.Body)
		}
		for path, want := range map[string]string{
			"/openapi.yaml":              "openapi: 3.0",
			"/openapi.json":              `"openapi":"3.0`,
			"/docs":                      "swagger-ui-bundle.js",
			"/docs/swagger-ui.css":       ".swagger-ui",
			"/docs/swagger-ui-bundle.js": "SwaggerUIBundle",
		} {
			resp, body := e.raw(http.MethodGet, path, "", nil)
			if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
				t.Errorf("GET %s: %d, want 200 containing %q", path, resp.StatusCode, want)
			}
		}
		// Routes that take no body refuse one.
		for _, m := range []string{http.MethodGet, http.MethodDelete} {
			resp, body := e.raw(m, "/health", `{"x":1}`, nil)
			if resp.StatusCode != 400 || !strings.Contains(string(body), "takes no request body") {
				t.Errorf("%s /health with a body: %d %s", m, resp.StatusCode, body)
			}
		}
		// Unknown documentation files get the Anthropic-shaped 404.
		for _, path := range []string{"/docs/nope.js", "/docs/../openapi.yaml", "/docs/%2e%2e/x"} {
			resp, body := e.raw(http.MethodGet, path, "", nil)
			if resp.StatusCode != 404 || !strings.Contains(string(body), `"not_found_error"`) {
				t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
			}
		}
	})
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{
			Name: "ci", Description: ptr("for CI"), TokenLimit: ptr[int64](1000),
			AllowedIps: &[]string{"127.0.0.1", "10.0.0.0/8"}, AllowedDomains: &[]string{"App.Example.com", "*.example.org"},
		})
		if !strings.HasPrefix(k.ApiKey, domain.KeyPrefix) || len(k.ApiKey) < len(domain.KeyPrefix)+43 {
			t.Fatalf("api_key %q", k.ApiKey)
		}
		if k.RateLimitTier != "basic" || !k.IsActive || k.TokenLimit == nil || *k.TokenLimit != 1000 {
			t.Fatalf("created key: %+v", k)
		}
		if got := strings.Join(k.AllowedDomains, ","); got != "app.example.com,*.example.org" {
			t.Errorf("allowed_domains = %s", got)
		}

		// The key works for its own views, by bearer and by x-api-key.
		q, err := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
		if err != nil || q.JSON200 == nil {
			t.Fatalf("quota: %v %d %s", err, q.StatusCode(), q.Body)
		}
		if q.JSON200.TokensRemaining == nil || *q.JSON200.TokensRemaining != 1000 || q.JSON200.Tier.Name != "basic" ||
			q.JSON200.Tier.Requests.Limit != 100 || q.JSON200.Tier.Requests.Period != 60 {
			t.Errorf("quota: %s", q.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, xAPIKey(k.ApiKey)); q.StatusCode() != 200 {
			t.Errorf("quota by x-api-key: %d %s", q.StatusCode(), q.Body)
		}

		// Get shows the prefix, never the secret.
		g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin())
		if g.JSON200 == nil || strings.Contains(string(g.Body), k.ApiKey) || g.JSON200.KeyPrefix != k.KeyPrefix {
			t.Fatalf("get: %d %s", g.StatusCode(), g.Body)
		}

		// PATCH: absent fields stay, null clears.
		p, _ := e.c.UpdateKeyWithBodyWithResponse(ctx, k.Id, "application/json",
			strings.NewReader(`{"name":"ci-2","token_limit":null,"expires_at":"2999-01-01T00:00:00Z"}`), e.admin())
		if p.JSON200 == nil || p.JSON200.Name != "ci-2" || p.JSON200.TokenLimit != nil || p.JSON200.ExpiresAt == nil ||
			p.JSON200.Description != "for CI" {
			t.Fatalf("patch: %d %s", p.StatusCode(), p.Body)
		}
		p, _ = e.c.UpdateKeyWithBodyWithResponse(ctx, k.Id, "application/json", strings.NewReader(`{"expires_at":null}`), e.admin())
		if p.JSON200 == nil || p.JSON200.ExpiresAt != nil || p.JSON200.Name != "ci-2" {
			t.Fatalf("patch expires_at null: %d %s", p.StatusCode(), p.Body)
		}

		// Disable: 401 at once. Enable: works again.
		d, _ := e.c.DisableKeyWithResponse(ctx, k.Id, e.admin())
		if d.JSON200 == nil || d.JSON200.IsActive {
			t.Fatalf("disable: %d %s", d.StatusCode(), d.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey)); q.StatusCode() != 401 {
			t.Errorf("disabled key: %d", q.StatusCode())
		}
		if en, _ := e.c.EnableKeyWithResponse(ctx, k.Id, e.admin()); en.JSON200 == nil || !en.JSON200.IsActive {
			t.Fatalf("enable: %d %s", en.StatusCode(), en.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey)); q.StatusCode() != 200 {
			t.Errorf("re-enabled key: %d %s", q.StatusCode(), q.Body)
		}

		// Rotate: old 401, new works.
		rot, _ := e.c.RotateKeyWithResponse(ctx, k.Id, e.admin())
		if rot.JSON200 == nil || rot.JSON200.ApiKey == k.ApiKey {
			t.Fatalf("rotate: %d %s", rot.StatusCode(), rot.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey)); q.StatusCode() != 401 {
			t.Errorf("old secret after rotate: %d", q.StatusCode())
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(rot.JSON200.ApiKey)); q.StatusCode() != 200 {
			t.Errorf("new secret after rotate: %d %s", q.StatusCode(), q.Body)
		}

		// Usage recorded for the key stays visible to the admin after delete.
		now := time.Now().UTC()
		if err := e.store.InsertUsage(ctx, []domain.UsageRecord{{
			RequestID: "req_" + uuid.NewString(), KeyID: k.Id, Time: now.Add(-time.Minute), Model: "claude-x",
			Path: "/v1/messages", Status: 200, Usage: domain.Usage{InputTokens: 10, OutputTokens: 5},
		}}); err != nil {
			t.Fatalf("insert usage: %v", err)
		}
		del, _ := e.c.DeleteKeyWithResponse(ctx, k.Id, e.admin())
		if del.StatusCode() != 204 {
			t.Fatalf("delete: %d %s", del.StatusCode(), del.Body)
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(rot.JSON200.ApiKey)); q.StatusCode() != 401 {
			t.Errorf("deleted key: %d", q.StatusCode())
		}
		if g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin()); g.StatusCode() != 404 {
			t.Errorf("get deleted: %d", g.StatusCode())
		}
		if d, _ := e.c.DeleteKeyWithResponse(ctx, k.Id, e.admin()); d.StatusCode() != 404 {
			t.Errorf("delete twice: %d", d.StatusCode())
		}
		u, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{GroupBy: ptr(client.AdminUsageParamsGroupByKey)}, e.admin())
		if u.JSON200 == nil || u.JSON200.Totals.TotalTokens != 15 || len(u.JSON200.Groups) != 1 || u.JSON200.Groups[0].Group != k.Id.String() {
			t.Errorf("admin usage after delete: %d %s", u.StatusCode(), u.Body)
		}
		l, _ := e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{KeyId: &k.Id}, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 1 || l.JSON200.Data[0].TotalTokens != 15 {
			t.Errorf("admin logs after delete: %d %s", l.StatusCode(), l.Body)
		}
	})
}

func TestListKeysPagination(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		for i := range 5 {
			e.createKey(client.CreateKeyRequest{Name: "page-" + string(rune('a'+i))})
		}
		other := e.createKey(client.CreateKeyRequest{Name: "other"})
		_, _ = e.c.DisableKeyWithResponse(ctx, other.Id, e.admin())

		seen := map[string]bool{}
		var cursor *string
		for pages := 0; ; pages++ {
			r, _ := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{Name: ptr("PAGE"), Limit: ptr(2), Cursor: cursor}, e.admin())
			if r.JSON200 == nil || pages > 5 {
				t.Fatalf("list: %d %s", r.StatusCode(), r.Body)
			}
			for _, k := range r.JSON200.Data {
				if seen[k.Name] {
					t.Errorf("%s listed twice", k.Name)
				}
				seen[k.Name] = true
			}
			if cursor = r.JSON200.NextCursor; cursor == nil {
				break
			}
		}
		if len(seen) != 5 {
			t.Errorf("listed %d keys named page-*, want 5", len(seen))
		}
		r, _ := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{Active: ptr(false)}, e.admin())
		if r.JSON200 == nil || len(r.JSON200.Data) != 1 || r.JSON200.Data[0].Name != "other" {
			t.Errorf("inactive filter: %s", r.Body)
		}
	})
}

func TestTiers(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		l, _ := e.c.ListTiersWithResponse(ctx, e.admin())
		if l.JSON200 == nil || len(l.JSON200.Data) != 2 {
			t.Fatalf("seeded tiers: %s", l.Body)
		}
		p, _ := e.c.PutTierWithResponse(ctx, "gold", client.PutTierRequest{Requests: 5, Period: 10, Tokens: ptr[int64](5000), MaxConcurrency: ptr(2)}, e.admin())
		if p.JSON200 == nil || p.JSON200.Requests != 5 || p.JSON200.Tokens == nil || *p.JSON200.MaxConcurrency != 2 {
			t.Fatalf("put tier: %d %s", p.StatusCode(), p.Body)
		}
		k := e.createKey(client.CreateKeyRequest{Name: "gold-user", RateLimitTier: ptr("gold")})
		q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
		if q.JSON200 == nil || q.JSON200.Tier.Tokens == nil || q.JSON200.Tier.Tokens.Limit != 5000 ||
			q.JSON200.Tier.Concurrency == nil || q.JSON200.Tier.Concurrency.Remaining != 2 || q.JSON200.TokenLimit != nil {
			t.Errorf("quota on gold: %s", q.Body)
		}
		if d, _ := e.c.DeleteTierWithResponse(ctx, "gold", e.admin()); d.StatusCode() != 409 {
			t.Errorf("delete tier in use: %d %s", d.StatusCode(), d.Body)
		}
		if d, _ := e.c.DeleteTierWithResponse(ctx, "basic", e.admin()); d.StatusCode() != 409 {
			t.Errorf("delete default tier: %d %s", d.StatusCode(), d.Body)
		}
		if d, _ := e.c.DeleteTierWithResponse(ctx, "nope", e.admin()); d.StatusCode() != 404 {
			t.Errorf("delete unknown tier: %d %s", d.StatusCode(), d.Body)
		}
		_, _ = e.c.DeleteKeyWithResponse(ctx, k.Id, e.admin())
		if d, _ := e.c.DeleteTierWithResponse(ctx, "gold", e.admin()); d.StatusCode() != 204 {
			t.Errorf("delete unused tier: %d %s", d.StatusCode(), d.Body)
		}
	})
}

func TestKeyHolderUsageViews(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		mine := e.createKey(client.CreateKeyRequest{Name: "mine", TokenLimit: ptr[int64](100)})
		theirs := e.createKey(client.CreateKeyRequest{Name: "theirs"})
		now := time.Now().UTC()
		var recs []domain.UsageRecord
		for i := range 3 {
			recs = append(recs, domain.UsageRecord{
				RequestID: "req_mine_" + uuid.NewString(), KeyID: mine.Id, Time: now.Add(-time.Duration(i) * 24 * time.Hour),
				Model: []string{"m-a", "m-b", "m-a"}[i], Path: "/v1/messages", Status: 200,
				Usage: domain.Usage{InputTokens: 1, OutputTokens: 2, CacheCreationInputTokens: 3, CacheReadInputTokens: 4},
			})
		}
		recs = append(recs, domain.UsageRecord{RequestID: "req_theirs_" + uuid.NewString(), KeyID: theirs.Id, Time: now,
			Model: "m-secret", Path: "/v1/messages", Status: 500, Usage: domain.Usage{InputTokens: 1000}})
		if err := e.store.InsertUsage(ctx, recs); err != nil {
			t.Fatalf("insert usage: %v", err)
		}
		me := bearer(mine.ApiKey)

		u, _ := e.c.KeyUsageWithResponse(ctx, &client.KeyUsageParams{}, me)
		if u.JSON200 == nil || u.JSON200.Requests != 3 || u.JSON200.TotalTokens != 30 || len(u.JSON200.ByModel) != 2 ||
			u.JSON200.ByModel[0].Model != "m-a" || u.JSON200.ByModel[0].Requests != 2 {
			t.Errorf("usage: %d %s", u.StatusCode(), u.Body)
		}
		d, _ := e.c.KeyUsageDailyWithResponse(ctx, &client.KeyUsageDailyParams{}, me)
		if d.JSON200 == nil || len(d.JSON200.Data) != 30 {
			t.Fatalf("daily: %d %s", d.StatusCode(), d.Body)
		}
		var sum, zero int64
		for _, row := range d.JSON200.Data {
			sum += row.TotalTokens
			if row.Requests == 0 {
				zero++
			}
		}
		if sum != 30 || zero != 27 || d.JSON200.Data[29].Date != now.Format(time.DateOnly) {
			t.Errorf("daily rows: sum %d, zero days %d, last %s", sum, zero, d.JSON200.Data[29].Date)
		}
		l, _ := e.c.KeyUsageLogsWithResponse(ctx, &client.KeyUsageLogsParams{Limit: ptr(2)}, me)
		if l.JSON200 == nil || len(l.JSON200.Data) != 2 || l.JSON200.NextCursor == nil ||
			!l.JSON200.Data[0].Time.After(l.JSON200.Data[1].Time) {
			t.Fatalf("logs page 1: %d %s", l.StatusCode(), l.Body)
		}
		l2, _ := e.c.KeyUsageLogsWithResponse(ctx, &client.KeyUsageLogsParams{Limit: ptr(2), Cursor: l.JSON200.NextCursor}, me)
		if l2.JSON200 == nil || len(l2.JSON200.Data) != 1 || l2.JSON200.NextCursor != nil {
			t.Fatalf("logs page 2: %d %s", l2.StatusCode(), l2.Body)
		}
		for _, body := range [][]byte{u.Body, d.Body, l.Body, l2.Body} {
			if strings.Contains(string(body), "m-secret") || strings.Contains(string(body), theirs.Id.String()) {
				t.Errorf("a key holder saw another key's data: %s", body)
			}
		}
		q, _ := e.c.KeyQuotaWithResponse(ctx, me)
		if q.JSON200 == nil || q.JSON200.TokensUsed != 30 || *q.JSON200.TokensRemaining != 70 || *q.JSON200.UsageRatio != 0.3 {
			t.Errorf("quota: %d %s", q.StatusCode(), q.Body)
		}
		a, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{GroupBy: ptr(client.AdminUsageParamsGroupByModel)}, e.admin())
		if a.JSON200 == nil || a.JSON200.Totals.Requests != 4 || len(a.JSON200.Groups) != 3 {
			t.Errorf("admin usage by model: %s", a.Body)
		}
		st := 500
		al, _ := e.c.AdminUsageLogsWithResponse(ctx, &client.AdminUsageLogsParams{Status: &st}, e.admin())
		if al.JSON200 == nil || len(al.JSON200.Data) != 1 || al.JSON200.Data[0].KeyId != theirs.Id {
			t.Errorf("admin logs by status: %s", al.Body)
		}
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		k := e.createKey(client.CreateKeyRequest{Name: "victim"})
		adminH := map[string]string{"Authorization": "Bearer " + e.token}
		keyH := map[string]string{"x-api-key": k.ApiKey}
		id := k.Id.String()
		cases := []struct {
			name, method, path, body string
			hdr                      map[string]string
			status                   int
			errType                  string
		}{
			{"malformed JSON", "POST", "/admin/api-keys", `{"name":`, adminH, 400, "invalid_request_error"},
			{"not an object", "POST", "/admin/api-keys", `[1,2]`, adminH, 400, "invalid_request_error"},
			{"unknown field", "POST", "/admin/api-keys", `{"name":"x","colour":"red"}`, adminH, 400, "invalid_request_error"},
			{"unknown field on patch", "PATCH", "/admin/api-keys/" + id, `{"nme":"x"}`, adminH, 400, "invalid_request_error"},
			{"negative limit", "POST", "/admin/api-keys", `{"name":"x","token_limit":-1}`, adminH, 400, "invalid_request_error"},
			{"negative limit on patch", "PATCH", "/admin/api-keys/" + id, `{"token_limit":-5}`, adminH, 400, "invalid_request_error"},
			{"string limit on patch", "PATCH", "/admin/api-keys/" + id, `{"token_limit":"5"}`, adminH, 400, "invalid_request_error"},
			{"unknown tier", "POST", "/admin/api-keys", `{"name":"x","rate_limit_tier":"platinum"}`, adminH, 400, "invalid_request_error"},
			{"unknown tier on patch", "PATCH", "/admin/api-keys/" + id, `{"rate_limit_tier":"platinum"}`, adminH, 400, "invalid_request_error"},
			{"empty name", "POST", "/admin/api-keys", `{"name":""}`, adminH, 400, "invalid_request_error"},
			{"blank name", "POST", "/admin/api-keys", `{"name":"   "}`, adminH, 400, "invalid_request_error"},
			{"missing name", "POST", "/admin/api-keys", `{}`, adminH, 400, "invalid_request_error"},
			{"10 KB name", "POST", "/admin/api-keys", `{"name":"` + strings.Repeat("n", 10<<10) + `"}`, adminH, 400, "invalid_request_error"},
			{"bad CIDR", "POST", "/admin/api-keys", `{"name":"x","allowed_ips":["10.0.0.0/33"]}`, adminH, 400, "invalid_request_error"},
			{"bad address", "PATCH", "/admin/api-keys/" + id, `{"allowed_ips":["not-an-ip"]}`, adminH, 400, "invalid_request_error"},
			{"wildcard without domain", "POST", "/admin/api-keys", `{"name":"x","allowed_domains":["*."]}`, adminH, 400, "invalid_request_error"},
			{"domain with scheme", "POST", "/admin/api-keys", `{"name":"x","allowed_domains":["http://x.com"]}`, adminH, 400, "invalid_request_error"},
			{"domain with path", "PATCH", "/admin/api-keys/" + id, `{"allowed_domains":["x.com/a"]}`, adminH, 400, "invalid_request_error"},
			{"domain with port", "POST", "/admin/api-keys", `{"name":"x","allowed_domains":["x.com:443"]}`, adminH, 400, "invalid_request_error"},
			{"domain empty label", "POST", "/admin/api-keys", `{"name":"x","allowed_domains":["a..com"]}`, adminH, 400, "invalid_request_error"},
			{"expiry in the past", "POST", "/admin/api-keys", `{"name":"x","expires_at":"2001-01-01T00:00:00Z"}`, adminH, 400, "invalid_request_error"},
			{"bad time", "POST", "/admin/api-keys", `{"name":"x","expires_at":"tomorrow"}`, adminH, 400, "invalid_request_error"},
			{"malformed uuid", "GET", "/admin/api-keys/not-a-uuid", "", adminH, 400, "invalid_request_error"},
			{"unknown id", "GET", "/admin/api-keys/" + uuid.NewString(), "", adminH, 404, "not_found_error"},
			{"unknown id on patch", "PATCH", "/admin/api-keys/" + uuid.NewString(), `{"name":"y"}`, adminH, 404, "not_found_error"},
			{"from after to (admin)", "GET", "/admin/usage?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", adminH, 400, "invalid_request_error"},
			{"from after to (logs)", "GET", "/admin/usage/logs?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", adminH, 400, "invalid_request_error"},
			{"from after to (key)", "GET", "/api/usage?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", keyH, 400, "invalid_request_error"},
			{"from after to (daily)", "GET", "/api/usage/daily?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", keyH, 400, "invalid_request_error"},
			{"daily range too long", "GET", "/api/usage/daily?from=2020-01-01T00:00:00Z&to=2025-01-01T00:00:00Z", "", keyH, 400, "invalid_request_error"},
			{"bad group_by", "GET", "/admin/usage?group_by=colour", "", adminH, 400, "invalid_request_error"},
			{"bad from", "GET", "/api/usage?from=yesterday", "", keyH, 400, "invalid_request_error"},
			{"key list limit above max", "GET", "/admin/api-keys?limit=201", "", adminH, 400, "invalid_request_error"},
			{"key list limit zero", "GET", "/admin/api-keys?limit=0", "", adminH, 400, "invalid_request_error"},
			{"log limit above max", "GET", "/admin/usage/logs?limit=501", "", adminH, 400, "invalid_request_error"},
			{"key log limit above max", "GET", "/api/usage/logs?limit=100000", "", keyH, 400, "invalid_request_error"},
			{"bad cursor", "GET", "/admin/api-keys?cursor=!!!", "", adminH, 400, "invalid_request_error"},
			{"garbage cursor", "GET", "/api/usage/logs?cursor=bm9wZQ", "", keyH, 400, "invalid_request_error"},
			{"bad status filter", "GET", "/admin/usage/logs?status=42", "", adminH, 400, "invalid_request_error"},
			{"body over 1 MB", "POST", "/admin/api-keys", `{"name":"x","description":"` + strings.Repeat("d", 1<<20) + `"}`, adminH, 413, "request_too_large"},
			{"tier period zero", "PUT", "/admin/tiers/x", `{"requests":1,"period":0}`, adminH, 400, "invalid_request_error"},
			{"tier bad name", "PUT", "/admin/tiers/Bad.Name", `{"requests":1,"period":1}`, adminH, 400, "invalid_request_error"},
			{"tier unknown field", "PUT", "/admin/tiers/x", `{"requests":1,"period":1,"burst":3}`, adminH, 400, "invalid_request_error"},
			{"tier requests past int32", "PUT", "/admin/tiers/gold", `{"requests":4294967297,"period":60}`, adminH, 400, "invalid_request_error"},
			{"tier requests above max", "PUT", "/admin/tiers/gold", `{"requests":100000001,"period":60}`, adminH, 400, "invalid_request_error"},
			{"tier concurrency past int32", "PUT", "/admin/tiers/gold", `{"requests":1,"period":60,"max_concurrency":4294967297}`, adminH, 400, "invalid_request_error"},
			{"tier concurrency above max", "PUT", "/admin/tiers/gold", `{"requests":1,"period":60,"max_concurrency":100000001}`, adminH, 400, "invalid_request_error"},
			{"tier period above 30 days", "PUT", "/admin/tiers/gold", `{"requests":1,"period":2592001}`, adminH, 400, "invalid_request_error"},
			{"NUL in name", "POST", "/admin/api-keys", `{"name":"a\u0000b"}`, adminH, 400, "invalid_request_error"},
			{"NUL in description", "POST", "/admin/api-keys", `{"name":"x","description":"\u0000"}`, adminH, 400, "invalid_request_error"},
			{"NUL in name on patch", "PATCH", "/admin/api-keys/" + id, `{"name":"a\u0000"}`, adminH, 400, "invalid_request_error"},
			{"NUL in description on patch", "PATCH", "/admin/api-keys/" + id, `{"description":"d\u0000d"}`, adminH, 400, "invalid_request_error"},
			{"NUL in name filter", "GET", "/admin/api-keys?name=a%00b", "", adminH, 400, "invalid_request_error"},
			{"invalid UTF-8 in name filter", "GET", "/admin/api-keys?name=a%FFb", "", adminH, 400, "invalid_request_error"},
			{"NUL in key log cursor", "GET", "/api/usage/logs?cursor=" + logCursor("req_\x00"), "", keyH, 400, "invalid_request_error"},
			{"invalid UTF-8 in key log cursor", "GET", "/api/usage/logs?cursor=" + logCursor("req_\xff"), "", keyH, 400, "invalid_request_error"},
			{"NUL in admin log cursor", "GET", "/admin/usage/logs?cursor=" + logCursor("\x00"), "", adminH, 400, "invalid_request_error"},
			{"invalid UTF-8 in admin log cursor", "GET", "/admin/usage/logs?cursor=" + logCursor("req\xc3"), "", adminH, 400, "invalid_request_error"},
			{"long id in admin log cursor", "GET", "/admin/usage/logs?cursor=" + logCursor(strings.Repeat("r", 129)), "", adminH, 400, "invalid_request_error"},
			{"unknown admin path", "GET", "/admin/nope", "", adminH, 404, "not_found_error"},
			{"unknown api path", "GET", "/api/nope", "", keyH, 404, "not_found_error"},
			{"wrong method", "PUT", "/admin/api-keys", `{}`, adminH, 405, "invalid_request_error"},
			{"wrong method on a key", "POST", "/admin/api-keys/" + id, `{}`, adminH, 405, "invalid_request_error"},
			{"wrong method on health", "POST", "/health", `{}`, nil, 405, "invalid_request_error"},
			{"wrong method on the spec", "DELETE", "/openapi.json", "", nil, 405, "invalid_request_error"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				resp, body := e.raw(tc.method, tc.path, tc.body, tc.hdr)
				if resp.StatusCode != tc.status || !strings.Contains(string(body), `"type":"`+tc.errType+`"`) {
					t.Errorf("%s %s: %d %s; want %d %s", tc.method, tc.path, resp.StatusCode, trunc(body), tc.status, tc.errType)
				}
				if resp.Header.Get("x-request-id") == "" || !strings.Contains(string(body), resp.Header.Get("x-request-id")) {
					t.Errorf("request id missing from the error: %s", trunc(body))
				}
			})
		}
	})
}

// logCursor forges a usage-log cursor ("unix-nanos|request-id", base64url)
// around an arbitrary request id.
func logCursor(requestID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("1741600000000000000|" + requestID))
}

func trunc(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func TestAdminAuth(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "holder"})
		now := time.Now()
		sign := func(m jwt.SigningMethod, key any, c jwt.RegisteredClaims) string {
			s, err := jwt.NewWithClaims(m, c).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		good := jwt.RegisteredClaims{
			Subject: testAdminUser, Issuer: "relay-station", Audience: jwt.ClaimStrings{"relay-station-admin"},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		}
		with := func(f func(*jwt.RegisteredClaims)) jwt.RegisteredClaims { c := good; f(&c); return c }
		tampered := e.token[:len(e.token)-3] + "AAA"
		if tampered == e.token {
			tampered = e.token[:len(e.token)-3] + "BBB"
		}
		cases := map[string]string{
			"missing":         "",
			"garbage":         "not-a-jwt",
			"tampered":        tampered,
			"proxy key":       k.ApiKey,
			"expired":         sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })),
			"no exp":          sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.ExpiresAt = nil })),
			"no iat":          sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.IssuedAt = nil })),
			"wrong issuer":    sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.Issuer = "evil" })),
			"wrong audience":  sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.Audience = jwt.ClaimStrings{"other"} })),
			"wrong subject":   sign(jwt.SigningMethodHS256, testJWTSecret, with(func(c *jwt.RegisteredClaims) { c.Subject = "mallory" })),
			"wrong secret":    sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret!!!"), good),
			"wrong alg HS384": sign(jwt.SigningMethodHS384, testJWTSecret, good),
			"alg none":        sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		}
		for name, tok := range cases {
			t.Run(name, func(t *testing.T) {
				var editors []client.RequestEditorFn
				if tok != "" {
					editors = append(editors, bearer(tok))
				}
				r, err := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{}, editors...)
				if err != nil || r.StatusCode() != 401 || r.JSON401 == nil || r.JSON401.Error.Type != "authentication_error" {
					t.Errorf("%v %d %s", err, r.StatusCode(), r.Body)
				}
			})
		}
		if r, _ := e.c.ListKeysWithResponse(ctx, &client.ListKeysParams{}, bearer(sign(jwt.SigningMethodHS256, testJWTSecret, good))); r.StatusCode() != 200 {
			t.Errorf("a well-formed token was refused: %d %s", r.StatusCode(), r.Body)
		}
		// An admin token is not a proxy key.
		if q, _ := e.c.KeyQuotaWithResponse(ctx, e.admin()); q.StatusCode() != 401 {
			t.Errorf("admin token on /api: %d", q.StatusCode())
		}
		if q, _ := e.c.KeyQuotaWithResponse(ctx); q.StatusCode() != 401 {
			t.Errorf("no key on /api: %d", q.StatusCode())
		}
		if r, _ := e.c.AdminLoginWithResponse(ctx); r.StatusCode() != 401 {
			t.Errorf("login without credentials: %d", r.StatusCode())
		}
	})
}

// TestConcurrentPatchAndDisable: PATCHes racing a disable (or an enable)
// never undo it, on either engine.
func TestConcurrentPatchAndDisable(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "contended"})
		// retry repeats a request answered 409 (the key kept changing under it).
		retry := func(what string, do func() (int, []byte)) {
			for i := 0; ; i++ {
				code, body := do()
				if code == 200 {
					return
				}
				if code != 409 || i > 50 {
					t.Errorf("%s: %d %s", what, code, body)
					return
				}
			}
		}
		for round := range 4 {
			active := round%2 == 1
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					name := fmt.Sprintf("contended-%d-%d", round, i)
					retry("patch", func() (int, []byte) {
						r, err := e.c.UpdateKeyWithResponse(ctx, k.Id, client.UpdateKeyRequest{Name: &name, Description: &name}, e.admin())
						if err != nil {
							return 0, []byte(err.Error())
						}
						return r.StatusCode(), r.Body
					})
				})
			}
			wg.Go(func() {
				retry("disable/enable", func() (int, []byte) {
					if active {
						r, err := e.c.EnableKeyWithResponse(ctx, k.Id, e.admin())
						if err != nil {
							return 0, []byte(err.Error())
						}
						return r.StatusCode(), r.Body
					}
					r, err := e.c.DisableKeyWithResponse(ctx, k.Id, e.admin())
					if err != nil {
						return 0, []byte(err.Error())
					}
					return r.StatusCode(), r.Body
				})
			})
			wg.Wait()
			g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin())
			if g.JSON200 == nil || g.JSON200.IsActive != active {
				t.Fatalf("round %d: after parallel PATCHes and a %s, the key is %s", round,
					map[bool]string{true: "enable", false: "disable"}[active], g.Body)
			}
			q, _ := e.c.KeyQuotaWithResponse(ctx, bearer(k.ApiKey))
			if want := map[bool]int{true: 200, false: 401}[active]; q.StatusCode() != want {
				t.Errorf("round %d: the key authenticates with %d, want %d", round, q.StatusCode(), want)
			}
		}
	})
}

func TestAdminAllowedIPs(t *testing.T) {
	t.Parallel()
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newTestEnv(t, open(t), withAdminIPs("10.0.0.0/8"))
			r, _ := e.c.AdminLoginWithResponse(context.Background(), basic(testAdminUser, testAdminPass))
			if r.StatusCode() != 403 || r.JSON403 == nil || r.JSON403.Error.Type != "permission_error" {
				t.Errorf("login from outside: %d %s", r.StatusCode(), r.Body)
			}
			resp, body := e.raw("GET", "/admin/nope", "", nil)
			if resp.StatusCode != 403 {
				t.Errorf("unknown admin path from outside: %d %s", resp.StatusCode, body)
			}
			if h, _ := e.c.HealthWithResponse(context.Background()); h.StatusCode() != 200 {
				t.Errorf("health is not admin: %d", h.StatusCode())
			}
		})
	}
}

func TestProxyCatchAll(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		// Bigger than the management limit: the proxy has no body limit
		// or validation in front of it.
		big := `{"x":"` + strings.Repeat("a", 2<<20) + `"}`
		for _, p := range []string{"/v1/messages", "/v1/messages/count_tokens", "/", "/v1/models"} {
			resp, body := e.raw("POST", p, big, nil)
			if resp.StatusCode != 200 || string(body) != "event: ping\n\n" {
				t.Errorf("POST %s: %d %s", p, resp.StatusCode, trunc(body))
			}
		}
		if got := e.proxyLen.Load(); got != int64(len(big)) {
			t.Errorf("proxy read %d bytes, want %d", got, len(big))
		}
		if resp, _ := e.raw("OPTIONS", "/v1/messages", "", nil); resp.StatusCode != 200 {
			t.Errorf("OPTIONS reached %d", resp.StatusCode)
		}
		if e.proxied.Load() != 5 {
			t.Errorf("proxied %d requests, want 5", e.proxied.Load())
		}
	})
}
