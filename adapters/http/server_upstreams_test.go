package httpadapter_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/secretbox"
	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
)

// boxSealer is ports.SecretSealer over the real AES-GCM box.
type boxSealer struct{ box secretbox.Box }

var (
	_ ports.SecretSealer   = boxSealer{}
	_ upstreams.KeyRotator = boxSealer{}
)

func (b boxSealer) Seal(plain, id string) (string, error) {
	return b.box.Seal(secretbox.NewSecret(plain), id)
}

func (b boxSealer) Open(sealed, id string) (string, error) {
	s, err := b.box.Open(sealed, id)
	return s.Reveal(), err
}

func (b boxSealer) NeedsRotation(sealed string) bool { return b.box.NeedsRotation(sealed) }

// testRuntime is the transport's side as far as these tests need it: it
// keeps the endpoints applied, and tests one with GET /v1/models.
type testRuntime struct {
	mu  sync.Mutex
	eps map[string]ports.UpstreamEndpoint
}

var _ ports.UpstreamRuntime = (*testRuntime)(nil)

func (r *testRuntime) Apply(eps []ports.UpstreamEndpoint) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.eps = map[string]ports.UpstreamEndpoint{}
	for _, e := range eps {
		r.eps[e.ID] = e
	}
	return nil
}

func (r *testRuntime) endpoint(id string) (ports.UpstreamEndpoint, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.eps[id]
	return e, ok
}

func (r *testRuntime) Test(ctx context.Context, e ports.UpstreamEndpoint) ports.UpstreamTest {
	base := strings.TrimSuffix(strings.TrimSuffix(e.URL, "/"), "/v1")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/models", nil)
	if err != nil {
		return ports.UpstreamTest{Message: err.Error()}
	}
	req.Header.Set("x-api-key", e.APIKey)
	req.Header.Set("anthropic-version", "2023-06-01")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ports.UpstreamTest{Message: "connection failed"}
	}
	defer resp.Body.Close()
	out := ports.UpstreamTest{OK: resp.StatusCode/100 == 2, Status: resp.StatusCode, Latency: time.Since(start)}
	if !out.OK {
		var body struct {
			Error struct{ Message string } `json:"error"`
		}
		b, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(b, &body)
		out.Message = body.Error.Message
	}
	return out
}

// upstreamEnv is a testEnv whose server manages upstreams over its store,
// with every log line of the server and the registry captured.
type upstreamEnv struct {
	*testEnv
	reg     *upstreams.Registry
	pool    *pool.Pool
	runtime *testRuntime
	log     *syncBuffer
	// bodies are every response body the test saw.
	bodies []string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func forEachStoreWithUpstreams(t *testing.T, f func(t *testing.T, e *upstreamEnv)) {
	for name, open := range stores {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			store := open(t)
			logs := &syncBuffer{}
			log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			key, err := secretbox.DeriveKey("component-test-upstream-key-secret")
			if err != nil {
				t.Fatal(err)
			}
			p, err := pool.New(pool.Config{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rt := &testRuntime{}
			reg, err := upstreams.New(upstreams.Deps{Store: store, Sealer: boxSealer{secretbox.Box{Current: key}}, Pool: p,
				Runtime: rt, Usage: store, Clock: ports.SystemClock{}, Log: log})
			if err != nil {
				t.Fatal(err)
			}
			if err := reg.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			e := &upstreamEnv{testEnv: newTestEnv(t, store, func(o *httpadapter.Options) { o.Upstreams, o.Log = reg, log }),
				reg: reg, pool: p, runtime: rt, log: logs}
			e.login()
			f(t, e)
		})
	}
}

// seen keeps a response body for the final secret scan and returns it.
func (e *upstreamEnv) seen(body []byte) []byte {
	e.bodies = append(e.bodies, string(body))
	return body
}

// noSecret fails if any secret shows in a response body, the log or a
// stored row.
func (e *upstreamEnv) noSecret(t *testing.T, secrets ...string) {
	t.Helper()
	log := e.log.String()
	rows, err := e.store.ListUpstreams(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		for _, b := range e.bodies {
			if strings.Contains(b, s) {
				t.Errorf("a response shows a secret: %s", b)
			}
		}
		if strings.Contains(log, s) {
			t.Errorf("the log shows a secret:\n%s", log)
		}
		for _, u := range rows {
			if strings.Contains(u.SealedKey, s) || strings.Contains(u.URL, s) {
				t.Errorf("upstream %s is stored with a secret", u.ID)
			}
		}
	}
}

func (e *upstreamEnv) createUpstream(t *testing.T, body string) client.Upstream {
	t.Helper()
	resp, raw := e.raw(http.MethodPost, "/admin/upstreams", body, map[string]string{"Authorization": "Bearer " + e.token})
	e.seen(raw)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create upstream: %d %s", resp.StatusCode, raw)
	}
	var u client.Upstream
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

const (
	upstreamKeyA = "sk-ant-api03-componentAAAAAAAAAAAAAAAA-aaaa"
	upstreamKeyB = "sk-ant-api03-componentBBBBBBBBBBBBBBBB-bbbb"
)

func TestUpstreamLifecycle(t *testing.T) {
	t.Parallel()
	forEachStoreWithUpstreams(t, func(t *testing.T, e *upstreamEnv) {
		ctx := context.Background()
		fake := fakeanthropic.New(fakeanthropic.Options{})
		up := httptest.NewServer(fake)
		t.Cleanup(up.Close)

		u := e.createUpstream(t, `{"name":"org-a","url":"`+up.URL+`","api_key":"`+upstreamKeyA+`","priority":1,
			"max_concurrency":8,"models":["claude-sonnet-*"],"group":"team-a"}`)
		if !strings.HasPrefix(u.Id, "up_") || u.Name != "org-a" || u.Url != up.URL || u.ApiKeyLast4 == nil || *u.ApiKeyLast4 != "aaaa" ||
			u.Priority != 1 || u.Weight != 1 || u.MaxConcurrency == nil || *u.MaxConcurrency != 8 || u.Group != "team-a" ||
			!u.Enabled || u.DisabledReason != nil || u.State != client.UpstreamStateHealthy || !u.Loaded ||
			u.InFlight != 0 || u.RecentErrors == nil || *u.RecentErrors != 0 || u.CacheHitRate != nil || len(u.ModelsState) != 0 {
			t.Fatalf("created: %+v", u)
		}
		// This replica reaches it at once, with the key.
		if ep, ok := e.runtime.endpoint(u.Id); !ok || ep.APIKey != upstreamKeyA {
			t.Fatalf("endpoint %+v", ep)
		}

		l, _ := e.c.ListUpstreamsWithResponse(ctx, e.admin())
		e.seen(l.Body)
		if l.JSON200 == nil || len(l.JSON200.Data) != 1 || l.JSON200.Data[0].Id != u.Id {
			t.Fatalf("list: %d %s", l.StatusCode(), l.Body)
		}
		g, _ := e.c.GetUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(g.Body)
		if g.JSON200 == nil || g.JSON200.Name != "org-a" {
			t.Fatalf("get: %d %s", g.StatusCode(), g.Body)
		}

		// PATCH: absent fields stay; null lifts the cap; [] serves every
		// model; a new key is sealed again; the id never changes.
		p, _ := e.c.UpdateUpstreamWithBodyWithResponse(ctx, u.Id, "application/json", strings.NewReader(
			`{"name":"org-a-renamed","weight":3,"max_concurrency":null,"models":[],"api_key":"`+upstreamKeyB+`"}`), e.admin())
		e.seen(p.Body)
		if p.JSON200 == nil || p.JSON200.Id != u.Id || p.JSON200.Name != "org-a-renamed" || p.JSON200.Weight != 3 ||
			p.JSON200.MaxConcurrency != nil || len(p.JSON200.Models) != 0 || p.JSON200.Group != "team-a" ||
			p.JSON200.Priority != 1 || *p.JSON200.ApiKeyLast4 != "bbbb" || !p.JSON200.UpdatedAt.After(u.UpdatedAt) {
			t.Fatalf("patch: %d %s", p.StatusCode(), p.Body)
		}

		// Test sends the stored key; a failing upstream is a 200 with ok false.
		tr, _ := e.c.TestUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(tr.Body)
		if tr.JSON200 == nil || !tr.JSON200.Ok || tr.JSON200.Status == nil || *tr.JSON200.Status != 200 {
			t.Fatalf("test: %d %s", tr.StatusCode(), tr.Body)
		}
		if last := fake.Last(); last == nil || last.Path != "/v1/models" || last.Header.Get("x-api-key") != upstreamKeyB {
			t.Fatalf("the fake saw %+v", last)
		}
		fake.Script(fakeanthropic.Step{Path: "/v1/models", Status: 401})
		tr, _ = e.c.TestUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(tr.Body)
		if tr.JSON200 == nil || tr.JSON200.Ok || *tr.JSON200.Status != 401 || tr.JSON200.Message == "" {
			t.Fatalf("failing test: %d %s", tr.StatusCode(), tr.Body)
		}

		// Disable and enable, on every replica through the store.
		d, _ := e.c.DisableUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(d.Body)
		if d.JSON200 == nil || d.JSON200.Enabled || d.JSON200.DisabledReason == nil || *d.JSON200.DisabledReason != "disabled by admin" ||
			d.JSON200.State != client.UpstreamStateDisabled || d.JSON200.StateReason == nil {
			t.Fatalf("disable: %d %s", d.StatusCode(), d.Body)
		}
		if stored, _ := e.store.GetUpstream(ctx, u.Id); stored.Enabled {
			t.Fatal("the disable was not stored")
		}
		en, _ := e.c.EnableUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(en.Body)
		if en.JSON200 == nil || !en.JSON200.Enabled || en.JSON200.DisabledReason != nil || en.JSON200.State != client.UpstreamStateHealthy {
			t.Fatalf("enable: %d %s", en.StatusCode(), en.Body)
		}
		// The relay's own disable after a 401 shows with its reason, and an
		// enable clears it.
		if err := e.reg.PersistDisable(ctx, u.Id, "401 authentication_error: invalid x-api-key"); err != nil {
			t.Fatal(err)
		}
		g, _ = e.c.GetUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(g.Body)
		if g.JSON200 == nil || g.JSON200.Enabled || g.JSON200.StateReason == nil || !strings.Contains(*g.JSON200.StateReason, "invalid x-api-key") {
			t.Fatalf("after the relay's disable: %s", g.Body)
		}
		if en, _ := e.c.EnableUpstreamWithResponse(ctx, u.Id, e.admin()); en.JSON200 == nil || !en.JSON200.Enabled {
			t.Fatalf("enable after the relay's disable: %s", en.Body)
		}

		// The live state: a model cooling after a 429, a rate-limit reading,
		// a probe, a request in flight.
		now := time.Now()
		e.pool.Observe(pool.Observation{Upstream: u.Id, Model: "claude-opus-4-5", Status: 429, RetryAt: now.Add(time.Minute),
			Limits: pool.Limits{Requests: pool.Budget{Limit: 50, Remaining: 0, Reset: now.Add(time.Minute)}}})
		e.pool.Observe(pool.Observation{Upstream: u.Id, Model: "claude-sonnet-4-5", Status: 200,
			Limits: pool.Limits{OutputTokens: pool.Budget{Limit: 8000, Remaining: 7000}}})
		release, ok := e.pool.Acquire(u.Id)
		if !ok {
			t.Fatal("acquire")
		}
		g, _ = e.c.GetUpstreamWithResponse(ctx, u.Id, e.admin())
		e.seen(g.Body)
		release()
		v := g.JSON200
		if v == nil || v.InFlight != 1 || v.State != client.UpstreamStateHealthy || len(v.ModelsState) != 2 {
			t.Fatalf("live state: %d %s", g.StatusCode(), g.Body)
		}
		opus := v.ModelsState[0]
		if opus.Model != "claude-opus-4-5" || opus.State != client.UpstreamModelStateStateCooling || opus.StateReason == nil ||
			*opus.StateReason != "rate_limited 429" || opus.StateUntil == nil || opus.Headroom == nil ||
			opus.Headroom.Requests == nil || opus.Headroom.Requests.Remaining != 0 || opus.Headroom.OutputTokens != nil {
			t.Fatalf("opus: %s", g.Body)
		}
		if v.Headroom == nil || v.Headroom.Model == nil || v.Headroom.ReadAt.IsZero() {
			t.Fatalf("headroom: %s", g.Body)
		}

		// Delete: 204, then 404 everywhere.
		if del, _ := e.c.DeleteUpstreamWithResponse(ctx, u.Id, e.admin()); del.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete: %d %s", del.StatusCode(), del.Body)
		}
		if _, ok := e.runtime.endpoint(u.Id); ok {
			t.Fatal("the transport still reaches the deleted upstream")
		}
		hdr := map[string]string{"Authorization": "Bearer " + e.token}
		for _, rq := range []struct{ method, path, body string }{
			{http.MethodGet, "/admin/upstreams/" + u.Id, ""},
			{http.MethodDelete, "/admin/upstreams/" + u.Id, ""},
			{http.MethodPatch, "/admin/upstreams/" + u.Id, `{"weight":2}`},
			{http.MethodPost, "/admin/upstreams/" + u.Id + "/disable", ""},
			{http.MethodPost, "/admin/upstreams/" + u.Id + "/enable", ""},
			{http.MethodPost, "/admin/upstreams/" + u.Id + "/test", ""},
			{http.MethodGet, "/admin/upstreams/nope", ""},
		} {
			resp, body := e.raw(rq.method, rq.path, rq.body, hdr)
			e.seen(body)
			if resp.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not_found_error") {
				t.Errorf("%s %s: %d %s", rq.method, rq.path, resp.StatusCode, body)
			}
		}
		e.noSecret(t, upstreamKeyA, upstreamKeyB)
	})
}

func TestUpstreamBadInput(t *testing.T) {
	t.Parallel()
	forEachStoreWithUpstreams(t, func(t *testing.T, e *upstreamEnv) {
		first := e.createUpstream(t, `{"name":"taken","url":"https://api.anthropic.com","api_key":"`+upstreamKeyA+`"}`)
		hdr := map[string]string{"Authorization": "Bearer " + e.token}
		key := `"api_key":"` + upstreamKeyB + `"`
		for name, body := range map[string]string{
			"ftp url":           `{"name":"x","url":"ftp://api.anthropic.com",` + key + `}`,
			"not a url":         `{"name":"x","url":"api.anthropic.com",` + key + `}`,
			"url with a key":    `{"name":"x","url":"https://u:` + upstreamKeyB + `@api.anthropic.com",` + key + `}`,
			"no api_key":        `{"name":"x","url":"https://api.anthropic.com"}`,
			"api_key with CRLF": `{"name":"x","url":"https://api.anthropic.com","api_key":"sk-ant\r\nx-evil: 1"}`,
			"weight 0":          `{"name":"x","url":"https://api.anthropic.com",` + key + `,"weight":0}`,
			"negative priority": `{"name":"x","url":"https://api.anthropic.com",` + key + `,"priority":-1}`,
			"bad glob":          `{"name":"x","url":"https://api.anthropic.com",` + key + `,"models":["claude-["]}`,
			"group of 65":       `{"name":"x","url":"https://api.anthropic.com",` + key + `,"group":"` + strings.Repeat("g", 65) + `"}`,
			"group of 66 bytes": `{"name":"x","url":"https://api.anthropic.com",` + key + `,"group":"` + strings.Repeat("é", 33) + `"}`,
			"unknown field":     `{"name":"x","url":"https://api.anthropic.com",` + key + `,"secret":1}`,
			"not JSON":          `{"name":`,
		} {
			resp, raw := e.raw(http.MethodPost, "/admin/upstreams", body, hdr)
			e.seen(raw)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "invalid_request_error") {
				t.Errorf("create, %s: %d %s", name, resp.StatusCode, raw)
			}
		}
		for name, body := range map[string]string{
			"weight 0":   `{"weight":0}`,
			"bad url":    `{"url":"mailto:x@example.com"}`,
			"bad glob":   `{"models":["[x"]}`,
			"long group": `{"group":"` + strings.Repeat("é", 33) + `"}`,
			"cap":        `{"max_concurrency":"many"}`,
		} {
			resp, raw := e.raw(http.MethodPatch, "/admin/upstreams/"+first.Id, body, hdr)
			e.seen(raw)
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("patch, %s: %d %s", name, resp.StatusCode, raw)
			}
		}
		// A name is taken once: 409, on create and on a rename.
		resp, raw := e.raw(http.MethodPost, "/admin/upstreams", `{"name":"taken","url":"https://x.example.com",`+key+`}`, hdr)
		e.seen(raw)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(string(raw), "taken") {
			t.Errorf("duplicate name: %d %s", resp.StatusCode, raw)
		}
		other := e.createUpstream(t, `{"name":"other","url":"https://x.example.com",`+key+`}`)
		resp, raw = e.raw(http.MethodPatch, "/admin/upstreams/"+other.Id, `{"name":"taken"}`, hdr)
		e.seen(raw)
		if resp.StatusCode != http.StatusConflict {
			t.Errorf("rename onto a taken name: %d %s", resp.StatusCode, raw)
		}
		// Without a token: 401.
		if resp, raw := e.raw(http.MethodGet, "/admin/upstreams", "", nil); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("without a token: %d %s", resp.StatusCode, raw)
		}
		e.noSecret(t, upstreamKeyA, upstreamKeyB)
	})
}

// A key sealed under another secret (another replica's, or before a lost
// UPSTREAM_KEY_SECRET) shows its upstream disabled with the reason, and
// its test is a 503 that says why.
func TestUpstreamKeyThatDoesNotOpen(t *testing.T) {
	t.Parallel()
	forEachStoreWithUpstreams(t, func(t *testing.T, e *upstreamEnv) {
		ctx := context.Background()
		other, _ := secretbox.DeriveKey("another-relay-upstream-key-secret")
		sealed, err := (boxSealer{secretbox.Box{Current: other}}).Seal(upstreamKeyA, "primary")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.store.SeedUpstreams(ctx, []ports.UpstreamRecord{{
			Upstream: pool.Upstream{ID: "primary", Name: "primary", Weight: 1, Enabled: true},
			URL:      "https://api.anthropic.com", SealedKey: sealed, KeyLast4: "aaaa",
		}}); err != nil {
			t.Fatal(err)
		}
		if err := e.reg.Load(ctx); err != nil {
			t.Fatalf("load: %v", err)
		}
		g, _ := e.c.GetUpstreamWithResponse(ctx, "primary", e.admin())
		e.seen(g.Body)
		if g.JSON200 == nil || !g.JSON200.Enabled || g.JSON200.State != client.UpstreamStateDisabled ||
			g.JSON200.StateReason == nil || !strings.Contains(*g.JSON200.StateReason, "UPSTREAM_KEY_SECRET") {
			t.Fatalf("get: %d %s", g.StatusCode(), g.Body)
		}
		tr, _ := e.c.TestUpstreamWithResponse(ctx, "primary", e.admin())
		e.seen(tr.Body)
		if tr.StatusCode() != http.StatusServiceUnavailable || !strings.Contains(string(tr.Body), "UPSTREAM_KEY_SECRET") {
			t.Fatalf("test: %d %s", tr.StatusCode(), tr.Body)
		}
		// Setting the key again fixes it.
		p, _ := e.c.UpdateUpstreamWithResponse(ctx, "primary", client.UpdateUpstreamRequest{ApiKey: ptr(upstreamKeyB)}, e.admin())
		e.seen(p.Body)
		if p.JSON200 == nil || p.JSON200.State != client.UpstreamStateHealthy {
			t.Fatalf("after a new key: %d %s", p.StatusCode(), p.Body)
		}
		e.noSecret(t, upstreamKeyA, upstreamKeyB)
	})
}

// Keys name an upstream group; usage groups by upstream, and each
// upstream's view shows its cache hit rate over the last 24 hours.
func TestUpstreamGroupsAndUsage(t *testing.T) {
	t.Parallel()
	forEachStoreWithUpstreams(t, func(t *testing.T, e *upstreamEnv) {
		ctx := context.Background()
		k := e.createKey(client.CreateKeyRequest{Name: "grouped", UpstreamGroup: ptr("team-a")})
		if k.UpstreamGroup != "team-a" {
			t.Fatalf("created key: %+v", k)
		}
		g, _ := e.c.GetKeyWithResponse(ctx, k.Id, e.admin())
		if g.JSON200 == nil || g.JSON200.UpstreamGroup != "team-a" {
			t.Fatalf("get key: %s", g.Body)
		}
		p, _ := e.c.UpdateKeyWithResponse(ctx, k.Id, client.UpdateKeyRequest{UpstreamGroup: ptr("")}, e.admin())
		if p.JSON200 == nil || p.JSON200.UpstreamGroup != "" {
			t.Fatalf("patch key to the default group: %d %s", p.StatusCode(), p.Body)
		}
		hdr := map[string]string{"Authorization": "Bearer " + e.token}
		for _, body := range []string{`{"upstream_group":"` + strings.Repeat("g", 65) + `"}`, `{"upstream_group":"` + strings.Repeat("é", 33) + `"}`} {
			if resp, raw := e.raw(http.MethodPatch, "/admin/api-keys/"+k.Id.String(), body, hdr); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("patch key group %s: %d %s", body, resp.StatusCode, raw)
			}
			if resp, raw := e.raw(http.MethodPost, "/admin/api-keys", `{"name":"x",`+body[1:], hdr); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("create key with group %s: %d %s", body, resp.StatusCode, raw)
			}
		}

		a := e.createUpstream(t, `{"name":"a","url":"https://a.example.com","api_key":"`+upstreamKeyA+`"}`)
		b := e.createUpstream(t, `{"name":"b","url":"https://b.example.com","api_key":"`+upstreamKeyB+`"}`)
		now := time.Now().UTC()
		rec := func(upstream string, in, created, read int64, at time.Time) domain.UsageRecord {
			return domain.UsageRecord{RequestID: "req_" + uuid.NewString(), KeyID: k.Id, Time: at, Model: "claude-x", Status: 200,
				Upstream: upstream, Usage: domain.Usage{InputTokens: in, CacheCreationInputTokens: created, CacheReadInputTokens: read}}
		}
		if err := e.store.InsertUsage(ctx, []domain.UsageRecord{
			rec(a.Id, 10, 30, 60, now.Add(-time.Hour)),
			rec(a.Id, 100, 0, 0, now.Add(-48*time.Hour)), // outside the 24 hours
			rec(b.Id, 5, 0, 0, now.Add(-time.Minute)),
			rec("", 1, 0, 0, now.Add(-time.Minute)),
		}); err != nil {
			t.Fatal(err)
		}
		l, _ := e.c.ListUpstreamsWithResponse(ctx, e.admin())
		e.seen(l.Body)
		if l.JSON200 == nil || len(l.JSON200.Data) != 2 {
			t.Fatalf("list: %s", l.Body)
		}
		for _, u := range l.JSON200.Data {
			want := map[string]float64{a.Id: 0.6, b.Id: 0}[u.Id]
			if u.CacheHitRate == nil || *u.CacheHitRate != want {
				t.Errorf("%s: cache_hit_rate %v, want %v", u.Name, u.CacheHitRate, want)
			}
		}

		// Grouped by upstream, from the records and (whole days) from the
		// rollup alike.
		day := now.Truncate(24 * time.Hour)
		for _, rg := range []struct{ from, to time.Time }{
			{now.Add(-72 * time.Hour), now.Add(time.Minute)},
			{day.Add(-3 * 24 * time.Hour), day.Add(24 * time.Hour)},
		} {
			grp := client.AdminUsageParamsGroupByUpstream
			u, _ := e.c.AdminUsageWithResponse(ctx, &client.AdminUsageParams{GroupBy: &grp, From: &rg.from, To: &rg.to}, e.admin())
			if u.JSON200 == nil || u.JSON200.GroupBy == nil || *u.JSON200.GroupBy != client.AdminUsageGroupByUpstream {
				t.Fatalf("usage by upstream: %d %s", u.StatusCode(), u.Body)
			}
			got := map[string]int64{}
			for _, g := range u.JSON200.Groups {
				got[g.Group] = g.InputTokens
			}
			if len(got) != 3 || got[a.Id] != 110 || got[b.Id] != 5 || got[""] != 1 || u.JSON200.Totals.InputTokens != 116 {
				t.Errorf("usage by upstream over %v: %s", rg, u.Body)
			}
		}
		e.noSecret(t, upstreamKeyA, upstreamKeyB)
	})
}

func TestUpstreamsWithoutRegistry(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, e *testEnv) {
		l, _ := e.c.ListUpstreamsWithResponse(context.Background(), e.admin())
		if l.StatusCode() != http.StatusServiceUnavailable || !strings.Contains(string(l.Body), "does not manage its upstreams") {
			t.Fatalf("list without a registry: %d %s", l.StatusCode(), l.Body)
		}
	})
}
