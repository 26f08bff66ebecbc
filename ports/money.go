package ports

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
)

// SpendStore reads a key's persisted spend, to seed a BudgetLedger that
// does not hold the key (see BudgetLedger).
type SpendStore interface {
	// SpendHistory returns the cost of the key's stored usage records per
	// 5-minute bucket of their time for the budget.HistorySpan before asOf,
	// and the cost of all of them, from one consistent snapshot.
	SpendHistory(ctx context.Context, keyID uuid.UUID, asOf time.Time) (budget.History, error)
}

// PriceTableVersion is one stored version of the price table: the whole
// table as JSON (domain/pricing parses it), with who changed it and why.
// Versions are never changed or deleted: a usage record's price_version
// names the one that priced it.
type PriceTableVersion struct {
	Version   string
	Table     []byte // the price table JSON, as domain/pricing reads it
	CreatedAt time.Time
	CreatedBy string // the admin who stored it ("seed" for the embedded one)
	Comment   string
}

// PriceStore keeps the price table's versions; the newest is current.
type PriceStore interface {
	// PutPriceTable stores a new version. A version already stored is an
	// ErrConflict.
	PutPriceTable(ctx context.Context, v PriceTableVersion) error
	// CurrentPriceTable returns the newest version (by CreatedAt, then
	// insertion order), ErrNotFound when none is stored.
	CurrentPriceTable(ctx context.Context) (PriceTableVersion, error)
	// GetPriceTable returns one version, ErrNotFound if absent.
	GetPriceTable(ctx context.Context, version string) (PriceTableVersion, error)
	// ListPriceTables returns every version's metadata (Table left nil),
	// newest first.
	ListPriceTables(ctx context.Context) ([]PriceTableVersion, error)
}

// CostUpdate replaces the stored cost of one usage record: Old is what the
// caller read (the store subtracts it from the rollups), New what it
// computed.
type CostUpdate struct {
	RequestID string
	Old, New  domain.RecordCost
}

// UsageRepricer rewrites stored costs, for `relay usage reprice --apply`.
type UsageRepricer interface {
	// UpdateUsageCosts writes every update in one transaction, with the
	// rollups they change. An update whose record's stored cost no longer
	// equals Old (total and price version: someone repriced it meanwhile)
	// is skipped; applied is how many were written.
	UpdateUsageCosts(ctx context.Context, updates []CostUpdate) (applied int, err error)
}
