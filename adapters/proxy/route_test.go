package proxy_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// routeRecorder notes the route of every call, then sends it on.
type routeRecorder struct {
	mu     sync.Mutex
	routes []upstream.Route
	next   http.RoundTripper
}

func (r *routeRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	if rt := upstream.RouteFrom(req.Context()); rt != nil {
		r.routes = append(r.routes, *rt)
	} else {
		r.routes = append(r.routes, upstream.Route{Model: "(none)"})
	}
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

func (r *routeRecorder) last() upstream.Route {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.routes[len(r.routes)-1]
}

// TestProxyRoutesToTheUpstreamPool: every call tells the transport its
// model, its key's group and its session (the Claude Code session, else
// metadata.user_id, else the key); the record names the upstream by id.
func TestProxyRoutesToTheUpstreamPool(t *testing.T) {
	rr := &routeRecorder{}
	env := newProxyEnv(t, proxyEnvOptions{transport: rr})
	// The key's group has one upstream.
	p, err := pool.New(pool.Config{}, []pool.Upstream{{ID: "up-1", Name: "primary", Weight: 1, Group: "team-a", Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := upstream.New(upstream.Options{Pool: p, Upstreams: []upstream.Config{
		{ID: "up-1", Name: "primary", URL: env.fakeURL, APIKey: proxyUpstreamKey}}})
	if err != nil {
		t.Fatal(err)
	}
	rr.next = inner
	env.mu.Lock()
	k := env.keys[env.good]
	k.UpstreamGroup = "team-a"
	env.keys[env.good], env.byHash[k.KeyHash] = k, k
	env.mu.Unlock()
	keyID := k.ID.String()

	for _, c := range []struct {
		name, path, body, claude string
		want                     string
	}{
		{"claude code session", "/v1/messages", proxyReqBody, "sess-1", pool.SessionKey(keyID, "sess-1", "")},
		{"metadata.user_id", "/v1/messages",
			`{"model":"claude-sonnet-4-5","max_tokens":5,"metadata":{"user_id":"user-7"},"messages":[]}`, "",
			pool.SessionKey(keyID, "", "user-7")},
		{"the header wins", "/v1/messages",
			`{"model":"claude-sonnet-4-5","max_tokens":5,"metadata":{"user_id":"user-7"},"messages":[]}`, "sess-2",
			pool.SessionKey(keyID, "sess-2", "")},
		{"the key", "/v1/messages", proxyReqBody, "", pool.SessionKey(keyID, "", "")},
		{"count_tokens pins nothing", "/v1/messages/count_tokens", proxyReqBody, "sess-1", ""},
	} {
		req := env.newRequest(context.Background(), c.path, c.body)
		if c.claude != "" {
			req.Header.Set("X-Claude-Code-Session-Id", c.claude)
		}
		if resp, b := proxyDo(t, req); resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", c.name, resp.StatusCode, b)
		}
		got := rr.last()
		if got.Session != c.want || got.Group != "team-a" || got.Require != "" {
			t.Fatalf("%s: route %+v, want session %q", c.name, got, c.want)
		}
		if c.path == "/v1/messages" && got.Model != "claude-sonnet-4-5" {
			t.Fatalf("%s: model %q", c.name, got.Model)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(env.rec.all()) < 5 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	for _, r := range env.rec.all() {
		if r.Upstream != "up-1" {
			t.Fatalf("record upstream %q, want the id", r.Upstream)
		}
	}
	if logs := env.waitLog(5); !strings.Contains(logs, `"upstream":"up-1","upstream_name":"primary","pick":"balanced"`) {
		t.Fatalf("log line: %s", logs)
	}
}

// TestProxyFollowsUpstreamsAddedLater: a relay started without upstreams
// serves once the transport is given one, without a restart.
func TestProxyFollowsUpstreamsAddedLater(t *testing.T) {
	tr, err := upstream.New(upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := newProxyEnv(t, proxyEnvOptions{transport: tr})
	if resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody)); resp.StatusCode != 503 ||
		!strings.Contains(string(b), "not configured") {
		t.Fatalf("before: %d %s", resp.StatusCode, b)
	}
	// The pool New built has no upstreams; the registry would add one.
	if err := tr.Pool().SetUpstreams([]pool.Upstream{{ID: "u", Name: "u", Weight: 1, Enabled: true}}); err != nil {
		t.Fatal(err)
	}
	if err := tr.Apply([]ports.UpstreamEndpoint{{ID: "u", Name: "u", URL: env.fakeURL, APIKey: proxyUpstreamKey}}); err != nil {
		t.Fatal(err)
	}
	if resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody)); resp.StatusCode != 200 {
		t.Fatalf("after: %d %s", resp.StatusCode, b)
	}
}
