package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// TestFullUsageQueueRefusesAndLosesNothing: with PostgreSQL unreachable,
// usage records pile up in the bounded queue; once it is (nearly) full the
// relay answers 503 overloaded_error instead of serving traffic it cannot
// account for. When the database is back, every admitted request's record
// lands, once.
func TestFullUsageQueueRefusesAndLosesNothing(t *testing.T) {
	t.Parallel()
	dbURL := testenv.MustPostgresDB(t)
	u, _ := url.Parse(dbURL)
	proxy := testenv.NewTCPProxy(t, u.Host)
	u.Host = proxy.Addr()
	r := startRelayWith(t, fakeanthropic.New(fakeanthropic.Options{}), func(c *config.Config) {
		c.Usage.QueueSize = 20
		c.Usage.BatchSize = 5
	}, "DATABASE_URL="+u.String())
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "outage"})
	// Warm the key cache so authentication does not need the database.
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 200 {
		t.Fatalf("warm-up: %d %s", resp.StatusCode, b)
	}

	proxy.Cut()
	ok, refused := 1, 0
	for i := 0; i < 40 && refused == 0; i++ {
		resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false))
		switch {
		case resp.StatusCode == 200:
			ok++
		case resp.StatusCode == 503 && strings.Contains(string(b), "overloaded_error"):
			refused++
		default:
			t.Fatalf("during outage: %d %s", resp.StatusCode, b)
		}
	}
	if refused == 0 {
		t.Fatalf("the queue never filled: %d requests admitted", ok)
	}
	if ok > 20 {
		t.Fatalf("admitted %d requests with a queue of 20", ok)
	}
	proxy.Restore()

	store, err := storage.Open(context.Background(), dbURL, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	id := mustUUID(t, keyID)
	deadline := time.Now().Add(20 * time.Second)
	for {
		logs, err := store.UsageLogs(context.Background(), domain.LogQuery{KeyID: &id, Limit: 100})
		if err == nil && len(logs) == ok {
			break
		}
		if err == nil && len(logs) > ok {
			t.Fatalf("%d records for %d admitted requests", len(logs), ok)
		}
		if time.Now().After(deadline) {
			t.Fatalf("records: %d, want %d (err %v)", len(logs), ok, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Admission opens again once the queue drains.
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 200 {
		t.Fatalf("after recovery: %d %s", resp.StatusCode, b)
	}
	per := fakeanthropic.DefaultUsage
	k, err := store.GetKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(ok) * (per.InputTokens + per.OutputTokens + per.CacheCreationInputTokens + per.CacheReadInputTokens); k.TokensUsed < want {
		t.Fatalf("tokens_used %d < %d", k.TokensUsed, want)
	}
}

// TestQuotaShowsLiveReservations: /api/usage/quota reports tokens_reserved
// while a request is in flight, and releases it on settlement.
func TestQuotaShowsLiveReservations(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "live", "token_limit": 1_000_000})
	quota := func() map[string]any {
		resp, b := r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+key, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("quota: %d %s", resp.StatusCode, b)
		}
		var q map[string]any
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		return q
	}
	fake.Script(fakeanthropic.Step{Stall: 2 * time.Second})
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false))
	}()
	deadline := time.Now().Add(2 * time.Second)
	for {
		q := quota()
		if q["tokens_reserved"].(float64) >= 256 { // max_tokens of the request, plus its input
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live reservation seen: %v", q)
		}
		time.Sleep(20 * time.Millisecond)
	}
	<-done
	q := quota()
	if q["tokens_reserved"].(float64) != 0 || q["tokens_used"].(float64) == 0 {
		t.Fatalf("after settlement: %v", q)
	}
}

// TestRedisDownFollowsFailurePolicies: with Redis unreachable, the quota
// fails closed (503, nothing upstream) and rate limits fail open (served),
// both counted.
func TestRedisDownFollowsFailurePolicies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake, "REDIS_URL=redis://"+dead+"/0")
	token := r.adminToken(t)
	_, limited := r.createKey(t, token, map[string]any{"name": "limited", "token_limit": 1_000_000})
	_, open := r.createKey(t, token, map[string]any{"name": "open"})

	before := fake.Count()
	t0 := time.Now()
	resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+limited, messagesBody(false))
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("with Redis down, admission took %v to apply the policy", d)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "overloaded_error") {
		t.Fatalf("quota with Redis down: %d %s", resp.StatusCode, b)
	}
	if fake.Count() != before {
		t.Fatal("a request that could not reserve quota went upstream")
	}
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+open, messagesBody(false)); resp.StatusCode != 200 {
		t.Fatalf("rate limit with Redis down should fail open: %d %s", resp.StatusCode, b)
	}
	m := scrape(t, r)
	if m[`relay_backend_failures_total{concern="quota",policy="fail_closed"}`] < 1 {
		t.Error("quota backend failure not counted")
	}
	if m[`relay_backend_failures_total{concern="requests",policy="fail_open"}`] < 1 {
		t.Error("rate-limit backend failure not counted")
	}
	if resp, _ := r.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ready with Redis down: %d", resp.StatusCode)
	}
}
