package admin_test

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

// Test doubles built from function fields; a nil field panics if called,
// so each test states exactly what it expects to be used.

type fakeStore struct {
	createKey   func(context.Context, domain.APIKey) error
	getKey      func(context.Context, uuid.UUID) (domain.APIKey, error)
	listKeys    func(context.Context, domain.KeyFilter) ([]domain.APIKey, error)
	updateKey   func(ctx context.Context, k domain.APIKey, prev time.Time) error
	deleteKey   func(context.Context, uuid.UUID, time.Time) error
	listTiers   func(context.Context) ([]domain.Tier, error)
	getTier     func(context.Context, string) (domain.Tier, error)
	deleteTier  func(context.Context, string) error
	seedTiers   func(context.Context, []domain.Tier) error
	usageTotals func(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error)
	usageLogs   func(context.Context, domain.LogQuery) ([]domain.UsageRecord, error)
	usageSeries func(context.Context, domain.SeriesQuery) ([]domain.SeriesPoint, error)
}

var (
	_ ports.KeyStore   = (*fakeStore)(nil)
	_ ports.TierStore  = (*fakeStore)(nil)
	_ ports.UsageStore = (*fakeStore)(nil)
)

func (f *fakeStore) CreateKey(ctx context.Context, k domain.APIKey) error { return f.createKey(ctx, k) }
func (f *fakeStore) GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	return f.getKey(ctx, id)
}
func (f *fakeStore) GetKeyByHash(context.Context, string) (domain.APIKey, error) {
	panic("unexpected GetKeyByHash")
}
func (f *fakeStore) ListKeys(ctx context.Context, kf domain.KeyFilter) ([]domain.APIKey, error) {
	return f.listKeys(ctx, kf)
}
func (f *fakeStore) UpdateKey(ctx context.Context, k domain.APIKey, prev time.Time) error {
	return f.updateKey(ctx, k, prev)
}
func (f *fakeStore) DeleteKey(ctx context.Context, id uuid.UUID, at time.Time) error {
	return f.deleteKey(ctx, id, at)
}
func (f *fakeStore) ListTiers(ctx context.Context) ([]domain.Tier, error) { return f.listTiers(ctx) }
func (f *fakeStore) GetTier(ctx context.Context, name string) (domain.Tier, error) {
	return f.getTier(ctx, name)
}
func (f *fakeStore) UpsertTier(context.Context, domain.Tier) error { panic("unexpected UpsertTier") }
func (f *fakeStore) DeleteTier(ctx context.Context, name string) error {
	return f.deleteTier(ctx, name)
}
func (f *fakeStore) SeedTiers(ctx context.Context, ts []domain.Tier) error {
	return f.seedTiers(ctx, ts)
}
func (f *fakeStore) InsertUsage(context.Context, []domain.UsageRecord) error {
	panic("unexpected InsertUsage")
}
func (f *fakeStore) UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
	return f.usageTotals(ctx, q)
}
func (f *fakeStore) UsageLogs(ctx context.Context, q domain.LogQuery) ([]domain.UsageRecord, error) {
	return f.usageLogs(ctx, q)
}
func (f *fakeStore) UsageSeries(ctx context.Context, q domain.SeriesQuery) ([]domain.SeriesPoint, error) {
	return f.usageSeries(ctx, q)
}

type fakeCache struct{ invalidated []uuid.UUID }

var _ ports.KeyLookup = (*fakeCache)(nil)

func (f *fakeCache) LookupKey(context.Context, string) (domain.APIKey, error) {
	panic("unexpected LookupKey")
}
func (f *fakeCache) Invalidate(id uuid.UUID) { f.invalidated = append(f.invalidated, id) }

type fakeLedger struct {
	reset func(context.Context, uuid.UUID) error
	state func(context.Context, uuid.UUID, int64) (domain.QuotaState, error)
}

var _ ports.QuotaLedger = (*fakeLedger)(nil)

func (f *fakeLedger) Reserve(context.Context, uuid.UUID, string, int64, int64, int64, time.Duration) (domain.QuotaState, error) {
	panic("unexpected Reserve")
}
func (f *fakeLedger) Settle(context.Context, uuid.UUID, string, int64) error {
	panic("unexpected Settle")
}
func (f *fakeLedger) State(ctx context.Context, id uuid.UUID, seed int64) (domain.QuotaState, error) {
	return f.state(ctx, id, seed)
}
func (f *fakeLedger) Reset(ctx context.Context, id uuid.UUID) error { return f.reset(ctx, id) }
func (f *fakeLedger) Extend(context.Context, uuid.UUID, string, time.Duration) error {
	panic("not expected")
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type fakeBudgetLedger struct {
	state func(context.Context, uuid.UUID, []budget.Budget, time.Time) ([]budget.Status, error)
	seed  func(context.Context, uuid.UUID, budget.History) error
	reset func(context.Context, uuid.UUID) error
}

var _ ports.BudgetLedger = (*fakeBudgetLedger)(nil)

func (f *fakeBudgetLedger) Reserve(context.Context, uuid.UUID, string, []budget.Budget, domain.Nanodollars, time.Time, time.Duration) ([]budget.Status, error) {
	panic("unexpected Reserve")
}
func (f *fakeBudgetLedger) Settle(context.Context, uuid.UUID, string, domain.Nanodollars, time.Time) error {
	panic("unexpected Settle")
}
func (f *fakeBudgetLedger) Extend(context.Context, uuid.UUID, string, time.Duration) error {
	panic("unexpected Extend")
}
func (f *fakeBudgetLedger) State(ctx context.Context, id uuid.UUID, bs []budget.Budget, at time.Time) ([]budget.Status, error) {
	return f.state(ctx, id, bs, at)
}
func (f *fakeBudgetLedger) Seed(ctx context.Context, id uuid.UUID, h budget.History) error {
	return f.seed(ctx, id, h)
}
func (f *fakeBudgetLedger) Reset(ctx context.Context, id uuid.UUID) error { return f.reset(ctx, id) }

type fakeSpend struct {
	history func(context.Context, uuid.UUID, time.Time) (budget.History, error)
}

var _ ports.SpendStore = (*fakeSpend)(nil)

func (f *fakeSpend) SpendHistory(ctx context.Context, id uuid.UUID, asOf time.Time) (budget.History, error) {
	return f.history(ctx, id, asOf)
}

// fakePriceStore keeps versions in memory, newest last; it is a real
// implementation of the contract rather than a script, so billing.Prices
// behaves against it as against a database.
type fakePriceStore struct {
	mu       sync.Mutex
	versions []ports.PriceTableVersion
}

var _ ports.PriceStore = (*fakePriceStore)(nil)

func (f *fakePriceStore) PutPriceTable(_ context.Context, v ports.PriceTableVersion) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.versions {
		if o.Version == v.Version {
			return domain.Errorf(domain.KindConflict, "version %q exists", v.Version)
		}
	}
	f.versions = append(f.versions, v)
	return nil
}
func (f *fakePriceStore) CurrentPriceTable(context.Context) (ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.versions) == 0 {
		return ports.PriceTableVersion{}, domain.ErrNotFound
	}
	return f.versions[len(f.versions)-1], nil
}
func (f *fakePriceStore) GetPriceTable(_ context.Context, version string) (ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.versions {
		if v.Version == version {
			return v, nil
		}
	}
	return ports.PriceTableVersion{}, domain.ErrNotFound
}
func (f *fakePriceStore) ListPriceTables(context.Context) ([]ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ports.PriceTableVersion, 0, len(f.versions))
	for i := len(f.versions) - 1; i >= 0; i-- {
		v := f.versions[i]
		v.Table = nil
		out = append(out, v)
	}
	return out, nil
}

type fakeRepricer struct {
	update func(context.Context, []ports.CostUpdate) (int, error)
}

var _ ports.UsageRepricer = (*fakeRepricer)(nil)

func (f *fakeRepricer) UpdateUsageCosts(ctx context.Context, u []ports.CostUpdate) (int, error) {
	return f.update(ctx, u)
}
