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

// TestTwoReplicasShareQuota runs two relays against one PostgreSQL database
// and one Redis, as a multi-replica deployment does, and checks that the
// quota is never overspent and that no usage update is lost.
func TestTwoReplicasShareQuota(t *testing.T) {
	t.Parallel()
	testenv.MustRedis(t) // skip (or fail under CI) when Redis is absent
	dbURL := testenv.MustPostgresDB(t)
	shared := []string{"DATABASE_URL=" + dbURL, "REDIS_URL=" + testenv.RedisURL()}
	fake := fakeanthropic.New(fakeanthropic.Options{})
	a := startRelay(t, fake, shared...)
	b := startRelay(t, fake, shared...)
	quotaSuite(t, fake, []*testRelay{a, b}, dbURL, t.TempDir())
}

// TestOneReplicaQuotaOnSQLite runs the same checks on the default setup:
// one relay, embedded SQLite, the in-process ledger and limiters.
func TestOneReplicaQuotaOnSQLite(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	a := startRelay(t, fake)
	quotaSuite(t, fake, []*testRelay{a}, "", a.cfg.DataDir)
}

// quotaSuite: 50 concurrent requests of about L/10 never overspend L, and
// 500 concurrent requests give tokens_used equal to the exact sum.
func quotaSuite(t *testing.T, fake *fakeanthropic.Server, replicas []*testRelay, dbURL, dataDir string) {
	perReq := fakeanthropic.DefaultUsage
	actual := perReq.InputTokens + perReq.CacheCreationInputTokens + perReq.CacheReadInputTokens + perReq.OutputTokens
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
	waitTokens := func(t *testing.T, id string, want func(int64) bool) int64 {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			k, err := store.GetKey(context.Background(), mustUUID(t, id))
			if err != nil {
				t.Fatal(err)
			}
			if want(k.TokensUsed) {
				return k.TokensUsed
			}
			if time.Now().After(deadline) {
				t.Fatalf("tokens_used stuck at %d", k.TokensUsed)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	send := func(r *testRelay, key string, maxTokens int) (int, string) {
		body := `{"model":"claude-sonnet-4-5","max_tokens":` + itoa(maxTokens) + `,"messages":[{"role":"user","content":"hi"}]}`
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(body))
		req.Header.Set("x-api-key", key)
		req.Header.Set("content-type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var e struct {
			Error struct{ Type, Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error.Type + ": " + e.Error.Message
	}

	t.Run("no overspend under 50 concurrent requests", func(t *testing.T) {
		const limit = 10_000
		id, key := a.createKey(t, token, map[string]any{"name": "tight", "token_limit": limit, "rate_limit_tier": "bulk"})
		// Every answer stalls, so all 50 requests are in flight together and
		// each holds a reservation of about L/10 (max_tokens 1000 + input).
		steps := make([]fakeanthropic.Step, 50)
		for i := range steps {
			steps[i] = fakeanthropic.Step{Stall: 300 * time.Millisecond}
		}
		fake.Script(steps...)
		var admitted, refused atomic.Int64
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				status, msg := send(replicas[i%len(replicas)], key, 1000)
				switch {
				case status == 200:
					admitted.Add(1)
				case status == 429 && strings.Contains(msg, "rate_limit_error") && strings.Contains(msg, "quota"):
					refused.Add(1)
				default:
					t.Errorf("unexpected answer %d %s", status, msg)
				}
			}()
		}
		wg.Wait()
		fake.Script()
		if admitted.Load() == 0 || admitted.Load() > 9 {
			t.Fatalf("admitted %d requests of ~1010 tokens each under a limit of %d", admitted.Load(), limit)
		}
		used := waitTokens(t, id, func(n int64) bool { return n == admitted.Load()*actual })
		if used > limit {
			t.Fatalf("tokens_used %d > limit %d", used, limit)
		}
		t.Logf("admitted %d, refused %d, tokens_used %d of %d", admitted.Load(), refused.Load(), used, limit)
	})

	t.Run("500 concurrent requests lose no update", func(t *testing.T) {
		id, key := a.createKey(t, token, map[string]any{"name": "bulk", "token_limit": 100_000_000, "rate_limit_tier": "bulk"})
		const n = 500
		sem := make(chan struct{}, 100)
		var wg sync.WaitGroup
		var ok atomic.Int64
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				if status, msg := send(replicas[i%len(replicas)], key, 64); status == 200 {
					ok.Add(1)
				} else {
					t.Errorf("request failed: %d %s", status, msg)
				}
			}()
		}
		wg.Wait()
		want := ok.Load() * actual
		got := waitTokens(t, id, func(v int64) bool { return v >= want })
		if got != want || ok.Load() != n {
			t.Fatalf("tokens_used = %d, want %d (%d ok)", got, want, ok.Load())
		}
		uid := mustUUID(t, id)
		totals, err := store.UsageTotals(context.Background(), domain.UsageQuery{KeyID: &uid, From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)})
		if err != nil || len(totals) != 1 || totals[0].Requests != n || totals[0].Usage.Total() != want {
			t.Fatalf("usage records disagree with tokens_used: %+v %v", totals, err)
		}
	})
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
