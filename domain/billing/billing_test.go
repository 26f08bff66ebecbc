package billing

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// priceStoreFake keeps versions in order; the real stores run the same
// contract in adapters/storetest.
type priceStoreFake struct {
	mu sync.Mutex
	vs []ports.PriceTableVersion
}

func (f *priceStoreFake) PutPriceTable(_ context.Context, v ports.PriceTableVersion) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, o := range f.vs {
		if o.Version == v.Version {
			return domain.Errorf(domain.KindConflict, "version %s exists", v.Version)
		}
	}
	f.vs = append(f.vs, v)
	return nil
}

func (f *priceStoreFake) CurrentPriceTable(context.Context) (ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.vs) == 0 {
		return ports.PriceTableVersion{}, domain.ErrNotFound
	}
	return f.vs[len(f.vs)-1], nil
}

func (f *priceStoreFake) GetPriceTable(_ context.Context, version string) (ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, v := range f.vs {
		if v.Version == version {
			return v, nil
		}
	}
	return ports.PriceTableVersion{}, domain.ErrNotFound
}

func (f *priceStoreFake) ListPriceTables(context.Context) ([]ports.PriceTableVersion, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]ports.PriceTableVersion, len(f.vs))
	for i, v := range f.vs {
		v.Table = nil
		out[len(f.vs)-1-i] = v
	}
	return out, nil
}

var _ ports.PriceStore = (*priceStoreFake)(nil)

// withVersion is the seed JSON under another version, with one price
// changed when input is set.
func withVersion(t *testing.T, version, input string) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(pricing.SeedJSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = version
	if input != "" {
		for _, e := range m["models"].([]any) {
			e := e.(map[string]any)
			if e["id"] == "claude-sonnet-4-5-20250929" {
				e["rates"].(map[string]any)["input"] = input
			}
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPricesSeedAndVersions(t *testing.T) {
	ctx := context.Background()
	seed, err := pricing.Seed()
	if err != nil {
		t.Fatal(err)
	}
	store := &priceStoreFake{}
	p, err := NewPrices(ctx, store, seed, pricing.Policy{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.vs) != 1 || store.vs[0].Version != seed.Version || store.vs[0].CreatedBy != SeedActor {
		t.Fatalf("first start stored %+v, want the seed", store.vs)
	}
	// A second start stores nothing again.
	if _, err := NewPrices(ctx, store, seed, pricing.Policy{}, nil, nil); err != nil || len(store.vs) != 1 {
		t.Fatalf("restart: %v, %d versions", err, len(store.vs))
	}

	// An operator's version becomes current, and is never overwritten by a
	// seed again.
	if _, err := p.Put(ctx, PutInput{Table: withVersion(t, "ops-1", "4"), Actor: "admin", Comment: "raise sonnet"}); err != nil {
		t.Fatal(err)
	}
	if v := p.Table().Version; v != "ops-1" {
		t.Fatalf("current %s after Put", v)
	}
	m, _ := p.Table().Lookup("claude-sonnet-4-5")
	if m.Entry.Rates.Input != 4*pricing.NanosPerUSD {
		t.Fatalf("input rate %s", m.Entry.Rates.Input)
	}
	if _, err := p.Put(ctx, PutInput{Table: withVersion(t, "ops-1", "5"), Actor: "admin"}); domain.KindOf(err) != domain.KindConflict {
		t.Fatalf("a stored version again: %v, want a conflict", err)
	}
	if _, err := p.Put(ctx, PutInput{Table: []byte(`{"version":"bad","models":[{"id":"x"}]}`), Actor: "admin"}); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("an invalid table: %v, want invalid", err)
	}
	newer := *seed
	newer.Version = "2099-01-01.1"
	p2, err := NewPrices(ctx, store, &newer, pricing.Policy{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p2.Table().Version != "ops-1" || len(store.vs) != 2 {
		t.Fatalf("a newer seed replaced the operator's table: %s, %d versions", p2.Table().Version, len(store.vs))
	}
	vs, err := p.Versions(ctx)
	if err != nil || len(vs) != 2 || vs[0].Version != "ops-1" || vs[0].CreatedBy != "admin" || vs[0].Comment != "raise sonnet" {
		t.Fatalf("versions %+v %v", vs, err)
	}
}

func TestNewerSeedReplacesAnOlderSeed(t *testing.T) {
	ctx := context.Background()
	seed, _ := pricing.Seed()
	store := &priceStoreFake{}
	if _, err := NewPrices(ctx, store, seed, pricing.Policy{}, nil, nil); err != nil {
		t.Fatal(err)
	}
	// An upgrade brings a newer embedded seed: it is stored and current.
	// (The fake's Parse of the stored JSON reads the real seed's bytes,
	// whose version is the old one, so this checks the decision only.)
	newer := *seed
	newer.Version = "2099-01-01.1"
	_, err := NewPrices(ctx, store, &newer, pricing.Policy{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(store.vs) != 2 || store.vs[1].Version != "2099-01-01.1" || store.vs[1].CreatedBy != SeedActor {
		t.Fatalf("versions %+v", store.vs)
	}
}

func TestPricesRefreshFollowsTheStore(t *testing.T) {
	ctx := context.Background()
	seed, _ := pricing.Seed()
	store := &priceStoreFake{}
	a, _ := NewPrices(ctx, store, seed, pricing.Policy{}, nil, nil)
	b, _ := NewPrices(ctx, store, seed, pricing.Policy{}, nil, nil)
	if _, err := a.Put(ctx, PutInput{Table: withVersion(t, "ops-2", ""), Actor: "admin"}); err != nil {
		t.Fatal(err)
	}
	if b.Table().Version == "ops-2" {
		t.Fatal("replica b changed before refreshing")
	}
	if err := b.Refresh(ctx); err != nil || b.Table().Version != "ops-2" {
		t.Fatalf("after refresh: %s, %v", b.Table().Version, err)
	}
	// A stored version that does not parse is logged and skipped.
	_ = store.PutPriceTable(ctx, ports.PriceTableVersion{Version: "broken", Table: []byte(`{`), CreatedAt: time.Now()})
	if err := b.Refresh(ctx); err != nil || b.Table().Version != "ops-2" {
		t.Fatalf("after a broken version: %s, %v", b.Table().Version, err)
	}
}

func TestUnpricedModelsAreBounded(t *testing.T) {
	seed, _ := pricing.Seed()
	p, _ := NewPrices(context.Background(), nil, seed, pricing.Policy{}, nil, nil)
	for i := range maxUnpricedModels + 50 {
		p.NoteUnpriced("claude-unknown-" + string(rune('a'+i%26)) + string(rune('a'+i/26)))
	}
	u := p.Unpriced()
	if len(u) != maxUnpricedModels {
		t.Fatalf("%d unpriced models kept, want %d", len(u), maxUnpricedModels)
	}
}

func TestNewBudgetsChecksItsInputs(t *testing.T) {
	if _, err := NewBudgets(nil, nil, nil, ""); err == nil {
		t.Fatal("NewBudgets without ports")
	}
	if _, err := NewBudgets(nopLedger{}, nopSpend{}, nil, "Mars/Olympus"); err == nil {
		t.Fatal("a bad default zone was accepted")
	}
}

type nopLedger struct{ ports.BudgetLedger }
type nopSpend struct{ ports.SpendStore }
