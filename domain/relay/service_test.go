package relay

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Function-field doubles. A nil field fails the test when called, so each
// test states exactly which ports it expects to be used.

type keyLookupFunc struct {
	lookup func(ctx context.Context, hash string) (domain.APIKey, error)
}

func (f *keyLookupFunc) LookupKey(ctx context.Context, h string) (domain.APIKey, error) {
	return f.lookup(ctx, h)
}
func (f *keyLookupFunc) Invalidate(uuid.UUID) {}

type rateFake struct {
	allow  func(key string, l domain.Limit, cost int64) (domain.RateDecision, error)
	peek   func(key string, l domain.Limit) (domain.RateDecision, error)
	charge func(key string, l domain.Limit, cost int64) error
}

func (f *rateFake) Allow(_ context.Context, k string, l domain.Limit, c int64) (domain.RateDecision, error) {
	return f.allow(k, l, c)
}
func (f *rateFake) Peek(_ context.Context, k string, l domain.Limit) (domain.RateDecision, error) {
	return f.peek(k, l)
}
func (f *rateFake) Charge(_ context.Context, k string, l domain.Limit, c int64) error {
	return f.charge(k, l, c)
}

type concFake struct {
	acquire func(key string, max int) (func(), bool, error)
}

func (f *concFake) Acquire(_ context.Context, k string, m int, _ time.Duration) (func(), bool, error) {
	return f.acquire(k, m)
}
func (f *concFake) InFlight(context.Context, string) (int, error) { return 0, nil }

type ledgerFake struct {
	reserve func(id string, est, limit, seed int64) (domain.QuotaState, error)
	settle  func(id string, actual int64) error
	extend  func(id string, lease time.Duration) error
}

func (f *ledgerFake) Extend(_ context.Context, _ uuid.UUID, id string, lease time.Duration) error {
	return f.extend(id, lease)
}

func (f *ledgerFake) Reserve(_ context.Context, _ uuid.UUID, id string, est, limit, seed int64, _ time.Duration) (domain.QuotaState, error) {
	return f.reserve(id, est, limit, seed)
}
func (f *ledgerFake) Settle(_ context.Context, _ uuid.UUID, id string, actual int64) error {
	return f.settle(id, actual)
}
func (f *ledgerFake) State(context.Context, uuid.UUID, int64) (domain.QuotaState, error) {
	return domain.QuotaState{}, nil
}
func (f *ledgerFake) Reset(context.Context, uuid.UUID) error { return nil }

type usageFake struct {
	saturated func() bool
	record    func(rec domain.UsageRecord) error
}

func (f *usageFake) Record(_ context.Context, r domain.UsageRecord) error { return f.record(r) }
func (f *usageFake) Saturated() bool                                      { return f.saturated() }

type tierStoreFake struct {
	ports.TierStore // only ListTiers is used
	list            func() ([]domain.Tier, error)
}

func (f *tierStoreFake) ListTiers(context.Context) ([]domain.Tier, error) { return f.list() }

// parserFake reads "max_tokens" from a tiny fixed body shape used here;
// the real parser is adapters/anthropic's, tested there.
type parserFake struct {
	req   domain.CallRequest
	err   error
	items []domain.BatchItem
}

func (f *parserFake) ParseRequest([]byte, domain.WireFormat) (domain.CallRequest, error) {
	return f.req, f.err
}
func (f *parserFake) ParseBatch([]byte) ([]domain.BatchItem, error) { return f.items, f.err }

type estimatorFake struct {
	bound, estimate int64
	calls           atomic.Int32
	// busy: InputEstimate finds no free slot and waits until ctx ends.
	busy bool
}

func (f *estimatorFake) InputBound([]byte) int64 { f.calls.Add(1); return f.bound }
func (f *estimatorFake) InputEstimate(ctx context.Context, _ []byte) (int64, error) {
	f.calls.Add(1)
	if f.busy {
		<-ctx.Done()
		return 0, &domain.Error{Kind: domain.KindOverloaded, Err: ctx.Err()}
	}
	return f.estimate, nil
}

var (
	_ ports.RequestParser      = (*parserFake)(nil)
	_ ports.TokenEstimator     = (*estimatorFake)(nil)
	_ ports.KeyLookup          = (*keyLookupFunc)(nil)
	_ ports.RateLimiter        = (*rateFake)(nil)
	_ ports.ConcurrencyLimiter = (*concFake)(nil)
	_ ports.QuotaLedger        = (*ledgerFake)(nil)
	_ ports.UsageRecorder      = (*usageFake)(nil)
	_ ports.TierStore          = (*tierStoreFake)(nil)
)

const rawKey = "sk-proxy-0123456789abcdefghijABCDEFGHIJ"

var hasher = domain.NewKeyHasher([]byte("test-secret"))

type world struct {
	key     domain.APIKey
	tiers   []domain.Tier
	rate    *rateFake
	conc    *concFake
	ledger  *ledgerFake
	usage   *usageFake
	log     []string
	mu      sync.Mutex
	records []domain.UsageRecord
	parser  *parserFake
	est     *estimatorFake
}

func (w *world) note(s string) { w.mu.Lock(); w.log = append(w.log, s); w.mu.Unlock() }

func newWorld(t *testing.T) *world {
	t.Helper()
	conc := 2
	toks := int64(1000)
	w := &world{
		key:   domain.APIKey{ID: uuid.New(), KeyHash: hasher.Hash(rawKey), IsActive: true, RateLimitTier: "gold"},
		tiers: []domain.Tier{{Name: "gold", Requests: 10, Period: time.Minute, Tokens: &toks, MaxConcurrency: &conc}},
	}
	w.rate = &rateFake{
		allow: func(k string, l domain.Limit, _ int64) (domain.RateDecision, error) {
			w.note("allow " + k[:4])
			return domain.RateDecision{Allowed: true, Limit: l.Count, Remaining: l.Count - 1, ResetAfter: time.Second}, nil
		},
		peek: func(k string, l domain.Limit) (domain.RateDecision, error) {
			w.note("peek " + k[:4])
			return domain.RateDecision{Allowed: true, Limit: l.Count, Remaining: l.Count}, nil
		},
		charge: func(k string, _ domain.Limit, c int64) error { w.note("charge " + k[:4]); return nil },
	}
	w.conc = &concFake{acquire: func(k string, m int) (func(), bool, error) {
		w.note("acquire")
		return func() { w.note("release") }, true, nil
	}}
	w.ledger = &ledgerFake{
		reserve: func(id string, est, limit, seed int64) (domain.QuotaState, error) {
			w.note("reserve")
			return domain.QuotaState{}, nil
		},
		settle: func(id string, actual int64) error { w.note("settle"); return nil },
	}
	w.parser = &parserFake{req: domain.CallRequest{Model: "claude-x", MaxTokens: 100}}
	w.est = &estimatorFake{bound: 80, estimate: 50}
	w.usage = &usageFake{saturated: func() bool { return false }, record: func(r domain.UsageRecord) error {
		w.mu.Lock()
		w.records = append(w.records, r)
		w.mu.Unlock()
		return nil
	}}
	return w
}

func (w *world) service(t *testing.T, mod func(*ServiceConfig)) *Service {
	t.Helper()
	keys := &keyLookupFunc{lookup: func(_ context.Context, h string) (domain.APIKey, error) {
		if h == w.key.KeyHash {
			return w.key, nil
		}
		return domain.APIKey{}, domain.ErrNotFound
	}}
	cfg := ServiceConfig{
		Auth:  NewAuthenticator(hasher, keys, ports.SystemClock{}),
		Tiers: NewTierResolver(&tierStoreFake{list: func() ([]domain.Tier, error) { return w.tiers, nil }}, time.Minute, nil),
		Rate:  w.rate, Concurrency: w.conc, Ledger: w.ledger, Usage: w.usage,
		Parser: w.parser, Estimator: w.est,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func input() Call {
	return Call{Route: Route{Endpoint: EndpointMessages, Path: "/v1/messages"}, ClientIP: netip.MustParseAddr("10.0.0.1"),
		RequestID: "req_1", ContentType: "application/json", Body: []byte(`{"max_tokens":100}`)}
}

// ok is a complete 200 answer that reported u.
func ok(u domain.Usage) Outcome {
	return Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true,
		Reply: Reply{Usage: u, Complete: true, InputReported: true}}
}

func TestAdmitOrderAndSettle(t *testing.T) {
	w := newWorld(t)
	limit := int64(10_000)
	w.key.TokenLimit = &limit
	var est int64
	w.ledger.reserve = func(id string, e, l, seed int64) (domain.QuotaState, error) {
		w.note("reserve")
		est = e
		return domain.QuotaState{}, nil
	}
	var settled int64 = -1
	w.ledger.settle = func(id string, actual int64) error { w.note("settle"); settled = actual; return nil }
	s := w.service(t, nil)
	a, err := s.Admit(context.Background(), w.key, input())
	if err != nil {
		t.Fatal(err)
	}
	if est != 180 || a.Reserved != 180 || !a.RateChecked || a.Rate.Limit != 10 || a.Tier.Name != "gold" {
		t.Fatalf("admission %+v, estimate %d", a, est)
	}
	want := []string{"allow req:", "peek tok:", "acquire", "reserve"}
	if len(w.log) != len(want) {
		t.Fatalf("steps %v, want %v", w.log, want)
	}
	for i := range want {
		if w.log[i] != want[i] {
			t.Fatalf("steps %v, want %v", w.log, want)
		}
	}
	w.log = nil
	u := domain.Usage{InputTokens: 10, OutputTokens: 20, CacheReadInputTokens: 5}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { a.Finish(context.Background(), ok(u)) })
	}
	wg.Wait()
	if settled != 35 || len(w.records) != 1 || w.records[0].KeyID != w.key.ID || w.records[0].RequestID != "req_1" {
		t.Fatalf("settled %d records %+v", settled, w.records)
	}
	if got := w.log; len(got) != 3 || got[0] != "release" || got[1] != "settle" || got[2] != "charge tok:" {
		t.Fatalf("settle steps %v", got)
	}
}

func TestAdmitRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("unknown key touches nothing", func(t *testing.T) {
		w := newWorld(t)
		k, err := w.service(t, nil).Authenticate(ctx, "sk-proxy-unknownunknownunknownunknown", netip.MustParseAddr("10.0.0.1"))
		if domain.KindOf(err) != domain.KindUnauthenticated || len(w.log) != 0 || k.ID != uuid.Nil {
			t.Fatalf("err %v steps %v key %v", err, w.log, k.ID)
		}
	})
	t.Run("origin", func(t *testing.T) {
		w := newWorld(t)
		w.key.AllowedDomains = []string{"app.example.com"}
		in := input()
		in.Origin = "https://evil.example.com"
		_, err := w.service(t, nil).Admit(ctx, w.key, in)
		if de := domain.AsError(err); de == nil || de.Kind != domain.KindForbidden || de.Reason != "origin" || len(w.log) != 0 {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("saturated", func(t *testing.T) {
		w := newWorld(t)
		w.usage.saturated = func() bool { return true }
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if domain.KindOf(err) != domain.KindOverloaded || len(w.log) != 0 {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("requests", func(t *testing.T) {
		w := newWorld(t)
		w.rate.allow = func(string, domain.Limit, int64) (domain.RateDecision, error) {
			return domain.RateDecision{RetryAfter: 1500 * time.Millisecond}, nil
		}
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Kind != domain.KindRateLimited || de.RetryAfter != 1500*time.Millisecond || de.Reason != "requests" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("tokens", func(t *testing.T) {
		w := newWorld(t)
		w.rate.peek = func(string, domain.Limit) (domain.RateDecision, error) {
			return domain.RateDecision{RetryAfter: time.Second}, nil
		}
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Reason != "tokens" {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("concurrency", func(t *testing.T) {
		w := newWorld(t)
		w.conc.acquire = func(string, int) (func(), bool, error) { return nil, false, nil }
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Reason != "concurrency" || de.Kind != domain.KindRateLimited {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("quota releases the slot", func(t *testing.T) {
		w := newWorld(t)
		limit := int64(100)
		w.key.TokenLimit = &limit
		w.ledger.reserve = func(string, int64, int64, int64) (domain.QuotaState, error) {
			return domain.QuotaState{Used: 90}, domain.Errorf(domain.KindQuotaExceeded, "token quota exhausted: 10 of 100 tokens remain")
		}
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Kind != domain.KindQuotaExceeded || de.Reason != "quota" {
			t.Fatalf("err %v", err)
		}
		if w.log[len(w.log)-1] != "release" {
			t.Fatalf("slot not released: %v", w.log)
		}
	})
}

func TestAuxCallsUseAuxBudgetAndChargeNothing(t *testing.T) {
	w := newWorld(t)
	limit := int64(10)
	w.key.TokenLimit = &limit
	var limitSeen domain.Limit
	w.rate.allow = func(k string, l domain.Limit, _ int64) (domain.RateDecision, error) {
		w.note("allow " + k[:4])
		limitSeen = l
		return domain.RateDecision{Allowed: true}, nil
	}
	in := input()
	in.Route = Route{Endpoint: EndpointCountTokens, Path: "/v1/messages/count_tokens"}
	a, err := w.service(t, nil).Admit(context.Background(), w.key, in)
	if err != nil {
		t.Fatal(err)
	}
	a.Finish(context.Background(), ok(domain.Usage{InputTokens: 42}))
	if w.est.calls.Load() != 0 {
		t.Fatal("aux call estimated tokens")
	}
	if limitSeen.Count != 100 || w.log[0] != "allow aux:" {
		t.Fatalf("aux limit %+v steps %v", limitSeen, w.log)
	}
	for _, s := range w.log {
		if s == "reserve" || s == "settle" || s == "peek tok:" || s == "charge tok:" {
			t.Fatalf("aux call touched %q: %v", s, w.log)
		}
	}
	if w.records[0].Usage != (domain.Usage{}) {
		t.Fatalf("aux record charged %+v", w.records[0].Usage)
	}
}

func TestBackendFailurePolicies(t *testing.T) {
	boom := errors.New("redis: connection refused")
	limit := int64(1000)
	w := newWorld(t)
	w.key.TokenLimit = &limit
	w.rate.allow = func(string, domain.Limit, int64) (domain.RateDecision, error) { return domain.RateDecision{}, boom }
	w.ledger.reserve = func(string, int64, int64, int64) (domain.QuotaState, error) { return domain.QuotaState{}, boom }
	// Defaults: rate fails open, quota fails closed (and frees the slot).
	_, err := w.service(t, nil).Admit(context.Background(), w.key, input())
	if de := domain.AsError(err); de == nil || de.Kind != domain.KindOverloaded || de.Reason != "quota_backend" {
		t.Fatalf("err %v", err)
	}
	if w.log[len(w.log)-1] != "release" {
		t.Fatalf("slot not released: %v", w.log)
	}
	// Quota fail open admits, and settle still counts actual usage.
	var settled atomic.Int64
	w.ledger.settle = func(_ string, n int64) error { settled.Store(n); return nil }
	a, err := w.service(t, func(c *ServiceConfig) { c.QuotaPolicy = FailOpen }).Admit(context.Background(), w.key, input())
	if err != nil || a.RateChecked || a.Reserved != 0 {
		t.Fatalf("fail open: %v %+v", err, a)
	}
	a.Finish(context.Background(), ok(domain.Usage{OutputTokens: 7}))
	if settled.Load() != 7 {
		t.Fatalf("settled %d", settled.Load())
	}
	// Rate fail closed refuses.
	_, err = w.service(t, func(c *ServiceConfig) { c.RatePolicy = FailClosed }).Admit(context.Background(), w.key, input())
	if de := domain.AsError(err); de == nil || de.Reason != "requests_backend" {
		t.Fatalf("err %v", err)
	}
}

func TestOriginAllowed(t *testing.T) {
	pats := []string{"app.example.com", "*.Corp.io"}
	cases := []struct {
		origin, referer string
		want            bool
	}{
		{"https://app.example.com", "", true},
		{"https://APP.example.com:8443", "", true},
		{"https://x.app.example.com", "", false},
		{"https://a.corp.io", "", true},
		{"https://a.b.corp.io", "", true},
		{"https://corp.io", "", false},
		{"https://evilcorp.io", "", false},
		{"https://corp.io.evil.com", "", false},
		{"", "https://a.corp.io/page?x=1", true},
		{"null", "https://app.example.com/", true},
		{"", "", false},
		{"app.example.com", "", false},
	}
	for _, c := range cases {
		if got := OriginAllowed(pats, c.origin, c.referer); got != c.want {
			t.Errorf("OriginAllowed(%q, %q) = %v", c.origin, c.referer, got)
		}
	}
	if !OriginAllowed(nil, "", "") {
		t.Error("empty list must allow everything")
	}
}

type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func TestTierResolverTTL(t *testing.T) {
	clock := &fakeClock{}
	var calls atomic.Int32
	reqs := 10
	store := &tierStoreFake{list: func() ([]domain.Tier, error) {
		calls.Add(1)
		return []domain.Tier{{Name: "basic", Requests: reqs, Period: time.Minute}}, nil
	}}
	r := NewTierResolver(store, 5*time.Second, clock)
	for range 3 {
		if tr, err := r.Tier(context.Background(), "basic"); err != nil || tr.Requests != 10 {
			t.Fatalf("tier %+v %v", tr, err)
		}
	}
	reqs = 20
	clock.Advance(6 * time.Second)
	if tr, _ := r.Tier(context.Background(), "basic"); tr.Requests != 20 || calls.Load() != 2 {
		t.Fatalf("after ttl: %+v, %d loads", tr, calls.Load())
	}
	if _, err := r.Tier(context.Background(), "nope"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("err %v", err)
	}
	// A failing store keeps the last snapshot.
	store.list = func() ([]domain.Tier, error) { return nil, errors.New("db down") }
	clock.Advance(6 * time.Second)
	if tr, err := r.Tier(context.Background(), "basic"); err != nil || tr.Requests != 20 {
		t.Fatalf("stale: %+v %v", tr, err)
	}
}

func TestHugeMaxTokensIsRefusedNotOverflowed(t *testing.T) {
	w := newWorld(t)
	limit := int64(100_000)
	w.key.TokenLimit = &limit
	s := w.service(t, nil)
	w.parser.err = domain.Invalidf("max_tokens must be at most 1073741824")
	_, err := s.Admit(context.Background(), w.key, input())
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("want a 400-kind error, got %v", err)
	}
	for _, step := range w.log {
		if step == "reserve" {
			t.Fatal("an oversized max_tokens reached the ledger")
		}
	}
	// Refused at the body, which is read after the concurrency slot is
	// taken: the slot is given back.
	if got := strings.Join(w.log, ","); got != "allow req:,peek tok:,acquire,release" {
		t.Fatalf("steps: %s", got)
	}
}

func TestFailedSettleIsRetried(t *testing.T) {
	w := newWorld(t)
	limit := int64(100_000)
	w.key.TokenLimit = &limit
	var calls atomic.Int64
	settled := make(chan int64, 1)
	w.ledger.settle = func(id string, actual int64) error {
		if calls.Add(1) <= 2 {
			return errors.New("redis: connection refused")
		}
		settled <- actual
		return nil
	}
	s := w.service(t, nil)
	adm, err := s.Admit(context.Background(), w.key, input())
	if err != nil {
		t.Fatal(err)
	}
	adm.Finish(context.Background(), ok(domain.Usage{InputTokens: 7, OutputTokens: 5}))
	select {
	case got := <-settled:
		if got != 12 {
			t.Fatalf("settled %d, want 12", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("the failed settlement was not retried (%d calls)", calls.Load())
	}
}
