package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// SeedActor is the CreatedBy of a version stored from the embedded seed.
const SeedActor = "seed"

// DefaultPriceRefresh is how stale a replica's price table may be: a
// version stored through another replica's admin API applies within it.
const DefaultPriceRefresh = 5 * time.Second

// maxUnpricedModels bounds the unpriced models remembered for admins.
const maxUnpricedModels = 100

// Prices is the current price table and the policy for models it does not
// price. The table is read on every request without a lock (an atomic
// pointer); Refresh replaces it when the store's newest version changed.
type Prices struct {
	store  ports.PriceStore // nil: the seed only
	policy pricing.Policy
	clock  ports.Clock
	log    *slog.Logger

	cur       atomic.Pointer[pricing.Table]
	refreshMu sync.Mutex

	unpricedMu sync.Mutex
	unpriced   map[string]*UnpricedModel
}

// UnpricedModel is a model requested that the table did not price.
type UnpricedModel struct {
	Model     string
	Requests  int64
	FirstSeen time.Time
	LastSeen  time.Time
}

// NewPrices starts from the newest stored version, storing the embedded
// seed first when the store holds none, or when the newest stored version
// is an older seed (an upgrade brings newer prices, unless an operator
// stored a table of their own since). The policy must be valid for every
// table stored later too: a fallback model that a new version drops is
// refused by Put.
func NewPrices(ctx context.Context, store ports.PriceStore, seed *pricing.Table, policy pricing.Policy, clock ports.Clock, log *slog.Logger) (*Prices, error) {
	if seed == nil {
		return nil, errors.New("billing: NewPrices needs the seed table")
	}
	if clock == nil {
		clock = ports.SystemClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Prices{store: store, policy: policy, clock: clock, log: log, unpriced: map[string]*UnpricedModel{}}
	if err := policy.Validate(seed); err != nil {
		return nil, err
	}
	p.cur.Store(seed)
	if store == nil {
		return p, nil
	}
	cur, err := store.CurrentPriceTable(ctx)
	switch {
	case errors.Is(err, domain.ErrNotFound) || err == nil && cur.CreatedBy == SeedActor && cur.Version != seed.Version:
		if err == nil {
			if _, gerr := store.GetPriceTable(ctx, seed.Version); gerr == nil {
				break // this seed was stored before; an older one is newer in the store's order: keep the store's
			}
		}
		v := ports.PriceTableVersion{Version: seed.Version, Table: pricing.SeedJSON(), CreatedAt: clock.Now().UTC(), CreatedBy: SeedActor,
			Comment: "embedded seed: " + seed.Source + " retrieved " + seed.Retrieved}
		if perr := store.PutPriceTable(ctx, v); perr != nil && domain.KindOf(perr) != domain.KindConflict {
			return nil, fmt.Errorf("store the seed price table: %w", perr)
		}
	case err != nil:
		return nil, fmt.Errorf("read the current price table: %w", err)
	case cur.Version != seed.Version:
		log.Info("an operator's price table is current; the embedded seed is not applied",
			slog.String("current", cur.Version), slog.String("seed", seed.Version))
	}
	if err := p.Refresh(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Table is the current price table.
func (p *Prices) Table() *pricing.Table { return p.cur.Load() }

// Policy is the policy for unpriced models.
func (p *Prices) Policy() pricing.Policy { return p.policy }

// Refresh loads the store's newest version when it differs from the
// current one. A stored version that no longer parses (or that the
// policy's fallback does not fit) is logged and the current table kept.
func (p *Prices) Refresh(ctx context.Context) error {
	if p.store == nil {
		return nil
	}
	p.refreshMu.Lock()
	defer p.refreshMu.Unlock()
	v, err := p.store.CurrentPriceTable(ctx)
	if errors.Is(err, domain.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the current price table: %w", err)
	}
	if v.Version == p.cur.Load().Version {
		return nil
	}
	t, err := p.parse(v)
	if err != nil {
		p.log.Error("the stored price table is invalid; keeping the previous one",
			slog.String("version", v.Version), slog.String("error", err.Error()))
		return nil
	}
	p.cur.Store(t)
	p.log.Info("price table loaded", slog.String("version", t.Version), slog.Int("models", len(t.Models)))
	return nil
}

func (p *Prices) parse(v ports.PriceTableVersion) (*pricing.Table, error) {
	t, err := pricing.Parse(v.Table)
	if err != nil {
		return nil, err
	}
	if t.Version != v.Version {
		return nil, domain.Invalidf("price table version %q is stored as %q", t.Version, v.Version)
	}
	if err := p.policy.Validate(t); err != nil {
		return nil, err
	}
	return t, nil
}

// RefreshEvery refreshes the table every interval until ctx ends.
func (p *Prices) RefreshEvery(ctx context.Context, interval time.Duration) {
	if p.store == nil || interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := p.Refresh(ctx); err != nil && ctx.Err() == nil {
				p.log.Warn("price table refresh failed", slog.String("error", err.Error()))
			}
		}
	}
}

// PutInput stores a new version of the price table.
type PutInput struct {
	// Table is the whole table as JSON (domain/pricing's format). Its
	// version must be new.
	Table   []byte
	Actor   string
	Comment string
}

// Validate checks the input's own fields.
func (in PutInput) Validate() error {
	if len(in.Table) == 0 {
		return domain.Invalidf("the price table is required")
	}
	if len(in.Table) > 4<<20 {
		return domain.Invalidf("the price table is larger than 4 MiB")
	}
	if len(in.Comment) > 1000 {
		return domain.Invalidf("comment is longer than 1000 bytes")
	}
	return nil
}

// Put validates and stores a new version, which becomes current at once
// on this replica (and within DefaultPriceRefresh on the others). Stored
// versions are never changed: a version already stored is a conflict.
func (p *Prices) Put(ctx context.Context, in PutInput) (*pricing.Table, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	if p.store == nil {
		return nil, &domain.Error{Kind: domain.KindUnavailable, Message: "this relay has no price store"}
	}
	t, err := pricing.Parse(in.Table)
	if err != nil {
		return nil, err
	}
	if err := p.policy.Validate(t); err != nil {
		return nil, err
	}
	v := ports.PriceTableVersion{Version: t.Version, Table: in.Table, CreatedAt: p.clock.Now().UTC(), CreatedBy: in.Actor, Comment: in.Comment}
	if err := p.store.PutPriceTable(ctx, v); err != nil {
		if domain.KindOf(err) == domain.KindConflict {
			return nil, &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("price table version %q is already stored; give the new table a new version", t.Version), Err: err}
		}
		return nil, fmt.Errorf("store price table: %w", err)
	}
	if err := p.Refresh(ctx); err != nil {
		return nil, err
	}
	return t, nil
}

// Versions lists the stored versions, newest first (Table left out).
func (p *Prices) Versions(ctx context.Context) ([]ports.PriceTableVersion, error) {
	if p.store == nil {
		t := p.Table()
		return []ports.PriceTableVersion{{Version: t.Version, CreatedBy: SeedActor}}, nil
	}
	return p.store.ListPriceTables(ctx)
}

// Version returns one stored version with its table.
func (p *Prices) Version(ctx context.Context, version string) (ports.PriceTableVersion, error) {
	if p.store == nil {
		if t := p.Table(); t.Version == version {
			return ports.PriceTableVersion{Version: version, Table: pricing.SeedJSON(), CreatedBy: SeedActor}, nil
		}
		return ports.PriceTableVersion{}, domain.Errorf(domain.KindNotFound, "price table version %q not found", version)
	}
	return p.store.GetPriceTable(ctx, version)
}

// NoteUnpriced remembers that model was requested without a price, for
// admins (bounded: the least recently seen is forgotten first).
func (p *Prices) NoteUnpriced(model string) {
	if model == "" {
		return
	}
	now := p.clock.Now().UTC()
	p.unpricedMu.Lock()
	defer p.unpricedMu.Unlock()
	if u, ok := p.unpriced[model]; ok {
		u.Requests++
		u.LastSeen = now
		return
	}
	if len(p.unpriced) >= maxUnpricedModels {
		var oldest *UnpricedModel
		for _, u := range p.unpriced {
			if oldest == nil || u.LastSeen.Before(oldest.LastSeen) {
				oldest = u
			}
		}
		delete(p.unpriced, oldest.Model)
	}
	if len(model) > 256 {
		model = model[:256]
	}
	p.unpriced[model] = &UnpricedModel{Model: model, Requests: 1, FirstSeen: now, LastSeen: now}
}

// Unpriced lists the models requested on this replica that the table did
// not price when they were requested and still does not, most recent
// first.
func (p *Prices) Unpriced() []UnpricedModel {
	t := p.Table()
	p.unpricedMu.Lock()
	out := make([]UnpricedModel, 0, len(p.unpriced))
	for _, u := range p.unpriced {
		if _, ok := t.Lookup(u.Model); !ok {
			out = append(out, *u)
		}
	}
	p.unpricedMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].LastSeen.After(out[j].LastSeen) })
	return out
}
