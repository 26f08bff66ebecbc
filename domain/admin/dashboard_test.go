package admin_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

// Use-case tests of what the dashboard asks beyond the single-key views:
// usage series, the key list's quota views, bulk disable and enable.

func TestUsageSeriesValidation(t *testing.T) {
	t.Parallel()
	st := &fakeStore{usageSeries: func(context.Context, domain.SeriesQuery) ([]domain.SeriesPoint, error) {
		t.Fatal("the store was asked for an invalid series")
		return nil, nil
	}}
	s := newService(t, st, nil, nil)
	h := testNow.Truncate(time.Hour)
	for name, in := range map[string]admin.SeriesInput{
		"no range":         {},
		"empty":            {From: h, To: h},
		"backwards":        {From: h, To: h.Add(-time.Hour)},
		"not whole hours":  {From: h.Add(time.Minute), To: h.Add(2 * time.Hour)},
		"bad step":         {From: h.Add(-time.Hour), To: h, Step: "week"},
		"93 days hourly":   {From: h.Add(-93 * 24 * time.Hour), To: h, Step: admin.StepHour},
		"four years daily": {From: h.AddDate(-4, 0, 0), To: h, Step: admin.StepDay},
	} {
		if _, err := s.UsageSeries(context.Background(), in); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
}

func TestUsageSeriesStepsAndTotals(t *testing.T) {
	t.Parallel()
	h := testNow.Truncate(time.Hour)
	// Two hours: the first with 3 fast answers, the second with one slow
	// answer and a refusal that never had a first byte.
	fast, slow := make([]int64, domain.TTFBBuckets), make([]int64, domain.TTFBBuckets)
	b100, _ := domain.TTFBBucket(100 * time.Millisecond)
	b4s, _ := domain.TTFBBucket(4 * time.Second)
	fast[b100], slow[b4s] = 3, 1
	pts := []domain.SeriesPoint{
		{Start: h.Add(-2 * time.Hour), Requests: 3, Usage: domain.Usage{InputTokens: 30}, Cost: 300, CacheSaved: 7,
			Status: domain.StatusCounts{OK: 3}, TTFB: fast},
		{Start: h.Add(-time.Hour), Requests: 2, Usage: domain.Usage{OutputTokens: 5}, Cost: 50,
			Status: domain.StatusCounts{OK: 1, RateLimited: 1, Refused: 1}, TTFB: slow},
	}
	var asked []domain.SeriesQuery
	st := &fakeStore{usageSeries: func(_ context.Context, q domain.SeriesQuery) ([]domain.SeriesPoint, error) {
		asked = append(asked, q)
		return pts, nil
	}}
	s := newService(t, st, nil, nil)
	ctx := context.Background()

	week, err := s.UsageSeries(ctx, admin.SeriesInput{From: h.Add(-7 * 24 * time.Hour), To: h})
	if err != nil {
		t.Fatal(err)
	}
	month, err := s.UsageSeries(ctx, admin.SeriesInput{From: h.Add(-30 * 24 * time.Hour), To: h})
	if err != nil {
		t.Fatal(err)
	}
	hourly, err := s.UsageSeries(ctx, admin.SeriesInput{From: h.Add(-90 * 24 * time.Hour), To: h, Step: admin.StepHour})
	if err != nil {
		t.Fatal(err)
	}
	if week.Step != admin.StepHour || month.Step != admin.StepDay || hourly.Step != admin.StepHour {
		t.Errorf("steps %s, %s, %s; want hour (7 days), day (30 days), hour (asked)", week.Step, month.Step, hourly.Step)
	}
	if asked[0].Step != time.Hour || asked[1].Step != 24*time.Hour || asked[2].Step != time.Hour {
		t.Errorf("store asked with steps %v, %v, %v", asked[0].Step, asked[1].Step, asked[2].Step)
	}

	tot := week.Totals
	if tot.Requests != 5 || tot.Usage.Total() != 35 || tot.Cost != 350 || tot.CacheSaved != 7 ||
		tot.Status != (domain.StatusCounts{OK: 4, RateLimited: 1, Refused: 1}) || tot.TTFBSamples != 4 {
		t.Errorf("totals %+v", tot)
	}
	// The median of the merged histogram is among the fast answers, its
	// 95th percentile the slow one; neither is an average of the points'.
	if tot.TTFBP50 <= 63*time.Millisecond || tot.TTFBP50 > 100*time.Millisecond {
		t.Errorf("p50 %v, want within the 100 ms bucket", tot.TTFBP50)
	}
	if tot.TTFBP95 <= 2500*time.Millisecond || tot.TTFBP95 > 4*time.Second {
		t.Errorf("p95 %v, want within the 4 s bucket", tot.TTFBP95)
	}
	if len(week.Points) != 2 || week.Points[1].TTFBP50 != pts[1].TTFBQuantile(0.5) || week.Points[0].TTFBSamples != 3 {
		t.Errorf("points %+v", week.Points)
	}

	st.usageSeries = func(context.Context, domain.SeriesQuery) ([]domain.SeriesPoint, error) {
		return nil, errors.New("disk on fire")
	}
	if _, err := s.UsageSeries(ctx, admin.SeriesInput{From: h.Add(-time.Hour), To: h}); err == nil || domain.KindOf(err) != domain.KindInternal {
		t.Errorf("a store failure: %v", err)
	}
}

// listStore serves keys from a slice and records updates.
func listStore(keys []domain.APIKey) *fakeStore {
	var mu sync.Mutex
	byID := map[uuid.UUID]domain.APIKey{}
	for _, k := range keys {
		byID[k.ID] = k
	}
	return &fakeStore{
		listKeys: func(context.Context, domain.KeyFilter) ([]domain.APIKey, error) { return keys, nil },
		getKey: func(_ context.Context, id uuid.UUID) (domain.APIKey, error) {
			mu.Lock()
			defer mu.Unlock()
			k, ok := byID[id]
			if !ok {
				return domain.APIKey{}, domain.ErrNotFound
			}
			return k, nil
		},
		updateKey: func(_ context.Context, k domain.APIKey, prev time.Time) error {
			mu.Lock()
			defer mu.Unlock()
			if byID[k.ID].UpdatedAt != prev {
				return ports.ErrStale
			}
			byID[k.ID] = k
			return nil
		},
	}
}

func TestListKeysQuotaViews(t *testing.T) {
	t.Parallel()
	limit := int64(1000)
	plain := domain.APIKey{ID: uuid.New(), Name: "plain", TokensUsed: 5}
	limited := domain.APIKey{ID: uuid.New(), Name: "limited", TokenLimit: &limit, TokensUsed: 100}
	budgeted := domain.APIKey{ID: uuid.New(), Name: "budgeted", TokensUsed: 7,
		Budgets: []domain.KeyBudget{{Window: "total", Limit: 5 * domain.NanosPerUSD}}}
	broken := domain.APIKey{ID: uuid.New(), Name: "broken", TokenLimit: &limit}
	st := listStore([]domain.APIKey{plain, limited, budgeted, broken})
	st.getTier = func(context.Context, string) (domain.Tier, error) { return domain.Tier{}, domain.ErrNotFound }

	var tokenReads atomic.Int64
	ledger := &fakeLedger{state: func(_ context.Context, id uuid.UUID, seed int64) (domain.QuotaState, error) {
		tokenReads.Add(1)
		switch id {
		case limited.ID:
			return domain.QuotaState{Used: 150, Reserved: 20}, nil
		case broken.ID:
			return domain.QuotaState{}, errors.New("redis: connection refused")
		}
		t.Errorf("the token ledger was read for %s, which has no limit", id)
		return domain.QuotaState{}, nil
	}}
	var budgetReads atomic.Int64
	bl := &fakeBudgetLedger{state: func(_ context.Context, id uuid.UUID, bs []budget.Budget, at time.Time) ([]budget.Status, error) {
		budgetReads.Add(1)
		if id != budgeted.ID {
			t.Errorf("the budget ledger was read for %s, which has no budgets", id)
		}
		return []budget.Status{{Budget: bs[0], Used: domain.NanosPerUSD, Reserved: 1000}}, nil
	}}
	logs := &bytes.Buffer{}
	d := admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}, Hasher: domain.NewKeyHasher([]byte("k")),
		LoginThrottle: newFakeThrottleStore(), Ledger: ledger, Budgets: mustBudgets(t, bl),
		Log: slog.New(slog.NewTextHandler(logs, nil))}
	s, err := admin.NewService(d, admin.Config{AdminUsername: "admin", AdminPasswordHash: testHash, MaxPasswordChecks: 4,
		LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}

	page, err := s.ListKeys(context.Background(), admin.ListKeysInput{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Quotas) != 4 {
		t.Fatalf("%d quota views for 4 keys", len(page.Quotas))
	}
	if q := page.Quotas[0]; q == nil || q.TokensUsed != 5 || q.TokensRemaining != nil || q.UsageRatio != nil || len(q.Budgets) != 0 {
		t.Errorf("plain: %+v", q)
	}
	if q := page.Quotas[1]; q == nil || q.TokensUsed != 150 || q.TokensReserved != 20 || *q.TokensRemaining != 830 || *q.UsageRatio != 0.15 {
		t.Errorf("limited: %+v", q)
	}
	if q := page.Quotas[2]; q == nil || len(q.Budgets) != 1 || q.Budgets[0].Used != domain.NanosPerUSD || q.Budgets[0].Remaining() != 4*domain.NanosPerUSD-1000 {
		t.Errorf("budgeted: %+v", q)
	}
	if page.Quotas[3] != nil {
		t.Errorf("broken: %+v, want no view", page.Quotas[3])
	}
	if tokenReads.Load() != 2 || budgetReads.Load() != 1 {
		t.Errorf("%d token and %d budget ledger reads, want 2 and 1", tokenReads.Load(), budgetReads.Load())
	}
	if !strings.Contains(logs.String(), "quota views unavailable") || strings.Count(logs.String(), "\n") != 1 {
		t.Errorf("want one warning for the broken key, logged:\n%s", logs)
	}

	// The per-key view agrees with the list's.
	q, err := s.KeyQuota(context.Background(), limited.ID)
	if err != nil {
		t.Fatal(err)
	}
	if q.QuotaView.TokensUsed != page.Quotas[1].TokensUsed || *q.TokensRemaining != *page.Quotas[1].TokensRemaining {
		t.Errorf("quota %+v, list %+v", q.QuotaView, *page.Quotas[1])
	}
}

func TestBulkKeys(t *testing.T) {
	t.Parallel()
	on := domain.APIKey{ID: uuid.New(), Name: "on", IsActive: true, UpdatedAt: testNow.Add(-time.Hour)}
	off := domain.APIKey{ID: uuid.New(), Name: "off", IsActive: false, UpdatedAt: testNow.Add(-time.Hour)}
	missing := uuid.New()
	st := listStore([]domain.APIKey{on, off})
	cache := &fakeCache{}
	logs := &bytes.Buffer{}
	d := admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}, Hasher: domain.NewKeyHasher([]byte("k")),
		LoginThrottle: newFakeThrottleStore(), Cache: cache, Log: slog.New(slog.NewTextHandler(logs, nil))}
	s, err := admin.NewService(d, admin.Config{AdminUsername: "admin", AdminPasswordHash: testHash, MaxPasswordChecks: 4,
		LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	r, err := s.BulkKeys(ctx, admin.BulkKeysInput{Action: admin.BulkDisable, IDs: []uuid.UUID{on.ID, missing, off.ID, on.ID}, Actor: "root"})
	if err != nil {
		t.Fatal(err)
	}
	want := []admin.BulkKeyResult{
		{ID: on.ID, Outcome: admin.BulkOK, Changed: true},
		{ID: missing, Outcome: admin.BulkNotFound},
		{ID: off.ID, Outcome: admin.BulkOK, Changed: false},
	}
	if len(r.Results) != len(want) || r.OK != 2 || r.NotFound != 1 || r.Action != admin.BulkDisable {
		t.Fatalf("report %+v", r)
	}
	for i := range want {
		if r.Results[i] != want[i] {
			t.Errorf("result %d: %+v, want %+v", i, r.Results[i], want[i])
		}
	}
	if k, _ := st.getKey(ctx, on.ID); k.IsActive {
		t.Error("the active key was not disabled")
	}
	// Only the changed key was written, and dropped from the cache.
	if len(cache.invalidated) != 1 || cache.invalidated[0] != on.ID {
		t.Errorf("invalidated %v", cache.invalidated)
	}
	for _, want := range []string{`msg="api key disabled" key_id=` + on.ID.String() + ` name=on by=root via=bulk`,
		`msg="bulk key action" action=disable by=root keys=3 changed=1 not_found=1`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no audit line %q in:\n%s", want, logs)
		}
	}

	if r, err := s.BulkKeys(ctx, admin.BulkKeysInput{Action: admin.BulkEnable, IDs: []uuid.UUID{on.ID, off.ID}}); err != nil ||
		r.OK != 2 || !r.Results[0].Changed || !r.Results[1].Changed {
		t.Errorf("enable: %+v %v", r, err)
	}

	tooMany := make([]uuid.UUID, admin.MaxBulkKeys+1)
	for i := range tooMany {
		tooMany[i] = uuid.New()
	}
	for name, in := range map[string]admin.BulkKeysInput{
		"bad action": {Action: "delete", IDs: []uuid.UUID{on.ID}},
		"no ids":     {Action: admin.BulkEnable},
		"too many":   {Action: admin.BulkEnable, IDs: tooMany},
		"nil id":     {Action: admin.BulkEnable, IDs: []uuid.UUID{uuid.Nil}},
	} {
		if _, err := s.BulkKeys(ctx, in); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}

	// A store failure stops the call with the error (the caller repeats it).
	st.getKey = func(context.Context, uuid.UUID) (domain.APIKey, error) { return domain.APIKey{}, errors.New("db gone") }
	if _, err := s.BulkKeys(ctx, admin.BulkKeysInput{Action: admin.BulkEnable, IDs: []uuid.UUID{on.ID}}); err == nil ||
		domain.KindOf(err) != domain.KindInternal {
		t.Errorf("store failure: %v", err)
	}
}
