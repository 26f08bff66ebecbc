package httpadapter_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	httpadapter "github.com/relaystation/relay/adapters/http"
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
