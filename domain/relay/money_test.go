package relay

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// budgetFake is a one-key BudgetLedger double that measures every window
// as all time: enough for the admission rules here. The windows
// themselves are domain/budget's, tested there and in the ledgers'
// contract suite.
type budgetFake struct {
	mu       sync.Mutex
	seeded   bool
	seeds    int
	settled  domain.Nanodollars
	held     map[string]domain.Nanodollars
	settles  map[string]domain.Nanodollars
	failWith error
}

func newBudgetFake() *budgetFake {
	return &budgetFake{held: map[string]domain.Nanodollars{}, settles: map[string]domain.Nanodollars{}}
}

func (f *budgetFake) measure(bs []budget.Budget, at time.Time) []budget.Status {
	var res domain.Nanodollars
	for _, v := range f.held {
		res += v
	}
	out := make([]budget.Status, len(bs))
	for i, b := range bs {
		out[i] = b.Status(at, budget.Measure{Used: f.settled, Reserved: res})
	}
	return out
}

func (f *budgetFake) Reserve(ctx context.Context, _ uuid.UUID, id string, bs []budget.Budget, amount domain.Nanodollars, at time.Time, _ time.Duration) ([]budget.Status, error) {
	// A real ledger's round trip fails on a dead context: so must this.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return nil, f.failWith
	}
	if !f.seeded {
		return nil, ports.ErrUnseeded
	}
	if _, ok := f.held[id]; ok {
		return f.measure(bs, at), nil
	}
	var short []budget.Shortfall
	for i, st := range f.measure(bs, at) {
		var res domain.Nanodollars
		for _, v := range f.held {
			res += v
		}
		if _, sf := bs[i].Check(at, budget.Measure{Used: f.settled, Reserved: res}, amount); sf != nil {
			short = append(short, *sf)
		}
		_ = st
	}
	if short != nil {
		return nil, budget.Refuse(at, short)
	}
	f.held[id] = amount
	return f.measure(bs, at), nil
}

func (f *budgetFake) Settle(_ context.Context, _ uuid.UUID, id string, actual domain.Nanodollars, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failWith != nil {
		return f.failWith
	}
	delete(f.held, id)
	f.settles[id] = actual
	f.settled += actual
	return nil
}

func (f *budgetFake) Extend(context.Context, uuid.UUID, string, time.Duration) error { return nil }
func (f *budgetFake) State(_ context.Context, _ uuid.UUID, bs []budget.Budget, at time.Time) ([]budget.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.measure(bs, at), nil
}
func (f *budgetFake) Seed(_ context.Context, _ uuid.UUID, h budget.History) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seeded, f.seeds = true, f.seeds+1
	f.settled = max(f.settled, h.Total)
	return nil
}
func (f *budgetFake) Reset(context.Context, uuid.UUID) error { f.seeded = false; return nil }

// spendFake is a SpendStore double holding one key's persisted total.
type spendFake struct{ total domain.Nanodollars }

func (f *spendFake) SpendHistory(_ context.Context, _ uuid.UUID, asOf time.Time) (budget.History, error) {
	return budget.History{AsOf: asOf, Total: f.total}, nil
}

var (
	_ ports.BudgetLedger = (*budgetFake)(nil)
	_ ports.SpendStore   = (*spendFake)(nil)
)

// priced wires the seed price table and a budget ledger into w's service.
func priced(t *testing.T, w *world, ledger ports.BudgetLedger, spend ports.SpendStore, policy pricing.Policy) func(*ServiceConfig) {
	t.Helper()
	seed, err := pricing.Seed()
	if err != nil {
		t.Fatal(err)
	}
	prices, err := billing.NewPrices(context.Background(), nil, seed, policy, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	budgets, err := billing.NewBudgets(ledger, spend, nil, "UTC")
	if err != nil {
		t.Fatal(err)
	}
	return func(c *ServiceConfig) { c.Prices, c.Budgets = prices, budgets }
}

func usd(t *testing.T, s string) domain.Nanodollars {
	t.Helper()
	n, err := domain.ParseUSD(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A priced model with stable prices: claude-sonnet-4-5 is $3/MTok input,
// $15/MTok output, $3.75 5m writes, $6 1h writes, $0.30 reads.
const sonnet = "claude-sonnet-4-5"

func TestModelAllowList(t *testing.T) {
	ctx := context.Background()
	allowed := []string{"claude-sonnet-*", "claude-haiku-4-5"}
	cases := []struct {
		name  string
		route Route
		model string
		items []string
		ok    bool
	}{
		{"messages, allowed by glob", Route{Endpoint: EndpointMessages}, "claude-sonnet-4-5", nil, true},
		{"messages, allowed by id", Route{Endpoint: EndpointMessages}, "claude-haiku-4-5", nil, true},
		{"messages, refused", Route{Endpoint: EndpointMessages}, "claude-opus-4-5", nil, false},
		{"messages without a model", Route{Endpoint: EndpointMessages}, "", nil, false},
		{"chat completions, refused", Route{Endpoint: EndpointChatCompletions}, "claude-opus-4-5", nil, false},
		{"count_tokens, refused", Route{Endpoint: EndpointCountTokens}, "claude-opus-4-5", nil, false},
		{"count_tokens, allowed", Route{Endpoint: EndpointCountTokens}, "claude-sonnet-4-6", nil, true},
		{"model lookup, refused", Route{Endpoint: EndpointModel, ObjectID: "claude-opus-4-5"}, "", nil, false},
		{"model lookup, allowed", Route{Endpoint: EndpointModel, ObjectID: "claude-haiku-4-5"}, "", nil, true},
		{"batch, all allowed", Route{Endpoint: EndpointBatchCreate}, "", []string{"claude-sonnet-4-5", "claude-haiku-4-5"}, true},
		{"batch with one refused request", Route{Endpoint: EndpointBatchCreate}, "", []string{"claude-sonnet-4-5", "claude-opus-4-5", "claude-haiku-4-5"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.key.AllowedModels = allowed
			w.parser.req = domain.CallRequest{Model: c.model, MaxTokens: 10, MaxTokensSet: true}
			w.parser.items = nil
			for i, m := range c.items {
				w.parser.items = append(w.parser.items, domain.BatchItem{CustomID: string(rune('a' + i)), Request: domain.CallRequest{Model: m, MaxTokens: 10, MaxTokensSet: true}})
			}
			s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = &objectsFake{objs: map[string]domain.OwnedObject{}} })
			in := input()
			in.Route = c.route
			_, err := s.Admit(ctx, w.key, in)
			if c.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			de := domain.AsError(err)
			if de == nil || de.Kind != domain.KindForbidden || de.Reason != domain.ReasonKeyModel {
				t.Fatalf("err %v, want 403 permission_error for the model", err)
			}
			name := c.model
			if c.route.ObjectID != "" {
				name = c.route.ObjectID
			}
			if c.items != nil {
				name = "claude-opus-4-5"
			}
			if name != "" && !strings.Contains(de.Message, name) {
				t.Fatalf("message %q does not name %q", de.Message, name)
			}
		})
	}
	t.Run("no allow-list allows any model", func(t *testing.T) {
		w := newWorld(t)
		w.parser.req = domain.CallRequest{Model: "anything-at-all", MaxTokens: 10, MaxTokensSet: true}
		if _, err := w.service(t, nil).Admit(ctx, w.key, input()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestValidModelPattern(t *testing.T) {
	for _, p := range []string{"claude-sonnet-4-5", "claude-*", "claude-?onnet-*", "claude-[sh]*"} {
		if err := ValidModelPattern(p); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	for _, p := range []string{"", "claude-[", "with space", "claude-\x00", strings.Repeat("a", 257), "clau\\"} {
		if err := ValidModelPattern(p); err == nil {
			t.Errorf("%q accepted", p)
		}
	}
}

func TestBudgetReservationAndSettlement(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.key.Budgets = []domain.KeyBudget{{Window: "day", Limit: usd(t, "1")}, {Window: "total", Limit: usd(t, "50")}}
	w.parser.req = domain.CallRequest{Model: sonnet, MaxTokens: 1000, MaxTokensSet: true}
	w.est.bound, w.est.estimate = 2000, 1000
	led, spend := newBudgetFake(), &spendFake{total: usd(t, "0.25")}
	s := w.service(t, priced(t, w, led, spend, pricing.Policy{}))
	a, err := s.Admit(ctx, w.key, input())
	if err != nil {
		t.Fatal(err)
	}
	// Upper bound: 2,000 prompt tokens at the dearest input-side class
	// (the 1h write, $6/MTok) plus 1,000 output tokens at $15/MTok (Sonnet
	// 4.5 has no data-residency multiplier), plus 7 nanodollars of
	// rounding slack: 0.012 + 0.015 = $0.027.
	if want := usd(t, "0.027000007"); a.ReservedCost != want || led.held["req_1"] != want {
		t.Fatalf("reserved %s, ledger %s, want %s", a.ReservedCost, led.held["req_1"], want)
	}
	if led.seeds != 1 || led.settled != usd(t, "0.25") {
		t.Fatalf("seeds %d settled %s: the ledger was not seeded from storage", led.seeds, led.settled)
	}
	// 100 input, 200 output, 300 5m writes, 400 reads:
	// 100×3 + 200×15 + 300×3.75 + 400×0.30 = 300 + 3000 + 1125 + 120 =
	// 4545 µ$ per MTok-unit → $0.004545.
	rec := a.Finish(ctx, ok(domain.Usage{InputTokens: 100, OutputTokens: 200, CacheCreationInputTokens: 300, CacheCreation5mTokens: 300, CacheReadInputTokens: 400}))
	if want := usd(t, "0.004545"); rec.Cost.Total != want || led.settles["req_1"] != want {
		t.Fatalf("cost %+v, settled %s, want %s", rec.Cost, led.settles["req_1"], want)
	}
	if rec.Cost.PriceVersion == "" || rec.Cost.CacheWrite5m != usd(t, "0.001125") || rec.Cost.CacheRead != usd(t, "0.00012") {
		t.Fatalf("cost breakdown %+v", rec.Cost)
	}
	if len(led.held) != 0 {
		t.Fatalf("reservation still held: %v", led.held)
	}
}

func TestBudgetRefusals(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T, window string, limit string, spent string) (*Service, *world, *budgetFake) {
		w := newWorld(t)
		w.key.Budgets = []domain.KeyBudget{{Window: window, Limit: usd(t, limit)}}
		w.parser.req = domain.CallRequest{Model: sonnet, MaxTokens: 1000, MaxTokensSet: true}
		w.est.bound, w.est.estimate = 1000, 1000
		led := newBudgetFake()
		return w.service(t, priced(t, w, led, &spendFake{total: usd(t, spent)}, pricing.Policy{})), w, led
	}
	t.Run("a spent total budget never frees: no retry", func(t *testing.T) {
		s, w, _ := setup(t, "total", "1", "0.99")
		_, err := s.Admit(ctx, w.key, input())
		de := domain.AsError(err)
		if de == nil || de.Kind != domain.KindQuotaExceeded || de.Reason != domain.ReasonBudget || !de.NoRetry || de.RetryAfter != 0 {
			t.Fatalf("err %+v", de)
		}
		if !strings.Contains(de.Message, "total budget") || !strings.Contains(de.Message, "never resets") {
			t.Fatalf("message %q does not name the window", de.Message)
		}
	})
	t.Run("a spent day budget says when it resets", func(t *testing.T) {
		s, w, _ := setup(t, "day", "1", "0.99")
		in := input()
		in.Start = time.Date(2026, 12, 1, 20, 0, 0, 0, time.UTC)
		_, err := s.Admit(ctx, w.key, in)
		de := domain.AsError(err)
		if de == nil || de.Reason != domain.ReasonBudget || de.NoRetry || de.RetryAfter != 4*time.Hour {
			t.Fatalf("err %+v, want retry-after 4h (midnight UTC)", de)
		}
		if !strings.Contains(de.Message, "day (UTC) budget") || !strings.Contains(de.Message, "2026-12-02T00:00:00Z") {
			t.Fatalf("message %q does not name the window and its reset", de.Message)
		}
	})
	t.Run("a refusal gives the token reservation back", func(t *testing.T) {
		s, w, _ := setup(t, "total", "1", "0.999")
		limited(w, 1_000_000, 0)
		var settled []int64
		w.ledger.settle = func(id string, actual int64) error { settled = append(settled, actual); return nil }
		if _, err := s.Admit(ctx, w.key, input()); err == nil {
			t.Fatal("admitted")
		}
		if len(settled) != 1 || settled[0] != 0 {
			t.Fatalf("token reservation settled %v, want [0]", settled)
		}
	})
	t.Run("the cheap bound misses, the tight estimate fits", func(t *testing.T) {
		// Output 1000 × $15/MTok = $0.015; the cheap bound adds 100,000 ×
		// $6/MTok = $0.60, the tight one 100 × $6/MTok = $0.0006.
		s, w, led := setup(t, "total", "0.1", "0")
		w.est.bound, w.est.estimate = 100_000, 100
		a, err := s.Admit(ctx, w.key, input())
		if err != nil {
			t.Fatal(err)
		}
		if want := usd(t, "0.015600007"); a.ReservedCost != want || led.held["req_1"] != want {
			t.Fatalf("reserved %s, want %s", a.ReservedCost, want)
		}
	})
	t.Run("an unpriced model is refused for a key with a budget", func(t *testing.T) {
		s, w, _ := setup(t, "total", "1", "0")
		w.parser.req.Model = "claude-unknown-9"
		_, err := s.Admit(ctx, w.key, input())
		de := domain.AsError(err)
		if de == nil || de.Kind != domain.KindInvalid || de.Reason != domain.ReasonUnpriced || !strings.Contains(de.Message, "claude-unknown-9") {
			t.Fatalf("err %+v", de)
		}
		if u := s.cfg.Prices.Unpriced(); len(u) != 1 || u[0].Model != "claude-unknown-9" {
			t.Fatalf("unpriced models %+v", u)
		}
	})
	t.Run("the ledger failing closes by default", func(t *testing.T) {
		s, w, led := setup(t, "total", "1", "0")
		led.failWith = errors.New("redis away")
		_, err := s.Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Kind != domain.KindOverloaded || de.Reason != domain.ReasonBudgetBackend {
			t.Fatalf("err %+v", de)
		}
	})
}

func TestUnpricedModelOnKeyWithoutBudgetIsFlagged(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.parser.req = domain.CallRequest{Model: "claude-unknown-9", MaxTokens: 10, MaxTokensSet: true}
	s := w.service(t, priced(t, w, newBudgetFake(), &spendFake{}, pricing.Policy{}))
	a, err := s.Admit(ctx, w.key, input())
	if err != nil {
		t.Fatal(err)
	}
	out := ok(domain.Usage{InputTokens: 10, OutputTokens: 10})
	out.Reply.Model = "claude-unknown-9"
	rec := a.Finish(ctx, out)
	if !rec.Cost.Unpriced || rec.Cost.Total != 0 || rec.Cost.PriceVersion == "" || len(rec.Cost.Detail) == 0 {
		t.Fatalf("cost %+v: an unpriced model must be flagged, never a silent $0", rec.Cost)
	}
	// Under the fallback policy the same call is priced at the fallback.
	w2 := newWorld(t)
	w2.parser.req = w.parser.req
	s2 := w2.service(t, priced(t, w2, newBudgetFake(), &spendFake{}, pricing.Policy{Unpriced: pricing.UnpricedFallback, FallbackModel: sonnet}))
	a2, err := s2.Admit(ctx, w2.key, input())
	if err != nil {
		t.Fatal(err)
	}
	rec2 := a2.Finish(ctx, out)
	// 10 × $3 + 10 × $15 per MTok = $0.00018.
	if rec2.Cost.Unpriced || rec2.Cost.Total != usd(t, "0.00018") {
		t.Fatalf("fallback cost %+v", rec2.Cost)
	}
}

// TestConcurrentRequestsNeverOverspend: 50 requests at once against a $1
// total budget, each bounded at $0.03006 (10 prompt tokens at $6/MTok,
// 2,000 output tokens at $15/MTok) and costing $0.02703 (10 input tokens
// at $3, 1,800 output at $15). What is settled never passes $1, and what
// is admitted uses at least half of it.
func TestConcurrentRequestsNeverOverspend(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.tiers[0].MaxConcurrency = nil
	w.key.Budgets = []domain.KeyBudget{{Window: "total", Limit: usd(t, "1")}}
	w.parser.req = domain.CallRequest{Model: sonnet, MaxTokens: 2_000, MaxTokensSet: true}
	w.est.bound, w.est.estimate = 10, 10
	led := newBudgetFake()
	s := w.service(t, priced(t, w, led, &spendFake{}, pricing.Policy{}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := input()
			in.RequestID = "req_" + string(rune('A'+i))
			a, err := s.Admit(ctx, w.key, in)
			if err != nil {
				return
			}
			mu.Lock()
			admitted++
			mu.Unlock()
			a.Finish(ctx, ok(domain.Usage{InputTokens: 10, OutputTokens: 1_800}))
		}()
	}
	wg.Wait()
	if led.settled > usd(t, "1") {
		t.Fatalf("settled %s on a $1 budget", led.settled)
	}
	if led.settled < usd(t, "0.5") || admitted == 0 {
		t.Fatalf("settled only %s with %d admitted: the budget must stay usable", led.settled, admitted)
	}
}

// TestBatchReservesEveryRequestAtTheBatchPrice: a batch holds the sum of
// its requests' bounds at the batch multiplier (0.5), and one unpriced
// request refuses the whole batch.
func TestBatchReservesEveryRequestAtTheBatchPrice(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.key.Budgets = []domain.KeyBudget{{Window: "total", Limit: usd(t, "10")}}
	w.est.bound = 1000
	item := func(id, model string) domain.BatchItem {
		return domain.BatchItem{CustomID: id, Request: domain.CallRequest{Model: model, MaxTokens: 1000, MaxTokensSet: true}, Params: []byte(`{}`)}
	}
	w.parser.items = []domain.BatchItem{item("a", sonnet), item("b", sonnet)}
	led := newBudgetFake()
	s := w.service(t, func(c *ServiceConfig) {
		priced(t, w, led, &spendFake{}, pricing.Policy{})(c)
		c.Objects = &objectsFake{objs: map[string]domain.OwnedObject{}}
	})
	in := input()
	in.Route = Route{Endpoint: EndpointBatchCreate, Path: "/v1/messages/batches"}
	a, err := s.Admit(ctx, w.key, in)
	if err != nil {
		t.Fatal(err)
	}
	// Each: (1,000 × $6 + 1,000 × $15) × 0.5 = $0.0105, + 7 n$ slack.
	if want := 2 * usd(t, "0.010500007"); a.ReservedCost != want {
		t.Fatalf("reserved %s, want %s", a.ReservedCost, want)
	}
	w.parser.items = append(w.parser.items, item("c", "claude-unknown-9"))
	in.RequestID = "req_2"
	_, err = s.Admit(ctx, w.key, in)
	if de := domain.AsError(err); de == nil || de.Reason != domain.ReasonUnpriced {
		t.Fatalf("a batch with an unpriced request: %v", err)
	}
}
