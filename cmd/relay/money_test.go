package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// TestBudgetTwoReplicas: two relays on one PostgreSQL database and one
// Redis share a $1 budget.
func TestBudgetTwoReplicas(t *testing.T) {
	t.Parallel()
	testenv.MustRedis(t)
	dbURL := testenv.MustPostgresDB(t)
	shared := []string{"DATABASE_URL=" + dbURL, "REDIS_URL=" + testenv.RedisURL()}
	fake := fakeanthropic.New(fakeanthropic.Options{})
	a := startRelay(t, fake, shared...)
	b := startRelay(t, fake, shared...)
	budgetSuite(t, []*testRelay{a, b}, dbURL, "")
}

// TestBudgetOneReplicaSQLite: the default setup, SQLite and the
// in-process ledger.
func TestBudgetOneReplicaSQLite(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	a := startRelay(t, fake)
	budgetSuite(t, []*testRelay{a}, "", a.cfg.DataDir)
}

// budgetPrompt is long enough that the reservation's cheap input bound
// (every text byte a token) covers the fake's reported prompt, 425
// input-side tokens: the fake's usage does not depend on the prompt, and
// a reservation below the real cost could be overspent by its last
// request, which the real upstream never makes happen.
var budgetPrompt = strings.Repeat("budget ", 80)

func sendMessage(r *testRelay, key, model string, maxTokens int) (int, http.Header, string) {
	body := `{"model":"` + model + `","max_tokens":` + itoa(maxTokens) + `,"messages":[{"role":"user","content":"` + budgetPrompt + `"}]}`
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("content-type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	var e struct {
		Error struct{ Type, Message string } `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, resp.Header, e.Error.Type + ": " + e.Error.Message
}

func budgetSuite(t *testing.T, replicas []*testRelay, dbURL, dataDir string) {
	a := replicas[0]
	token := a.adminToken(t)
	if resp, body := a.do(t, http.MethodPut, "/admin/tiers/bulk", "Bearer "+token, map[string]any{"requests": 100000, "period": 60}); resp.StatusCode != 200 {
		t.Fatalf("put tier: %d %s", resp.StatusCode, body)
	}
	store, err := storage.Open(context.Background(), dbURL, dataDir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// costOf waits until the key's recorded cost reaches want (the usage
	// writer flushes in the background) and returns its totals.
	costOf := func(t *testing.T, id string, want domain.Nanodollars) domain.UsageTotals {
		t.Helper()
		uid := mustUUID(t, id)
		deadline := time.Now().Add(15 * time.Second)
		for {
			tot, err := store.UsageTotals(context.Background(), domain.UsageQuery{KeyID: &uid, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if len(tot) == 1 && tot[0].CostTotal >= want {
				return tot[0]
			}
			if time.Now().After(deadline) {
				t.Fatalf("recorded cost stuck at %+v, want %s", tot, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The fake's usage on claude-sonnet-4-5 ($3 in, $15 out, $3.75 5m
	// writes, $6 1h writes, $0.30 reads per MTok): 25 input, 40 + 60
	// cache writes, 300 reads, 120 output = 75 + 150 + 360 + 90 + 1800
	// µ$ = $0.002475 per request.
	const perRequest = domain.Nanodollars(2_475_000)

	t.Run("50 concurrent clients never overspend $1", func(t *testing.T) {
		id, key := a.createKey(t, token, map[string]any{"name": "dollar", "rate_limit_tier": "bulk",
			"budgets": []map[string]any{{"window": "total", "limit_usd": 1}}})
		var admitted, busy, spent atomic.Int64
		var wg sync.WaitGroup
		for w := range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					status, h, msg := sendMessage(replicas[w%len(replicas)], key, "claude-sonnet-4-5", 150)
					switch {
					case status == 200:
						admitted.Add(1)
					case status == 429 && strings.Contains(msg, "budget") && h.Get("x-should-retry") == "false":
						spent.Add(1)
						return
					case status == 429 && strings.Contains(msg, "budget"):
						busy.Add(1) // requests in flight hold the rest: try again
					default:
						t.Errorf("unexpected answer %d %s", status, msg)
						return
					}
				}
			}()
		}
		wg.Wait()
		tot := costOf(t, id, domain.Nanodollars(admitted.Load())*perRequest)
		if tot.CostTotal != domain.Nanodollars(admitted.Load())*perRequest {
			t.Fatalf("recorded cost %s for %d requests, want %s each", tot.CostTotal, admitted.Load(), perRequest)
		}
		if tot.CostTotal > domain.NanosPerUSD {
			t.Fatalf("recorded %s against a $1 budget", tot.CostTotal)
		}
		if tot.CostTotal < domain.NanosPerUSD/2 {
			t.Fatalf("only %s of the $1 budget was usable", tot.CostTotal)
		}
		t.Logf("admitted %d (%s), busy refusals %d, spent refusals %d", admitted.Load(), tot.CostTotal, busy.Load(), spent.Load())

		// The quota view agrees with the records, on every replica.
		for _, r := range replicas {
			resp, body := r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+key, nil)
			var raw struct {
				Budgets []map[string]any `json:"budgets"`
			}
			d := json.NewDecoder(strings.NewReader(string(body)))
			d.UseNumber()
			if resp.StatusCode != 200 || d.Decode(&raw) != nil || len(raw.Budgets) != 1 {
				t.Fatalf("quota view %d %s", resp.StatusCode, body)
			}
			usedText, _ := raw.Budgets[0]["used_usd"].(json.Number)
			used, err := domain.ParseUSD(string(usedText))
			if err != nil || used != tot.CostTotal {
				t.Fatalf("quota view used_usd %s, want %s (%v)", raw.Budgets[0]["used_usd"], tot.CostTotal, err)
			}
		}
	})

	t.Run("a budget added to a used key measures its usage", func(t *testing.T) {
		id, key := a.createKey(t, token, map[string]any{"name": "late-budget", "rate_limit_tier": "bulk"})
		for range 4 {
			if status, _, msg := sendMessage(a, key, "claude-sonnet-4-5", 150); status != 200 {
				t.Fatalf("%d %s", status, msg)
			}
		}
		costOf(t, id, 4*perRequest)
		// $0.01 a day: $0.0099 is spent, and the next request's bound does
		// not fit in what is left.
		resp, body := a.do(t, http.MethodPatch, "/admin/api-keys/"+id, "Bearer "+token, map[string]any{
			"budgets": []map[string]any{{"window": "day", "limit_usd": 0.01, "time_zone": "Europe/Paris"}}})
		if resp.StatusCode != 200 {
			t.Fatalf("patch: %d %s", resp.StatusCode, body)
		}
		for _, r := range replicas {
			status, h, msg := sendMessage(r, key, "claude-sonnet-4-5", 150)
			if status != 429 || !strings.Contains(msg, "day (Europe/Paris) budget") || h.Get("retry-after") == "" {
				t.Fatalf("after adding the budget: %d %s (retry-after %q)", status, msg, h.Get("retry-after"))
			}
		}
		// Raising it takes effect at once on the replica that changed it,
		// and on the others once their key cache (server.key_cache_ttl,
		// 5 s) has let the old key go, as for every key change.
		resp, body = a.do(t, http.MethodPatch, "/admin/api-keys/"+id, "Bearer "+token, map[string]any{
			"budgets": []map[string]any{{"window": "day", "limit_usd": 5, "time_zone": "Europe/Paris"}}})
		if resp.StatusCode != 200 {
			t.Fatalf("patch: %d %s", resp.StatusCode, body)
		}
		if status, _, msg := sendMessage(a, key, "claude-sonnet-4-5", 150); status != 200 {
			t.Fatalf("after raising the budget: %d %s", status, msg)
		}
		for _, r := range replicas[1:] {
			deadline := time.Now().Add(7 * time.Second)
			for {
				status, _, msg := sendMessage(r, key, "claude-sonnet-4-5", 150)
				if status == 200 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("another replica after raising the budget: %d %s", status, msg)
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	})
}

// TestModelAllowListEndToEnd: every metered route refuses a model outside
// the key's allowed_models with 403 before anything goes upstream, and
// /v1/models lists only the models the key may use.
func TestModelAllowListEndToEnd(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "sonnet-only", "allowed_models": []string{"claude-sonnet-*"}})
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, r.URL+path, strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		var buf [4096]byte
		for {
			n, err := resp.Body.Read(buf[:])
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	before := len(fake.Requests())
	refused := []struct{ name, method, path, body string }{
		{"messages", "POST", "/v1/messages", `{"model":"claude-opus-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`},
		{"chat completions", "POST", "/v1/chat/completions", `{"model":"claude-opus-4-5","messages":[{"role":"user","content":"hi"}]}`},
		{"count_tokens", "POST", "/v1/messages/count_tokens", `{"model":"claude-opus-4-5","messages":[{"role":"user","content":"hi"}]}`},
		{"batch with one disallowed request", "POST", "/v1/messages/batches", `{"requests":[` +
			`{"custom_id":"a","params":{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}},` +
			`{"custom_id":"b","params":{"model":"claude-opus-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}}]}`},
		{"model lookup", "GET", "/v1/models/claude-opus-4-5-20251101", ""},
		{"escaped model name", "POST", "/v1/messages", `{"model":"claude-\u006fpus-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`},
		{"duplicate model key", "POST", "/v1/messages", `{"model":"claude-sonnet-4-5","model":"claude-opus-4-5","max_tokens":10,"messages":[]}`},
	}
	for _, c := range refused {
		status, body := call(c.method, c.path, c.body)
		want := 403
		if c.name == "duplicate model key" {
			want = 400 // ambiguous: refused before any model is read
		}
		if status != want || !strings.Contains(body, `"type":"error"`) {
			t.Errorf("%s: %d %s, want %d", c.name, status, body, want)
		}
		if want == 403 && !strings.Contains(body, "permission_error") {
			t.Errorf("%s: %s, want permission_error", c.name, body)
		}
	}
	if n := len(fake.Requests()); n != before {
		t.Fatalf("%d refused requests reached the upstream", n-before)
	}
	if status, body := call("POST", "/v1/messages", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`); status != 200 {
		t.Fatalf("allowed model: %d %s", status, body)
	}
	status, body := call("GET", "/v1/models", "")
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if status != 200 || json.Unmarshal([]byte(body), &list) != nil {
		t.Fatalf("models: %d %s", status, body)
	}
	if len(list.Data) != 1 || list.Data[0].ID != fakeanthropic.Model || !strings.Contains(body, `"last_id":"`+fakeanthropic.Model+`"`) {
		t.Fatalf("models listing %s, want only %s", body, fakeanthropic.Model)
	}
}
