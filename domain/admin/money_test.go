package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// moneyDeps are the optional money ports of a service under test.
type moneyDeps struct {
	prices   *billing.Prices
	budgets  *billing.Budgets
	repricer ports.UsageRepricer
}

func newMoneyService(t *testing.T, st *fakeStore, m moneyDeps) *admin.Service {
	t.Helper()
	d := admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}, Hasher: domain.NewKeyHasher([]byte("k")),
		LoginThrottle: newFakeThrottleStore(), Prices: m.prices, Budgets: m.budgets, Repricer: m.repricer}
	s, err := admin.NewService(d, admin.Config{AdminUsername: "admin", AdminPasswordHash: testHash, MaxPasswordChecks: 4,
		LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustBudgets(t *testing.T, l ports.BudgetLedger) *billing.Budgets {
	t.Helper()
	b, err := billing.NewBudgets(l, &fakeSpend{history: func(context.Context, uuid.UUID, time.Time) (budget.History, error) {
		return budget.History{}, nil
	}}, fixedClock{testNow}, "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPrices(t *testing.T, store ports.PriceStore) *billing.Prices {
	t.Helper()
	seed, err := pricing.Seed()
	if err != nil {
		t.Fatal(err)
	}
	p, err := billing.NewPrices(context.Background(), store, seed, pricing.Policy{}, fixedClock{testNow}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func usd(t *testing.T, s string) domain.Nanodollars {
	t.Helper()
	n, err := domain.ParseUSD(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func basicTierStore() *fakeStore {
	return &fakeStore{getTier: func(_ context.Context, name string) (domain.Tier, error) {
		if name == "basic" {
			return domain.Tier{Name: name}, nil
		}
		return domain.Tier{}, domain.ErrNotFound
	}}
}

func TestIssueKeyBudgetsAndModels(t *testing.T) {
	t.Parallel()
	st := basicTierStore()
	var created domain.APIKey
	st.createKey = func(_ context.Context, k domain.APIKey) error { created = k; return nil }
	s := newMoneyService(t, st, moneyDeps{})
	ctx := context.Background()
	_, err := s.IssueKey(ctx, admin.IssueKeyInput{Name: "n",
		Budgets: []admin.BudgetInput{
			{Window: "5h", LimitUSD: "10"}, {Window: "day", LimitUSD: "0.1", TimeZone: "Europe/Paris"},
			{Window: "total", LimitUSD: "10.123456789"}, {Window: "day", LimitUSD: "5"}, {Window: "month", LimitUSD: "200.000000000"},
		},
		AllowedModels: []string{"claude-sonnet-*", "claude-haiku-4-5", "claude-sonnet-*"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.KeyBudget{
		{Window: "5h", Limit: 10 * domain.NanosPerUSD}, {Window: "day", Limit: 100_000_000, TimeZone: "Europe/Paris"},
		{Window: "total", Limit: 10_123_456_789}, {Window: "day", Limit: 5 * domain.NanosPerUSD},
		{Window: "month", Limit: 200 * domain.NanosPerUSD},
	}
	if !slices.Equal(created.Budgets, want) {
		t.Errorf("stored budgets %+v, want %+v", created.Budgets, want)
	}
	if !slices.Equal(created.AllowedModels, []string{"claude-sonnet-*", "claude-haiku-4-5"}) {
		t.Errorf("stored models %q", created.AllowedModels)
	}

	nine := make([]admin.BudgetInput, 9)
	for i := range nine {
		nine[i] = admin.BudgetInput{Window: "day", LimitUSD: "1", TimeZone: []string{"UTC", "Europe/Paris", "Asia/Tokyo",
			"America/New_York", "Europe/Berlin", "Europe/London", "Asia/Kolkata", "Australia/Sydney", "America/Chicago"}[i]}
	}
	many := make([]string, 257)
	for i := range many {
		many[i] = fmt.Sprintf("m-%d", i)
	}
	bad := map[string]admin.IssueKeyInput{
		"exponent":        {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "1e2"}}},
		"negative":        {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "-1"}}},
		"zero":            {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "0"}}},
		"ten decimals":    {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "0.0000000001"}}},
		"empty limit":     {Budgets: []admin.BudgetInput{{Window: "day"}}},
		"over the max":    {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "9007199.254740992"}}},
		"unknown window":  {Budgets: []admin.BudgetInput{{Window: "hour", LimitUSD: "1"}}},
		"nine budgets":    {Budgets: nine},
		"same window":     {Budgets: []admin.BudgetInput{{Window: "week", LimitUSD: "1"}, {Window: "week", LimitUSD: "2"}}},
		"zone on 5h":      {Budgets: []admin.BudgetInput{{Window: "5h", LimitUSD: "1", TimeZone: "Europe/Paris"}}},
		"zone on total":   {Budgets: []admin.BudgetInput{{Window: "total", LimitUSD: "1", TimeZone: "UTC"}}},
		"unknown zone":    {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "1", TimeZone: "Mars/Olympus"}}},
		"Local zone":      {Budgets: []admin.BudgetInput{{Window: "day", LimitUSD: "1", TimeZone: "Local"}}},
		"bad glob":        {AllowedModels: []string{"claude-["}},
		"space in model":  {AllowedModels: []string{"claude sonnet"}},
		"empty model":     {AllowedModels: []string{""}},
		"too many models": {AllowedModels: many},
	}
	for name, in := range bad {
		in.Name = "n"
		if _, err := s.IssueKey(ctx, in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	// The message names the budget and says what a limit must look like.
	_, err = s.IssueKey(ctx, admin.IssueKeyInput{Name: "n", Budgets: []admin.BudgetInput{{Window: "5h", LimitUSD: "1"}, {Window: "day", LimitUSD: "1e2"}}})
	if de := domain.AsError(err); de == nil || !strings.Contains(de.Message, "budgets[1].limit_usd") || !strings.Contains(de.Message, "exponent") {
		t.Errorf("exponent message: %v", err)
	}
}

// event records the order in which ports were called.
type events struct{ list []string }

func (e *events) add(s string) { e.list = append(e.list, s) }

func TestUpdateKeyResetsTheBudgetLedgerWhenBudgetsAppear(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	stored := domain.APIKey{ID: id, Name: "k", IsActive: true, RateLimitTier: "basic", UpdatedAt: testNow.Add(-time.Hour)}
	var ev events
	var failUpdate bool
	st := basicTierStore()
	st.getKey = func(context.Context, uuid.UUID) (domain.APIKey, error) { return stored, nil }
	st.updateKey = func(_ context.Context, k domain.APIKey, _ time.Time) error {
		if failUpdate {
			return errors.New("disk full")
		}
		ev.add("update")
		stored = k
		return nil
	}
	ledger := &fakeBudgetLedger{reset: func(_ context.Context, got uuid.UUID) error {
		if got != id {
			t.Errorf("reset %s, want %s", got, id)
		}
		ev.add("reset")
		return nil
	}}
	s := newMoneyService(t, st, moneyDeps{budgets: mustBudgets(t, ledger)})
	ctx := context.Background()
	set := func(bs ...admin.BudgetInput) *[]admin.BudgetInput { return &bs }
	name := "renamed"
	steps := []struct {
		what string
		in   admin.UpdateKeyInput
		want []string
	}{
		{"none to some", admin.UpdateKeyInput{Budgets: set(admin.BudgetInput{Window: "month", LimitUSD: "200"})}, []string{"update", "reset"}},
		{"name only", admin.UpdateKeyInput{Name: &name}, []string{"update"}},
		{"the same list", admin.UpdateKeyInput{Budgets: set(admin.BudgetInput{Window: "month", LimitUSD: "200.0"})}, []string{"update"}},
		// The ledger follows a key with budgets: a change keeps its
		// reservations in flight.
		{"another limit", admin.UpdateKeyInput{Budgets: set(admin.BudgetInput{Window: "month", LimitUSD: "201"})}, []string{"update"}},
		{"models only", admin.UpdateKeyInput{AllowedModels: &[]string{"claude-*"}}, []string{"update"}},
		{"cleared", admin.UpdateKeyInput{Budgets: set()}, []string{"update"}},
		{"some again", admin.UpdateKeyInput{Budgets: set(admin.BudgetInput{Window: "day", LimitUSD: "5"})}, []string{"update", "reset"}},
		{"cleared again", admin.UpdateKeyInput{Budgets: set()}, []string{"update"}},
	}
	for _, step := range steps {
		ev.list = nil
		step.in.ID = id
		k, err := s.UpdateKey(ctx, step.in)
		if err != nil {
			t.Fatalf("%s: %v", step.what, err)
		}
		if !slices.Equal(ev.list, step.want) {
			t.Errorf("%s: calls %v, want %v", step.what, ev.list, step.want)
		}
		if !slices.Equal(k.Budgets, stored.Budgets) || !slices.Equal(k.AllowedModels, stored.AllowedModels) {
			t.Errorf("%s: returned %+v, stored %+v", step.what, k, stored)
		}
	}
	if len(stored.Budgets) != 0 || !slices.Equal(stored.AllowedModels, []string{"claude-*"}) || stored.Name != "renamed" {
		t.Errorf("final key %+v", stored)
	}

	// A failed write resets nothing.
	ev.list, failUpdate = nil, true
	if _, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: id, Budgets: set(admin.BudgetInput{Window: "day", LimitUSD: "1"})}); err == nil {
		t.Fatal("a failed store update succeeded")
	}
	if len(ev.list) != 0 {
		t.Errorf("calls after a failed update: %v", ev.list)
	}
	// An invalid budget is refused before anything is read.
	if _, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: id, Budgets: set(admin.BudgetInput{Window: "day", LimitUSD: "-1"})}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("invalid budget on update: %v", err)
	}
	if _, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: id, AllowedModels: &[]string{"a[b"}}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("invalid model on update: %v", err)
	}
}

func TestDeleteKeyResetsTheBudgetLedger(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	var reset []uuid.UUID
	st := &fakeStore{
		getKey:    func(context.Context, uuid.UUID) (domain.APIKey, error) { return domain.APIKey{ID: id}, nil },
		deleteKey: func(context.Context, uuid.UUID, time.Time) error { return nil },
	}
	ledger := &fakeBudgetLedger{reset: func(_ context.Context, got uuid.UUID) error {
		reset = append(reset, got)
		return errors.New("redis down") // logged, not returned: the key is deleted
	}}
	s := newMoneyService(t, st, moneyDeps{budgets: mustBudgets(t, ledger)})
	if err := s.DeleteKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(reset, []uuid.UUID{id}) {
		t.Errorf("reset %v, want [%s]", reset, id)
	}
}

func TestKeyQuotaShowsBudgets(t *testing.T) {
	t.Parallel()
	id := uuid.New()
	key := domain.APIKey{ID: id, RateLimitTier: "gone", IsActive: true, Budgets: []domain.KeyBudget{
		{Window: "5h", Limit: 10 * domain.NanosPerUSD}, {Window: "day", Limit: domain.NanosPerUSD, TimeZone: "Europe/Paris"},
	}}
	st := &fakeStore{
		getKey:  func(context.Context, uuid.UUID) (domain.APIKey, error) { return key, nil },
		getTier: func(context.Context, string) (domain.Tier, error) { return domain.Tier{}, domain.ErrNotFound },
	}
	seeded := false
	ledger := &fakeBudgetLedger{
		state: func(_ context.Context, _ uuid.UUID, bs []budget.Budget, at time.Time) ([]budget.Status, error) {
			if !seeded {
				return nil, ports.ErrUnseeded
			}
			out := make([]budget.Status, len(bs))
			for i, b := range bs {
				out[i] = b.Status(at, budget.Measure{Used: 250_000_000, Reserved: 50_000_000})
			}
			return out, nil
		},
		seed: func(context.Context, uuid.UUID, budget.History) error { seeded = true; return nil },
	}
	s := newMoneyService(t, st, moneyDeps{budgets: mustBudgets(t, ledger)})
	q, err := s.KeyQuota(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Budgets) != 2 || q.Budgets[0].Budget.Window != budget.Rolling5h || q.Budgets[1].Budget.TimeZone != "Europe/Paris" ||
		q.Budgets[1].Remaining() != 700_000_000 || q.Budgets[1].ResetsAt.IsZero() {
		t.Errorf("budgets %+v", q.Budgets)
	}
	// Without a budget ledger the view shows none.
	q, err = newMoneyService(t, st, moneyDeps{}).KeyQuota(context.Background(), id)
	if err != nil || len(q.Budgets) != 0 {
		t.Errorf("without a ledger: %+v %v", q.Budgets, err)
	}
}

func TestMoneyUseCasesWithoutPricesAreUnavailable(t *testing.T) {
	t.Parallel()
	s := newMoneyService(t, &fakeStore{}, moneyDeps{})
	ctx := context.Background()
	from, to := testNow.Add(-time.Hour), testNow
	calls := map[string]error{}
	_, calls["pricing"] = s.Pricing(ctx)
	_, calls["put"] = s.PutPrices(ctx, admin.PutPricesInput{Table: []byte(`{}`), Actor: "admin"})
	_, calls["extend"] = s.ExtendPrices(ctx, admin.ExtendPricesInput{Version: "v", Models: []byte(`[]`), Actor: "admin"})
	_, calls["versions"] = s.PriceVersions(ctx)
	_, calls["version"] = s.PriceVersion(ctx, "v")
	_, calls["reprice"] = s.Reprice(ctx, admin.RepriceInput{From: from, To: to})
	for name, err := range calls {
		if domain.KindOf(err) != domain.KindUnavailable {
			t.Errorf("%s: %v, want unavailable", name, err)
		}
	}
	// Applying needs a repricer even with prices.
	s = newMoneyService(t, &fakeStore{}, moneyDeps{prices: mustPrices(t, nil)})
	if _, err := s.Reprice(ctx, admin.RepriceInput{From: from, To: to, Apply: true}); domain.KindOf(err) != domain.KindUnavailable {
		t.Errorf("apply without a repricer: %v", err)
	}
}

// seedWith returns the seed table's JSON with its version replaced and
// change applied to its decoded form.
func seedWith(t *testing.T, version string, change func(map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(pricing.SeedJSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = version
	if change != nil {
		change(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPutAndExtendPrices(t *testing.T) {
	t.Parallel()
	store := &fakePriceStore{}
	s := newMoneyService(t, &fakeStore{}, moneyDeps{prices: mustPrices(t, store)})
	ctx := context.Background()
	seed, _ := pricing.Seed()
	v, err := s.Pricing(ctx)
	if err != nil || v.Table.Version != seed.Version {
		t.Fatalf("current: %v %v", v.Table, err)
	}

	v, err = s.PutPrices(ctx, admin.PutPricesInput{Table: seedWith(t, "ops-1", nil), Comment: "ours", Actor: "alice"})
	if err != nil || v.Table.Version != "ops-1" {
		t.Fatalf("put: %v %v", v.Table, err)
	}
	got, err := s.PriceVersion(ctx, "ops-1")
	if err != nil || got.CreatedBy != "alice" || got.Comment != "ours" || !json.Valid(got.Table) {
		t.Errorf("stored version: %+v %v", got, err)
	}
	if _, err := s.PutPrices(ctx, admin.PutPricesInput{Table: seedWith(t, "ops-1", nil), Actor: "alice"}); domain.KindOf(err) != domain.KindConflict {
		t.Errorf("same version again: %v, want conflict", err)
	}
	invalid := seedWith(t, "ops-bad", func(m map[string]any) {
		m["models"].([]any)[0].(map[string]any)["rates"] = map[string]any{"input": "1"}
	})
	_, err = s.PutPrices(ctx, admin.PutPricesInput{Table: invalid, Actor: "alice"})
	if de := domain.AsError(err); de == nil || de.Kind != domain.KindInvalid || !strings.Contains(de.Message, "missing output") {
		t.Errorf("invalid table: %v", err)
	}
	if _, err := s.PutPrices(ctx, admin.PutPricesInput{Table: seedWith(t, "ops-2", nil)}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("no actor: %v", err)
	}
	if _, err := s.PriceVersion(ctx, "nope"); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("unknown version: %v", err)
	}

	entry := `[{"id":"claude-test-1","rates":{"input":"1","output":"2","cache_write_5m":"1.25","cache_write_1h":"2","cache_read":"0.1"}},
		{"id":"claude-sonnet-4-5-20250929","patterns":["claude-sonnet-4-5-20*"],"rates":{"input":"4","output":"16","cache_write_5m":"5","cache_write_1h":"8","cache_read":"0.4"}}]`
	v, err = s.ExtendPrices(ctx, admin.ExtendPricesInput{Version: "ops-2", BaseVersion: "ops-1", Models: []byte(entry), Actor: "bob"})
	if err != nil {
		t.Fatalf("extend: %v", err)
	}
	if v.Table.Version != "ops-2" || len(v.Table.Models) != len(seed.Models)+1 {
		t.Errorf("extended table %s with %d models, want ops-2 with %d", v.Table.Version, len(v.Table.Models), len(seed.Models)+1)
	}
	if e, ok := v.Table.Entry("claude-sonnet-4-5-20250929"); !ok || e.Rates.Input != 4*pricing.USDPerMTok(domain.NanosPerUSD) {
		t.Errorf("replaced entry: %+v", e)
	}
	if _, ok := v.Table.Entry("claude-test-1"); !ok || v.Table.Source != seed.Source {
		t.Errorf("added entry missing, or the table's source lost")
	}
	for name, in := range map[string]admin.ExtendPricesInput{
		"stale base":     {Version: "ops-3", BaseVersion: "ops-1", Models: []byte(entry)},
		"stored version": {Version: "ops-2", Models: []byte(entry)},
	} {
		in.Actor = "bob"
		if _, err := s.ExtendPrices(ctx, in); domain.KindOf(err) != domain.KindConflict {
			t.Errorf("%s: %v, want conflict", name, err)
		}
	}
	for name, models := range map[string]string{
		"unknown field": `[{"id":"x","rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"},"colour":"red"}]`,
		"listed twice":  `[{"id":"x","rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}},{"id":"x","rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}}]`,
		"no id":         `[{"rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}}]`,
		"empty list":    `[]`,
		"not a list":    `{"id":"x"}`,
		"alias clash":   `[{"id":"y","aliases":["claude-test-1"],"rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}}]`,
	} {
		if _, err := s.ExtendPrices(ctx, admin.ExtendPricesInput{Version: "ops-9", Models: []byte(models), Actor: "bob"}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	vs, err := s.PriceVersions(ctx)
	if err != nil || len(vs) != 3 || vs[0].Version != "ops-2" || vs[0].CreatedBy != "bob" || vs[2].CreatedBy != billing.SeedActor {
		t.Errorf("versions: %+v %v", vs, err)
	}
}

func TestRepriceValidate(t *testing.T) {
	t.Parallel()
	bad := map[string]admin.RepriceInput{
		"no from":      {To: testNow},
		"no to":        {From: testNow},
		"to at from":   {From: testNow, To: testNow},
		"to before":    {From: testNow, To: testNow.Add(-time.Second)},
		"over 400days": {From: testNow, To: testNow.Add(admin.MaxRepriceRange + time.Second)},
	}
	for name, in := range bad {
		if err := in.Validate(); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if err := (admin.RepriceInput{From: testNow, To: testNow.Add(admin.MaxRepriceRange)}).Validate(); err != nil {
		t.Errorf("400 days: %v", err)
	}
}

// usageTable is an in-memory usage log that answers UsageLogs as the store
// does (newest first, [from, to), after the cursor) and applies cost
// updates whose Old still matches.
type usageTable struct {
	recs    []domain.UsageRecord // newest first
	queries int
	batches []int
}

func (u *usageTable) logs(_ context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	u.queries++
	if q.KeyID != nil || q.Model != nil || q.Status != nil {
		return nil, errors.New("reprice must read every record")
	}
	var out []domain.UsageRecord
	for _, r := range u.recs {
		if r.Time.Before(*q.From) || !r.Time.Before(*q.To) {
			continue
		}
		if a := q.After; a != nil && (r.Time.After(a.Time) || r.Time.Equal(a.Time) && r.RequestID >= a.RequestID) {
			continue
		}
		if out = append(out, r); len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

func (u *usageTable) update(_ context.Context, ups []ports.CostUpdate) (int, error) {
	u.batches = append(u.batches, len(ups))
	n := 0
	for _, up := range ups {
		for i := range u.recs {
			if u.recs[i].RequestID == up.RequestID && u.recs[i].Cost.Total == up.Old.Total && u.recs[i].Cost.PriceVersion == up.Old.PriceVersion {
				u.recs[i].Cost = up.New
				n++
			}
		}
	}
	return n, nil
}

func TestReprice(t *testing.T) {
	t.Parallel()
	seed, _ := pricing.Seed()
	keyA, keyB, keyC := uuid.New(), uuid.New(), uuid.New()
	current := func(r domain.UsageRecord) domain.RecordCost {
		c, err := seed.Price(pricing.FromRecord(r), pricing.Policy{})
		if err != nil {
			t.Fatal(err)
		}
		return pricing.RecordCostOf(c)
	}
	u := &usageTable{}
	base := testNow.Add(-time.Hour)
	add := func(r domain.UsageRecord) {
		r.Time = base.Add(-time.Duration(len(u.recs)) * time.Second)
		r.RequestID = fmt.Sprintf("req_%05d", len(u.recs))
		u.recs = append(u.recs, r)
	}
	sonnet := domain.Usage{InputTokens: 1000, OutputTokens: 100} // $0.003 + $0.0015 at $3/$15
	// 1,100 stale records of key A (three pages), priced at a made-up old table.
	for range 1100 {
		add(domain.UsageRecord{KeyID: keyA, Model: "claude-sonnet-4-5-20250929", Usage: sonnet,
			Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 2_000_000, Output: 1_000_000}, Total: 3_000_000, PriceVersion: "old"}})
	}
	// Already current: key B.
	fresh := domain.UsageRecord{KeyID: keyB, Model: "claude-sonnet-4-5-20250929", Usage: sonnet}
	fresh.Cost = current(fresh)
	add(fresh)
	// Never priced: key C, a web search only.
	add(domain.UsageRecord{KeyID: keyC, Model: "claude-haiku-4-5-20251001", ServerTools: domain.ServerToolUse{WebSearchRequests: 3}})
	// Keep their cost: a refusal without usage, an unreadable batch.
	add(domain.UsageRecord{KeyID: keyB, Status: 429, Cost: domain.RecordCost{PriceVersion: "old"}})
	add(domain.UsageRecord{KeyID: keyB, Model: "claude-sonnet-4-5-20250929", ErrorType: "batch_unreadable", Usage: domain.Usage{InputTokens: 500},
		Cost: domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 777}, Total: 777, PriceVersion: "old"}})
	// Outside the range.
	outside := domain.UsageRecord{KeyID: keyB, Model: "claude-sonnet-4-5-20250929", Usage: sonnet, Time: testNow.Add(time.Hour), RequestID: "req_future"}
	u.recs = append([]domain.UsageRecord{outside}, u.recs...)

	st := &fakeStore{usageLogs: u.logs}
	var reset []uuid.UUID
	ledger := &fakeBudgetLedger{reset: func(_ context.Context, id uuid.UUID) error { reset = append(reset, id); return nil }}
	rp := &fakeRepricer{update: u.update}
	s := newMoneyService(t, st, moneyDeps{prices: mustPrices(t, nil), budgets: mustBudgets(t, ledger), repricer: rp})
	ctx := context.Background()
	in := admin.RepriceInput{From: testNow.Add(-48 * time.Hour), To: testNow}

	// A dry run reports and writes nothing.
	r, err := s.Reprice(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	search := domain.Nanodollars(30_000_000) // 3 searches at $10 per 1,000
	wantOld := 1100*domain.Nanodollars(3_000_000) + fresh.Cost.Total + 777
	wantNew := 1100*domain.Nanodollars(4_500_000) + fresh.Cost.Total + search + 777
	if r.Examined != 1104 || r.Skipped != 2 || r.Changed != 1101 || r.Applied != 0 || r.KeysReset != 0 ||
		r.OldTotal != wantOld || r.NewTotal != wantNew || r.Difference() != wantNew-wantOld || r.PriceVersion != seed.Version {
		t.Errorf("dry run: %+v (want old %s new %s)", r, wantOld, wantNew)
	}
	if len(r.ByModel) != 2 || r.ByModel[0].Model != "claude-sonnet-4-5-20250929" || r.ByModel[0].Changed != 1100 ||
		r.ByModel[0].Difference() != 1100*1_500_000 || r.ByModel[1].Difference() != search {
		t.Errorf("by model: %+v", r.ByModel)
	}
	if len(u.batches) != 0 || len(reset) != 0 {
		t.Fatalf("a dry run wrote %v and reset %v", u.batches, reset)
	}

	// Apply writes in batches of at most 500 and resets the keys touched.
	in.Apply = true
	r, err = s.Reprice(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Changed != 1101 || r.Applied != 1101 || r.KeysReset != 2 {
		t.Errorf("apply: %+v", r)
	}
	for _, n := range u.batches {
		if n > 500 {
			t.Errorf("a batch of %d updates", n)
		}
	}
	slices.SortFunc(reset, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	want := []uuid.UUID{keyA, keyC}
	slices.SortFunc(want, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	if !slices.Equal(reset, want) {
		t.Errorf("reset %v, want %v", reset, want)
	}
	for _, rec := range u.recs {
		switch {
		case rec.RequestID == "req_future":
			if rec.Cost.PriceVersion != "" {
				t.Errorf("a record outside the range was repriced")
			}
		case rec.ErrorType == "batch_unreadable":
			if rec.Cost.Total != 777 || rec.Cost.PriceVersion != "old" {
				t.Errorf("the unreadable batch was repriced: %+v", rec.Cost)
			}
		case rec.Status == 429:
		default:
			if rec.Cost.PriceVersion != seed.Version {
				t.Errorf("%s not repriced: %+v", rec.RequestID, rec.Cost)
			}
		}
	}

	// Again: nothing to change, nothing written, nothing reset.
	batches, resets := len(u.batches), len(reset)
	r, err = s.Reprice(ctx, in)
	if err != nil || r.Changed != 0 || r.Applied != 0 || r.KeysReset != 0 || r.OldTotal != wantNew || r.NewTotal != wantNew || len(r.ByModel) != 0 {
		t.Errorf("second apply: %+v %v", r, err)
	}
	if len(u.batches) != batches || len(reset) != resets {
		t.Errorf("the second apply wrote or reset")
	}
}

func TestRepriceResetsWhatWasWrittenWhenAWriteFails(t *testing.T) {
	t.Parallel()
	key := uuid.New()
	u := &usageTable{}
	for i := range 700 {
		u.recs = append(u.recs, domain.UsageRecord{RequestID: fmt.Sprintf("req_%04d", 1000-i), KeyID: key,
			Time: testNow.Add(-time.Duration(i+1) * time.Second), Model: "claude-sonnet-4-5-20250929",
			Usage: domain.Usage{InputTokens: 10}})
	}
	calls := 0
	rp := &fakeRepricer{update: func(ctx context.Context, ups []ports.CostUpdate) (int, error) {
		if calls++; calls == 2 {
			return 0, errors.New("connection reset")
		}
		return u.update(ctx, ups)
	}}
	var reset []uuid.UUID
	ledger := &fakeBudgetLedger{reset: func(_ context.Context, id uuid.UUID) error { reset = append(reset, id); return nil }}
	s := newMoneyService(t, &fakeStore{usageLogs: u.logs}, moneyDeps{prices: mustPrices(t, nil), budgets: mustBudgets(t, ledger), repricer: rp})
	r, err := s.Reprice(context.Background(), admin.RepriceInput{From: testNow.Add(-time.Hour), To: testNow, Apply: true})
	if err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Fatalf("a failed write: %v", err)
	}
	if r.Applied != 500 || r.KeysReset != 1 || !slices.Equal(reset, []uuid.UUID{key}) {
		t.Errorf("after a failed second batch: applied %d, reset %v (%d)", r.Applied, reset, r.KeysReset)
	}
}

func TestAdminLogsFilters(t *testing.T) {
	t.Parallel()
	var got domain.LogQuery
	st := &fakeStore{usageLogs: func(_ context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) { got = q; return nil, nil }}
	s := newMoneyService(t, st, moneyDeps{})
	model, up := "claude-x", "primary"
	if _, err := s.AdminLogs(context.Background(), admin.LogsInput{Model: &model, Upstream: &up, RefusalsOnly: true}); err != nil {
		t.Fatal(err)
	}
	if got.Model == nil || *got.Model != model || got.Upstream == nil || *got.Upstream != up || !got.RefusalsOnly {
		t.Errorf("query %+v", got)
	}
	for _, bad := range []string{"", "a\x00b", "\xff", strings.Repeat("m", 257)} {
		if _, err := s.AdminLogs(context.Background(), admin.LogsInput{Model: &bad}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("model %q: %v", bad, err)
		}
	}
}

func TestUsageReportSumsCosts(t *testing.T) {
	t.Parallel()
	st := &fakeStore{usageTotals: func(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error) {
		return []domain.UsageTotals{
			{Group: "a", Requests: 1, Cost: domain.CostBreakdown{Input: 1, Output: 2}, CostTotal: 3},
			{Group: "b", Requests: 2, Cost: domain.CostBreakdown{WebSearch: 10_000_000}, CostTotal: 10_000_000},
		}, nil
	}}
	s := newMoneyService(t, st, moneyDeps{})
	r, err := s.AdminUsage(context.Background(), admin.AdminUsageInput{GroupBy: domain.GroupModel})
	if err != nil {
		t.Fatal(err)
	}
	if r.Totals.CostTotal != 10_000_003 || r.Totals.Cost.Input != 1 || r.Totals.Cost.WebSearch != 10_000_000 || len(r.Groups) != 2 {
		t.Errorf("totals %+v", r.Totals)
	}
}
