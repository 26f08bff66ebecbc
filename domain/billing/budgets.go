package billing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/ports"
)

// Budgets is the money-budget ledger with its seeding: a call that finds
// the key unseeded (after a restart, an idle expiry or a Reset) reads the
// key's persisted spend, seeds the ledger and asks again, so callers never
// see ports.ErrUnseeded.
type Budgets struct {
	ledger ports.BudgetLedger
	spend  ports.SpendStore
	clock  ports.Clock
	// zone is the time zone of calendar budgets that name none.
	zone string
}

// NewBudgets wires a ledger to the store it seeds from. zone is the
// default time zone of calendar budgets ("" is UTC).
func NewBudgets(ledger ports.BudgetLedger, spend ports.SpendStore, clock ports.Clock, zone string) (*Budgets, error) {
	if ledger == nil || spend == nil {
		return nil, errors.New("billing: NewBudgets needs a ledger and a spend store")
	}
	if _, err := budget.LoadZone(zone); err != nil {
		return nil, fmt.Errorf("default budget time zone: %w", err)
	}
	if clock == nil {
		clock = ports.SystemClock{}
	}
	return &Budgets{ledger: ledger, spend: spend, clock: clock, zone: zone}, nil
}

// Of is the key's budgets, with the default zone filled in.
func (b *Budgets) Of(k domain.APIKey) []budget.Budget { return budget.FromKey(k.Budgets, b.zone) }

// DefaultZone is the zone of calendar budgets that name none.
func (b *Budgets) DefaultZone() string { return b.zone }

// seeded runs op, and when the ledger does not hold the key, seeds it from
// storage and runs op once more.
func (b *Budgets) seeded(ctx context.Context, keyID uuid.UUID, op func() error) error {
	err := op()
	if !errors.Is(err, ports.ErrUnseeded) {
		return err
	}
	h, err := b.spend.SpendHistory(ctx, keyID, b.clock.Now())
	if err != nil {
		return fmt.Errorf("read spend history: %w", err)
	}
	if err := b.ledger.Seed(ctx, keyID, h); err != nil {
		return fmt.Errorf("seed budget ledger: %w", err)
	}
	if err := op(); err != nil {
		if errors.Is(err, ports.ErrUnseeded) {
			// Forgotten again between the seed and the retry: a ledger
			// evicting this fast is misconfigured.
			return fmt.Errorf("budget ledger forgot key %s right after seeding it: %w", keyID, err)
		}
		return err
	}
	return nil
}

// Reserve holds amount in every window of bs for request id (see
// ports.BudgetLedger.Reserve). A refusal is a *domain.Error of kind
// KindQuotaExceeded and reason ReasonBudget wrapping a *budget.Refusal.
func (b *Budgets) Reserve(ctx context.Context, keyID uuid.UUID, id string, bs []budget.Budget, amount domain.Nanodollars, at time.Time, lease time.Duration) ([]budget.Status, error) {
	var st []budget.Status
	err := b.seeded(ctx, keyID, func() (err error) {
		st, err = b.ledger.Reserve(ctx, keyID, id, bs, amount, at, lease)
		return err
	})
	return st, err
}

// Settle replaces reservation id with the actual cost (a key the ledger
// does not hold is left alone: its spend comes back through the seed).
func (b *Budgets) Settle(ctx context.Context, keyID uuid.UUID, id string, actual domain.Nanodollars, at time.Time) error {
	return b.ledger.Settle(ctx, keyID, id, actual, at)
}

// Extend keeps reservation id alive for another lease.
func (b *Budgets) Extend(ctx context.Context, keyID uuid.UUID, id string, lease time.Duration) error {
	return b.ledger.Extend(ctx, keyID, id, lease)
}

// State reports the key's budgets at at.
func (b *Budgets) State(ctx context.Context, k domain.APIKey, at time.Time) ([]budget.Status, error) {
	bs := b.Of(k)
	if len(bs) == 0 {
		return nil, nil
	}
	var st []budget.Status
	err := b.seeded(ctx, k.ID, func() (err error) {
		st, err = b.ledger.State(ctx, k.ID, bs, at)
		return err
	})
	return st, err
}

// Reset forgets the key, so its next call seeds it from storage: after an
// operator changed its budgets from none to some (the ledger did not
// follow its spend meanwhile), deleted it, or repriced its usage.
func (b *Budgets) Reset(ctx context.Context, keyID uuid.UUID) error {
	return b.ledger.Reset(ctx, keyID)
}
