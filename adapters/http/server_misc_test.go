package httpadapter_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/httpx"
)

type countingObserver struct {
	mu       sync.Mutex
	requests map[string]int
	auth     map[string]int
	logins   int
}

func (o *countingObserver) AdminRequest(op string, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.requests[op+":"+http.StatusText(status)]++
}

func (o *countingObserver) AuthFailure(kind string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.auth[kind]++
}

func (o *countingObserver) LoginFailure() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.logins++
}

var _ httpadapter.Observer = (*countingObserver)(nil)

func TestObserverPanicAndNotReady(t *testing.T) {
	t.Parallel()
	obs := &countingObserver{requests: map[string]int{}, auth: map[string]int{}}
	e := newTestEnv(t, mustOpenStore(t, ""), func(o *httpadapter.Options) {
		o.Observer = obs
		o.Ready = func(context.Context) error { return errors.New("database is unreachable") }
		o.Proxy = http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	})
	ctx := context.Background()

	r, _ := e.c.ReadyWithResponse(ctx)
	if r.StatusCode() != 503 || r.JSON503 == nil || !strings.Contains(r.JSON503.Error.Message, "database is unreachable") {
		t.Errorf("ready: %d %s", r.StatusCode(), r.Body)
	}
	resp, body := e.raw("POST", "/v1/messages", `{}`, nil)
	if resp.StatusCode != 500 || !strings.Contains(string(body), `"api_error"`) || strings.Contains(string(body), "boom") {
		t.Errorf("panic: %d %s", resp.StatusCode, body)
	}
	_, _ = e.c.AdminLoginWithResponse(ctx, basic(testAdminUser, "wrong"))
	_, _ = e.c.ListKeysWithResponse(ctx, nil)
	_, _ = e.c.KeyQuotaWithResponse(ctx, xAPIKey("sk-proxy-0000000000000000000000000000"))
	e.login()

	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.logins != 1 || obs.auth["login"] != 1 || obs.auth["admin_token_missing"] != 1 || obs.auth["key_unknown"] != 1 {
		t.Errorf("auth events: logins %d, %v", obs.logins, obs.auth)
	}
	if obs.requests["adminLogin:OK"] != 1 || obs.requests["adminLogin:Unauthorized"] != 1 || obs.requests["ready:Service Unavailable"] != 1 {
		t.Errorf("request events: %v", obs.requests)
	}
}

// TestDirectProxyPath: proxied paths skip echo but keep what its chain
// gave them: a request id, the no-body rule, a panic answered as a 500
// before the answer started and cut after it started; and paths echo
// routes by their raw form still reach the proxy.
func TestDirectProxyPath(t *testing.T) {
	t.Parallel()
	var seen []string
	var mu sync.Mutex
	e := newTestEnv(t, mustOpenStore(t, ""), func(o *httpadapter.Options) {
		o.Proxy = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			seen = append(seen, r.URL.RawPath+"|"+r.URL.Path)
			mu.Unlock()
			if httpx.RequestIDFrom(r.Context()) == "" {
				t.Error("no request id in the proxy's context")
			}
			if r.URL.Path == "/v1/late-panic" {
				w.Header().Set("Content-Type", "text/event-stream")
				w.WriteHeader(200)
				_, _ = io.WriteString(w, "event: ping\ndata: {}\n\n")
				http.NewResponseController(w).Flush()
				panic("late boom")
			}
			w.WriteHeader(204)
		})
	})
	if h, err := e.c.HealthWithResponse(context.Background()); err != nil || h.StatusCode() != 200 {
		t.Fatalf("health beside the direct path: %v", err)
	}
	resp, body := e.raw("GET", "/v1/models", `{"x":1}`, nil)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "takes no request body") || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("GET /v1/models with a body: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	resp, _ = e.raw("GET", "/v1/models", "", nil)
	if resp.StatusCode != 204 || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("GET /v1/models: %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.raw("GET", "/v1%2fmodels", "", nil)
	if resp.StatusCode != 204 {
		t.Errorf("GET /v1%%2fmodels: %d", resp.StatusCode)
	}
	// A method echo's catch-all does not take is echo's 405, under /v1/
	// as anywhere else: it never reaches the proxy.
	for _, m := range []string{"FOO", "QUERY"} {
		resp, body := e.raw(m, "/v1/messages", "", nil)
		if resp.StatusCode != 405 || !strings.Contains(string(body), `"type":"error"`) {
			t.Errorf("%s /v1/messages: %d %s", m, resp.StatusCode, body)
		}
	}
	req, _ := http.NewRequest("GET", e.srv.URL+"/v1/late-panic", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil || strings.Contains(string(b), "api_error") {
			t.Errorf("a panic after the answer started: %q, %v", b, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 3 || seen[0] != "|/v1/models" || seen[1] != "/v1%2fmodels|/v1/models" {
		t.Errorf("proxy saw %q", seen)
	}
}

// TestPanicAfterAnswerStartedCutsIt: on an echo-routed path too, a panic
// after the answer started cuts the connection; the client never sees the
// partial answer end as if it were whole, nor an error appended to it.
func TestPanicAfterAnswerStartedCutsIt(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""), func(o *httpadapter.Options) {
		o.MetricsHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, "relay_up 1\n")
			http.NewResponseController(w).Flush()
			panic("late boom")
		})
	})
	if h, err := e.c.HealthWithResponse(context.Background()); err != nil || h.StatusCode() != 200 {
		t.Fatalf("health: %v", err)
	}
	resp, err := http.Get(e.srv.URL + "/metrics")
	if err != nil {
		return // cut before anything arrived: fine
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil || strings.Contains(string(b), "api_error") {
		t.Errorf("a panic after the answer started: %q, %v", b, err)
	}
}
