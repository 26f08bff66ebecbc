package httpadapter_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/internal/testenv"
	"github.com/relaystation/relay/ports"
)

const (
	testAdminUser = "admin"
	testAdminPass = "correct horse battery staple"
)

var testJWTSecret = []byte("0123456789abcdef0123456789abcdef")

// fastHash keeps argon2id cheap in tests; production uses the defaults.
var fastHash = func() string {
	h, err := argon2id.CreateHash(testAdminPass, &argon2id.Params{Memory: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		panic(err)
	}
	return h
}()

// testEnv is a running relay front over a real store, driven through the
// generated client; every response is checked against api/openapi.yaml.
type testEnv struct {
	t        *testing.T
	srv      *httptest.Server
	store    ports.Store
	svc      *admin.Service
	c        *client.ClientWithResponses
	doer     *contractDoer
	proxied  *atomic.Int64
	proxyLen *atomic.Int64
	token    string
	// throttleClock is the login throttle's clock; tests may stop it.
	throttleClock *testClock
	// missingMoney names the money ports the store does not implement yet
	// (see needMoneyStore); prices then has only the embedded seed, and
	// there are no budgets or repricer.
	missingMoney []string
	prices       *billing.Prices
	budgetLedger *memory.BudgetLedger
	// logs has every line the admin service and the server log (JSON).
	logs *syncBuffer
}

type envOption func(*httpadapter.Options)

func newTestEnv(t *testing.T, store ports.Store, opts ...envOption) *testEnv {
	t.Helper()
	clock := ports.SystemClock{}
	hasher := domain.NewKeyHasher([]byte("test-key-hmac-secret"))
	cache := keycache.New(store, 30*time.Second, clock)
	ledger, limiter, conc := memory.NewLedger(), memory.NewRateLimiter(), memory.NewConcurrencyLimiter()
	t.Cleanup(func() { _ = ledger.Close(); _ = conc.Close() })
	throttleClock := &testClock{}
	throttle, err := memory.NewLoginThrottle(10_000, memory.WithClock(throttleClock))
	if err != nil {
		t.Fatal(err)
	}
	m := newMoneyDeps(t, store, clock)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := admin.NewService(admin.Deps{
		Keys: store, Tiers: store, Usage: store, Cache: cache, Ledger: ledger, Limiter: limiter,
		Concurrency: conc, Clock: clock, Hasher: hasher, LoginThrottle: throttle,
		Prices: m.prices, Budgets: m.budgets, Repricer: m.repricer, Log: log,
	}, admin.Config{AdminUsername: testAdminUser, AdminPasswordHash: fastHash, MaxPasswordChecks: 4,
		LoginThrottle: testLoginThrottle})
	if err != nil {
		t.Fatalf("admin service: %v", err)
	}
	if err := svc.SeedTiers(context.Background(), nil); err != nil {
		t.Fatalf("seed tiers: %v", err)
	}
	var proxied, proxyLen atomic.Int64
	o := httpadapter.Options{
		Log:   log,
		Admin: svc,
		Auth:  relay.NewAuthenticator(hasher, cache, clock),
		Proxy: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := io.Copy(io.Discard, r.Body)
			proxied.Add(1)
			proxyLen.Store(n)
			w.Header().Set("content-type", "text/event-stream")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, "event: ping\n\n")
			http.NewResponseController(w).Flush()
		}),
		JWT:           httpadapter.JWTOptions{Secret: testJWTSecret},
		AdminUsername: testAdminUser,
		Ready:         store.Ping,
	}
	for _, f := range opts {
		f(&o)
	}
	s, err := httpadapter.New(o)
	if err != nil {
		t.Fatalf("httpadapter.New: %v", err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	doer := newContractDoer(t)
	c, err := client.NewClientWithResponses(srv.URL, client.WithHTTPClient(doer))
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return &testEnv{t: t, srv: srv, store: store, svc: svc, c: c, doer: doer, proxied: &proxied, proxyLen: &proxyLen,
		throttleClock: throttleClock, missingMoney: m.missing, prices: m.prices, budgetLedger: m.ledger, logs: logs}
}

// moneyDeps are the billing pieces the relay wires from its store: the
// price table versioned in it, budgets seeded from it, costs rewritten in
// it. The embedded seed always prices, so the pricing views work on any
// store.
type moneyDeps struct {
	prices   *billing.Prices
	budgets  *billing.Budgets
	ledger   *memory.BudgetLedger
	repricer ports.UsageRepricer
	missing  []string
}

func newMoneyDeps(t *testing.T, store ports.Store, clock ports.Clock) moneyDeps {
	t.Helper()
	var m moneyDeps
	priceStore, ok := store.(ports.PriceStore)
	if !ok {
		m.missing = append(m.missing, "ports.PriceStore")
	}
	spend, ok := store.(ports.SpendStore)
	if !ok {
		m.missing = append(m.missing, "ports.SpendStore")
	}
	if m.repricer, ok = store.(ports.UsageRepricer); !ok {
		m.missing = append(m.missing, "ports.UsageRepricer")
	}
	seed, err := pricing.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if m.prices, err = billing.NewPrices(context.Background(), priceStore, seed, pricing.Policy{}, clock, nil); err != nil {
		t.Fatalf("prices: %v", err)
	}
	if spend != nil {
		m.ledger = memory.NewBudgetLedger()
		t.Cleanup(func() { _ = m.ledger.Close() })
		if m.budgets, err = billing.NewBudgets(m.ledger, spend, clock, ""); err != nil {
			t.Fatalf("budgets: %v", err)
		}
	}
	return m
}

// needMoneyStore skips a test that needs the store's side of the money
// work (budgets, allowed models and costs persisted; price versions; cost
// rewrites) on a store that does not implement it yet, and fails it under
// CI=true, where nothing may be skipped silently.
func (e *testEnv) needMoneyStore(t *testing.T) {
	t.Helper()
	if len(e.missingMoney) == 0 {
		return
	}
	msg := fmt.Sprintf("waiting on the storage work: %T does not implement %s", e.store, strings.Join(e.missingMoney, ", "))
	if testenv.InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func bearer(tok string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

func xAPIKey(key string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("x-api-key", key)
		return nil
	}
}

func basic(user, pass string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.SetBasicAuth(user, pass)
		return nil
	}
}

// login returns an admin token, and keeps it for e.admin().
func (e *testEnv) login() string {
	e.t.Helper()
	r, err := e.c.AdminLoginWithResponse(context.Background(), basic(testAdminUser, testAdminPass))
	if err != nil || r.JSON200 == nil {
		e.t.Fatalf("login: %v %d %s", err, r.StatusCode(), r.Body)
	}
	e.token = r.JSON200.AccessToken
	return e.token
}

func (e *testEnv) admin() client.RequestEditorFn { return bearer(e.token) }

// createKey issues a key and returns it with its secret.
func (e *testEnv) createKey(body client.CreateKeyRequest) client.CreatedAPIKey {
	e.t.Helper()
	r, err := e.c.CreateKeyWithResponse(context.Background(), body, e.admin())
	if err != nil || r.JSON201 == nil {
		e.t.Fatalf("create key: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return *r.JSON201
}

// raw sends a hand-made request through the contract-checking doer.
func (e *testEnv) raw(method, path, body string, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("content-type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.doer.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// contractDoer sends requests and validates each response to a spec path
// against api/openapi.yaml (status included): the contract tests.
type contractDoer struct {
	t         *testing.T
	router    routers.Router
	validated atomic.Int64
}

func newContractDoer(t *testing.T) *contractDoer {
	// A private copy without servers, so routes match on any host.
	doc, err := openapi3.NewLoader().LoadFromData(api.SpecYAML())
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	r, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	d := &contractDoer{t: t, router: r}
	t.Cleanup(func() {
		if !t.Failed() && d.validated.Load() == 0 {
			t.Errorf("no response was validated against the spec")
		}
	})
	return d
}

func (d *contractDoer) Do(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode >= 400 && !strings.HasPrefix(req.URL.Path, "/v1/") && !bytes.Contains(body, []byte(`"type":"error"`)) {
		d.t.Errorf("%s %s -> %d is not Anthropic-shaped: %s", req.Method, req.URL.Path, resp.StatusCode, body)
	}
	route, params, err := d.router.FindRoute(req)
	if err != nil {
		return resp, nil // not a spec path (proxy, docs, metrics)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		d.t.Errorf("contract: %s %s -> %d violates the spec: %v\nbody: %s", req.Method, req.URL.Path, resp.StatusCode, err, body)
	}
	d.validated.Add(1)
	return resp, nil
}

func withAdminIPs(ps ...string) envOption {
	return func(o *httpadapter.Options) {
		for _, s := range ps {
			o.AdminAllowedIPs = append(o.AdminAllowedIPs, netip.MustParsePrefix(s))
		}
	}
}
