package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// poolKeys are the API keys of the two upstreams added through the admin
// API (the third, "primary", comes from the configuration).
var poolKeys = map[string]string{
	"b": "sk-ant-api03-POOL-B-secret-never-leak-0123456789",
	"c": "sk-ant-api03-POOL-C-secret-never-leak-9876543210",
}

// addUpstreams adds two fake upstreams beside the configured one, with
// the same priority and weight, and returns their ids by name.
func addUpstreams(t *testing.T, r *testRelay, token string, fakes map[string]*fakeanthropic.Server) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for _, name := range []string{"b", "c"} {
		srv := httptest.NewServer(fakes[name])
		t.Cleanup(srv.Close)
		resp, body := r.do(t, http.MethodPost, "/admin/upstreams", "Bearer "+token, map[string]any{
			"name": name, "url": srv.URL, "api_key": poolKeys[name], "priority": 0, "weight": 1})
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			t.Fatalf("create upstream %s: %d %s", name, resp.StatusCode, body)
		}
		if bytes.Contains(body, []byte(poolKeys[name])) {
			t.Fatalf("the create answer holds the API key: %s", body)
		}
		var v struct {
			ID    string `json:"id"`
			Last4 string `json:"api_key_last4"`
		}
		if err := json.Unmarshal(body, &v); err != nil || v.ID == "" || v.Last4 != poolKeys[name][len(poolKeys[name])-4:] {
			t.Fatalf("create upstream %s: %s", name, body)
		}
		ids[name] = v.ID
	}
	return ids
}

// bulkTier makes a tier that never limits the tests' request rates.
func bulkTier(t *testing.T, r *testRelay, token string) {
	t.Helper()
	if resp, body := r.do(t, http.MethodPut, "/admin/tiers/bulk", "Bearer "+token, map[string]any{"requests": 100000, "period": 60}); resp.StatusCode != 200 {
		t.Fatalf("put tier: %d %s", resp.StatusCode, body)
	}
}

// sessionCall sends one Messages request of a Claude Code session.
func sessionCall(t *testing.T, r *testRelay, key, session string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages",
		strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", key)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("X-Claude-Code-Session-Id", session)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// served counts the Messages requests each fake answered.
func served(fakes map[string]*fakeanthropic.Server) map[string]int {
	out := map[string]int{}
	for name, f := range fakes {
		for _, r := range f.Requests() {
			if r.Path == "/v1/messages" {
				out[name]++
			}
		}
	}
	return out
}

// TestUpstreamPoolEndToEnd: three upstreams, one from the configuration
// and two added through the admin API. A session sticks to one; sessions
// spread over all three; a 401 disables an upstream with its reason, in
// the store, and traffic moves on; API keys are sealed at rest and never
// answered or logged.
func TestUpstreamPoolEndToEnd(t *testing.T) {
	t.Parallel()
	fakes := map[string]*fakeanthropic.Server{
		"primary": fakeanthropic.New(fakeanthropic.Options{}),
		"b":       fakeanthropic.New(fakeanthropic.Options{}),
		"c":       fakeanthropic.New(fakeanthropic.Options{}),
	}
	r := startRelay(t, fakes["primary"])
	token := r.adminToken(t)
	ids := addUpstreams(t, r, token, fakes)
	bulkTier(t, r, token)
	_, key := r.createKey(t, token, map[string]any{"name": "pool-user", "rate_limit_tier": "bulk"})

	// One session: 100 requests on one upstream.
	for range 100 {
		if st := sessionCall(t, r, key, "session-one"); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	counts := served(fakes)
	home := ""
	for name, n := range counts {
		switch n {
		case 100:
			home = name
		case 0:
		default:
			t.Fatalf("one session spread over upstreams: %v", counts)
		}
	}
	if home == "" {
		t.Fatalf("served %v", counts)
	}
	// Sixty sessions, one request each: every upstream gets some.
	for i := range 60 {
		if st := sessionCall(t, r, key, "spread-"+itoa(i)); st != 200 {
			t.Fatalf("status %d", st)
		}
	}
	after := served(fakes)
	for name := range fakes {
		if after[name]-counts[name] == 0 {
			t.Fatalf("upstream %s got none of 60 new sessions: %v", name, after)
		}
	}

	// The session's upstream refuses its key: it is disabled, with the
	// reason, in the store; the session moves and stays moved.
	fakes[home].Script(fakeanthropic.Step{Status: 401, Body: `{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}`})
	if st := sessionCall(t, r, key, "session-one"); st != 401 {
		t.Fatalf("the refused request: %d", st)
	}
	for range 10 {
		if st := sessionCall(t, r, key, "session-one"); st != 200 {
			t.Fatalf("after the disable: %d", st)
		}
	}
	if n := served(fakes)[home] - after[home]; n != 1 {
		t.Fatalf("the disabled upstream got %d more requests, want only the refused one", n)
	}
	homeID := home
	if id, ok := ids[home]; ok {
		homeID = id
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, body := r.do(t, http.MethodGet, "/admin/upstreams/"+homeID, "Bearer "+token, nil)
		var v struct {
			Enabled        bool   `json:"enabled"`
			DisabledReason string `json:"disabled_reason"`
			State          string `json:"state"`
		}
		_ = json.Unmarshal(body, &v)
		if resp.StatusCode == 200 && !v.Enabled && strings.Contains(v.DisabledReason, "401") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the disable was not stored: %d %s", resp.StatusCode, body)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Keys: never in an answer, never in the log, never in the database.
	_, list := r.do(t, http.MethodGet, "/admin/upstreams", "Bearer "+token, nil)
	files, _ := filepath.Glob(filepath.Join(r.cfg.DataDir, "relay.db*"))
	if len(files) == 0 {
		t.Fatal("no SQLite files to scan")
	}
	for name, k := range poolKeys {
		if bytes.Contains(list, []byte(k)) || strings.Contains(r.Logs.String(), k) {
			t.Fatalf("upstream %s's key leaked into an answer or the log", name)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(k)) || bytes.Contains(b, []byte(k[len("sk-ant-api03-"):])) {
				t.Fatalf("upstream %s's key is stored in plaintext in %s", name, filepath.Base(f))
			}
		}
	}
}

// TestUpstreamPinsSharedByReplicas: two replicas on one PostgreSQL and one
// Redis pin a session to the same upstream.
func TestUpstreamPinsSharedByReplicas(t *testing.T) {
	t.Parallel()
	testenv.MustRedis(t)
	dbURL := testenv.MustPostgresDB(t)
	shared := []string{"DATABASE_URL=" + dbURL, "REDIS_URL=" + testenv.RedisURL()}
	fakes := map[string]*fakeanthropic.Server{
		"primary": fakeanthropic.New(fakeanthropic.Options{}),
		"b":       fakeanthropic.New(fakeanthropic.Options{}),
		"c":       fakeanthropic.New(fakeanthropic.Options{}),
	}
	a := startRelay(t, fakes["primary"], shared...)
	token := a.adminToken(t)
	addUpstreams(t, a, token, fakes)
	b := startRelay(t, fakes["primary"], shared...)
	bulkTier(t, a, token)
	_, key := a.createKey(t, token, map[string]any{"name": "two-replicas", "rate_limit_tier": "bulk"})
	// b loads the upstreams a stored (at start, and on its refresh).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, body := b.do(t, http.MethodGet, "/admin/upstreams", "Bearer "+b.adminToken(t), nil)
		if bytes.Count(body, []byte(`"api_key_last4"`)) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica b sees %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for i := range 10 {
		session := "shared-" + itoa(i)
		before := served(fakes)
		for _, r := range []*testRelay{a, b, a, b} {
			if st := sessionCall(t, r, key, session); st != 200 {
				t.Fatalf("status %d", st)
			}
		}
		after := served(fakes)
		hit := 0
		for name := range fakes {
			if after[name] != before[name] {
				hit++
			}
		}
		if hit != 1 {
			t.Fatalf("session %s went to %d upstreams across the two replicas: %v -> %v", session, hit, before, after)
		}
	}
}
