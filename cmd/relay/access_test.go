package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

func (r *testRelay) browserCall(t *testing.T, key string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":32,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", key)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	req.Header.Set("anthropic-dangerous-direct-browser-access", "true")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func TestDomainAllowListAndCORS(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake, "CORS_ALLOWED_ORIGINS=https://console.example.net")
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "browser", "allowed_domains": []string{"app.example.com", "*.example.org"}})
	_, open := r.createKey(t, token, map[string]any{"name": "server"})

	cases := []struct {
		name    string
		headers map[string]string
		allowed bool
		acao    string
	}{
		{"exact origin", map[string]string{"Origin": "https://app.example.com"}, true, "https://app.example.com"},
		{"case and port ignored", map[string]string{"Origin": "https://APP.Example.com:8443"}, true, "https://APP.Example.com:8443"},
		{"wildcard subdomain", map[string]string{"Origin": "https://a.example.org"}, true, "https://a.example.org"},
		{"wildcard deep subdomain", map[string]string{"Origin": "https://x.y.example.org"}, true, "https://x.y.example.org"},
		{"wildcard is not the apex", map[string]string{"Origin": "https://example.org"}, false, ""},
		{"no label-boundary confusion", map[string]string{"Origin": "https://badexample.org"}, false, ""},
		{"suffix trick", map[string]string{"Origin": "https://app.example.com.evil.net"}, false, ""},
		{"other site", map[string]string{"Origin": "https://evil.example.net"}, false, ""},
		{"referer fallback", map[string]string{"Referer": "https://a.example.org/page?x=1"}, true, ""},
		{"referer refused", map[string]string{"Referer": "https://evil.net/app.example.com"}, false, ""},
		{"neither header", nil, false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := fake.Count()
			resp, body := r.browserCall(t, key, tc.headers)
			if tc.allowed {
				if resp.StatusCode != 200 {
					t.Fatalf("status %d: %s", resp.StatusCode, body)
				}
				if got := resp.Header.Get("Access-Control-Allow-Origin"); got != tc.acao {
					t.Fatalf("Access-Control-Allow-Origin = %q, want %q", got, tc.acao)
				}
				return
			}
			var e struct {
				Type  string                `json:"type"`
				Error struct{ Type string } `json:"error"`
			}
			_ = json.Unmarshal([]byte(body), &e)
			if resp.StatusCode != 403 || e.Type != "error" || e.Error.Type != "permission_error" {
				t.Fatalf("want 403 permission_error, got %d %s", resp.StatusCode, body)
			}
			if fake.Count() != before {
				t.Fatal("a refused request reached the upstream")
			}
		})
	}

	t.Run("preflight answered without key or upstream", func(t *testing.T) {
		before := fake.Count()
		req, _ := http.NewRequest(http.MethodOptions, r.URL+"/v1/messages", nil)
		req.Header.Set("Origin", "https://console.example.net")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "x-api-key, anthropic-version, content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent || h.Get("Access-Control-Allow-Origin") != "https://console.example.net" ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Max-Age") == "" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, h)
		}
		for _, want := range []string{"x-api-key", "authorization", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", "content-type"} {
			if !strings.Contains(h.Get("Access-Control-Allow-Headers"), want) {
				t.Errorf("allow-headers lacks %s", want)
			}
		}
		if fake.Count() != before {
			t.Fatal("the preflight went upstream")
		}
		// With cors.allowed_origins set, other origins get no echo.
		req.Header.Set("Origin", "https://elsewhere.example")
		resp, _ = http.DefaultClient.Do(req)
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatal("preflight echoed an origin outside cors.allowed_origins")
		}
	})

	t.Run("key without allowed_domains gets CORS only for configured origins", func(t *testing.T) {
		resp, body := r.browserCall(t, open, map[string]string{"Origin": "https://random.example"})
		if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("%d acao=%q %s", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), body)
		}
		resp, _ = r.browserCall(t, open, map[string]string{"Origin": "https://console.example.net"})
		if resp.Header.Get("Access-Control-Allow-Origin") != "https://console.example.net" {
			t.Fatalf("configured origin: acao=%q", resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})

	t.Run("malformed patterns are refused at create and update", func(t *testing.T) {
		for _, bad := range []string{"*.", "http://x.example.com", "x.example.com/path", "x.example.com:443", "", "*"} {
			resp, body := r.do(t, http.MethodPost, "/admin/api-keys", "Bearer "+token, map[string]any{"name": "bad", "allowed_domains": []string{bad}})
			if resp.StatusCode != 400 || !strings.Contains(string(body), "invalid_request_error") {
				t.Errorf("create with %q: %d %s", bad, resp.StatusCode, body)
			}
		}
		id, _ := r.createKey(t, token, map[string]any{"name": "patch-me"})
		resp, body := r.do(t, http.MethodPatch, "/admin/api-keys/"+id, "Bearer "+token, map[string]any{"allowed_domains": []string{"https://x.com"}})
		if resp.StatusCode != 400 {
			t.Fatalf("patch with a URL pattern: %d %s", resp.StatusCode, body)
		}
	})
}

func TestAdminIPAllowList(t *testing.T) {
	t.Parallel()
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}), "ADMIN_ALLOWED_IPS=10.0.0.0/8,192.0.2.1")
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/admin/login", nil)
	req.SetBasicAuth("admin", testAdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(b), "permission_error") {
		t.Fatalf("login from outside the allow-list: %d %s", resp.StatusCode, b)
	}
	if resp, _ := r.do(t, http.MethodGet, "/admin/api-keys", "Bearer whatever", nil); resp.StatusCode != 403 {
		t.Fatalf("admin route from outside the allow-list: %d", resp.StatusCode)
	}
	// The proxy and health routes are not restricted by it.
	if resp, _ := r.do(t, http.MethodGet, "/health", "", nil); resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
	after := scrape(t, r)
	if after[`relay_auth_failures_total{kind="admin_ip"}`] < 2 {
		t.Fatalf("admin_ip refusals not counted: %v", after[`relay_auth_failures_total{kind="admin_ip"}`])
	}
}

// TestBadKeyIsRefusedBeforeTheBodyIsRead: a client that announces a 32 MB
// body with a key that merely looks right gets its 401 at once; the relay
// never waits for, or buffers, the body.
func TestBadKeyIsRefusedBeforeTheBodyIsRead(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: sk-proxy-%s\r\ncontent-type: application/json\r\nContent-Length: 33554432\r\n\r\n{\"model\":", strings.Repeat("A", 43))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body was still owed: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	if fake.Count() != 0 {
		t.Fatal("the request reached the upstream")
	}
}

// TestTokenlessPathsReserveNothing: endpoints other than Messages are relayed
// under the request budget but neither reserve quota nor get estimated.
func TestTokenlessPathsReserveNothing(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "tiny", "token_limit": 10})
	// A Messages call cannot reserve max_tokens 256 within 10 tokens...
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 429 {
		t.Fatalf("messages over quota: %d %s", resp.StatusCode, b)
	}
	// ...but listing batches costs no tokens: it goes upstream, and comes
	// back filtered to the key's own batches (none).
	resp, b := r.do(t, http.MethodGet, "/v1/messages/batches", "Bearer "+key, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"data":[]`) || fake.Count() != 1 {
		t.Fatalf("batches: %d %s (upstream saw %d)", resp.StatusCode, b, fake.Count())
	}
	r.waitUsage(t, key, 1)
	resp, b = r.do(t, http.MethodGet, "/admin/api-keys/"+keyID, "Bearer "+token, nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"tokens_used":0`) {
		t.Fatalf("tokens charged for a token-free call: %s", b)
	}
}

// TestForwardedForFailsClosed: behind a trusted proxy, X-Forwarded-For
// entries with ports are read as their address, and any entry that does
// not parse is a 400 — never the proxy's own (allowed) address.
func TestForwardedForFailsClosed(t *testing.T) {
	t.Parallel()
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}), "TRUSTED_PROXIES=127.0.0.1/32", "ADMIN_ALLOWED_IPS=127.0.0.1/32,203.0.113.7/32")
	login := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/admin/login", nil)
		req.SetBasicAuth("admin", testAdminPassword)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 && !strings.Contains(string(b), `"type":"error"`) {
			t.Fatalf("%q: not an Anthropic error: %s", xff, b)
		}
		return resp.StatusCode
	}
	for xff, want := range map[string]int{
		"":                        200, // the peer itself, allowed
		"203.0.113.7":             200,
		"203.0.113.7:51234":       200,
		"203.0.113.9:51234":       403,
		"[2001:db8::1]:443":       403,
		"unknown":                 400,
		"203.0.113.7, garbage":    400,
		"garbage, 203.0.113.7":    400,
		"198.51.100.1, 127.0.0.1": 403, // walked past the trusted hop
	} {
		if got := login(xff); got != want {
			t.Errorf("admin login with X-Forwarded-For %q: %d, want %d", xff, got, want)
		}
	}
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "ips", "allowed_ips": []string{"203.0.113.0/24"}})
	call := func(xff string) int {
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("x-api-key", key)
		req.Header.Set("content-type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for xff, want := range map[string]int{"203.0.113.9:51234": 200, "198.51.100.1": 403, "unknown": 400, "203.0.113.9, x": 400} {
		if got := call(xff); got != want {
			t.Errorf("proxied call with X-Forwarded-For %q: %d, want %d", xff, got, want)
		}
	}
}

// TestBodylessRoutesRefuseBodies: a GET or DELETE with a body is refused,
// on management routes and proxied endpoints alike, and never forwarded.
func TestBodylessRoutesRefuseBodies(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "b"})
	for _, c := range []struct{ method, path, auth string }{
		{http.MethodGet, "/health", ""},
		{http.MethodGet, "/v1/models", "Bearer " + key},
		{http.MethodDelete, "/v1/files/file_1", "Bearer " + key},
		{http.MethodGet, "/admin/api-keys", "Bearer " + token},
	} {
		resp, b := r.do(t, c.method, c.path, c.auth, map[string]any{"x": 1})
		if resp.StatusCode != 400 || !strings.Contains(string(b), "takes no request body") {
			t.Errorf("%s %s with a body: %d %s", c.method, c.path, resp.StatusCode, b)
		}
	}
	if fake.Count() != 0 {
		t.Fatalf("upstream saw %d requests", fake.Count())
	}
}

// TestStalledManagementBodyIsCutOff: a client that announces a body on a
// management route and sends none has its connection closed once the body
// deadline passes, instead of holding it (and a descriptor) for ever.
func TestStalledManagementBodyIsCutOff(t *testing.T) {
	t.Parallel()
	r := startRelayWith(t, fakeanthropic.New(fakeanthropic.Options{}), func(c *config.Config) {
		c.Server.BodyReadTimeout = 300 * time.Millisecond
	})
	for _, path := range []string{"/admin/login", "/admin/api-keys"} {
		c, err := net.Dial("tcp", strings.TrimPrefix(r.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", path)
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		start := time.Now()
		_, err = io.Copy(io.Discard, c) // until the relay closes the connection
		c.Close()
		if err != nil || time.Since(start) > 4*time.Second {
			t.Fatalf("%s: the stalled connection was held %v (%v)", path, time.Since(start), err)
		}
	}
	if resp, _ := r.do(t, http.MethodGet, "/health", "", nil); resp.StatusCode != 200 {
		t.Fatalf("health: %d", resp.StatusCode)
	}
}
