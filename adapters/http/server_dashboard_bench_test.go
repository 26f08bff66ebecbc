package httpadapter_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/memory"
	redisadapter "github.com/relaystation/relay/adapters/redis"
	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

// BenchmarkKeyListQuota measures one key-list page of 50 keys, each with a
// token limit and two money budgets holding spend, so every key's quota
// view reads both ledgers: GET /admin/api-keys?limit=50 end to end (HTTP,
// JWT, SQLite, the ledgers, JSON). "plain" is the same page of keys
// without limits or budgets, which read no ledger. The first page after a
// start also seeds each budgeted key's ledger from storage (one spend
// query per key, once); the benchmark reports that page as cold-ms.
//
//	go test -run '^$' -bench KeyListQuota ./adapters/http/
func BenchmarkKeyListQuota(b *testing.B) {
	for _, c := range []struct {
		name     string
		budgeted bool
		redis    bool
	}{
		{"plain/memory", false, false},
		{"budgeted/memory", true, false},
		{"budgeted/redis", true, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			url, token := newListBench(b, 50, c.budgeted, c.redis)
			page := func() {
				req, _ := http.NewRequest(http.MethodGet, url+"/admin/api-keys?limit=50", nil)
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				var body struct {
					Data []struct {
						Quota *struct {
							Budgets []json.RawMessage `json:"budgets"`
						} `json:"quota"`
					} `json:"data"`
				}
				err = json.NewDecoder(resp.Body).Decode(&body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != 200 || len(body.Data) != 50 {
					b.Fatalf("list: %d %v", resp.StatusCode, err)
				}
				for _, k := range body.Data {
					if k.Quota == nil || (c.budgeted && len(k.Quota.Budgets) != 2) {
						b.Fatalf("a key without its quota view")
					}
				}
			}
			start := time.Now()
			page()
			cold := time.Since(start)
			b.ResetTimer()
			for b.Loop() {
				page()
			}
			b.ReportMetric(float64(cold.Microseconds())/1000, "cold-ms")
		})
	}
}

// BenchmarkBulkKeys500 measures POST /admin/api-keys/bulk with the most ids
// a call takes, every one of them changed (disabled, then enabled, in
// turn) on SQLite.
func BenchmarkBulkKeys500(b *testing.B) {
	url, token := newListBench(b, 500, false, false)
	req, _ := http.NewRequest(http.MethodGet, url+"/admin/api-keys?limit=200", nil)
	var ids []string
	for cursor := ""; ; {
		q := req.Clone(context.Background())
		if cursor != "" {
			q.URL.RawQuery += "&cursor=" + cursor
		}
		q.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(q)
		if err != nil {
			b.Fatal(err)
		}
		var page struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
			NextCursor *string `json:"next_cursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		_ = resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
		for _, k := range page.Data {
			ids = append(ids, `"`+k.ID+`"`)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	if len(ids) != 500 {
		b.Fatalf("%d keys", len(ids))
	}
	action := "disable"
	for b.Loop() {
		body := `{"action":"` + action + `","ids":[` + strings.Join(ids, ",") + `]}`
		r, _ := http.NewRequest(http.MethodPost, url+"/admin/api-keys/bulk", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			b.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(out), `"ok":500`) || strings.Contains(string(out), `"changed":false`) {
			b.Fatalf("bulk: %d %.300s", resp.StatusCode, out)
		}
		if action == "disable" {
			action = "enable"
		} else {
			action = "disable"
		}
	}
}

// newListBench starts a relay front over SQLite with n keys, and returns
// its URL and an admin token.
func newListBench(b *testing.B, n int, budgeted, useRedis bool) (string, string) {
	b.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, "", b.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	clock := ports.SystemClock{}
	var (
		ledger ports.QuotaLedger
		bl     ports.BudgetLedger
	)
	if useRedis {
		rdb, prefix := testenv.MustRedis(b)
		ledger = redisadapter.NewLedger(rdb, redisadapter.WithPrefix(prefix))
		bl = redisadapter.NewBudgetLedger(rdb, redisadapter.WithPrefix(prefix))
	} else {
		ml, mb := memory.NewLedger(), memory.NewBudgetLedger()
		b.Cleanup(func() { _ = ml.Close(); _ = mb.Close() })
		ledger, bl = ml, mb
	}
	budgets, err := billing.NewBudgets(bl, store, clock, "")
	if err != nil {
		b.Fatal(err)
	}
	throttle, err := memory.NewLoginThrottle(10_000)
	if err != nil {
		b.Fatal(err)
	}
	hasher := domain.NewKeyHasher([]byte("bench-key-hmac-secret"))
	cache := keycache.New(store, 30*time.Second, clock)
	svc, err := admin.NewService(admin.Deps{Keys: store, Tiers: store, Usage: store, Cache: cache, Ledger: ledger,
		Clock: clock, Hasher: hasher, LoginThrottle: throttle, Budgets: budgets},
		admin.Config{AdminUsername: testAdminUser, AdminPasswordHash: fastHash, MaxPasswordChecks: 4, LoginThrottle: testLoginThrottle})
	if err != nil {
		b.Fatal(err)
	}
	if err := svc.SeedTiers(ctx, nil); err != nil {
		b.Fatal(err)
	}
	limit := int64(1_000_000)
	var recs []domain.UsageRecord
	for i := range n {
		in := admin.IssueKeyInput{Name: fmt.Sprintf("bench-%03d", i)}
		if budgeted {
			in.TokenLimit = &limit
			in.Budgets = []admin.BudgetInput{{Window: "day", LimitUSD: "5"}, {Window: "total", LimitUSD: "100"}}
		}
		k, err := svc.IssueKey(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		recs = append(recs, domain.UsageRecord{RequestID: "req_bench_" + uuid.NewString(), KeyID: k.Key.ID,
			Time: time.Now().UTC().Add(-time.Minute), Model: "m", Path: "/v1/messages", Status: 200, Upstream: "primary",
			Usage: domain.Usage{InputTokens: 1000, OutputTokens: 100},
			Cost:  domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 4_500_000}, Total: 4_500_000, PriceVersion: "v1"}})
	}
	if err := store.InsertUsage(ctx, recs); err != nil {
		b.Fatal(err)
	}
	s, err := httpadapter.New(httpadapter.Options{Log: slog.New(slog.DiscardHandler), Admin: svc,
		Auth: relay.NewAuthenticator(hasher, cache, clock), JWT: httpadapter.JWTOptions{Secret: testJWTSecret}, AdminUsername: testAdminUser})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(s)
	b.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/admin/login", nil)
	req.SetBasicAuth(testAdminUser, testAdminPass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(body, &tok); err != nil || tok.AccessToken == "" || !strings.Contains(string(body), "bearer") {
		b.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	return srv.URL, tok.AccessToken
}
