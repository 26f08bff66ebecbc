package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/domain"
)

// ListTiers returns every tier, by name.
func (s *Store) ListTiers(ctx context.Context) ([]domain.Tier, error) {
	rows, err := s.rq.ListTiers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tiers: %w", err)
	}
	out := make([]domain.Tier, len(rows))
	for i, r := range rows {
		out[i] = tierFromRow(r)
	}
	return out, nil
}

// GetTier returns one tier.
func (s *Store) GetTier(ctx context.Context, name string) (domain.Tier, error) {
	r, err := s.rq.GetTier(ctx, name)
	if err != nil {
		return domain.Tier{}, wrap("rate limit tier", err)
	}
	return tierFromRow(r), nil
}

// UpsertTier creates or replaces a tier; created_at survives a replace.
func (s *Store) UpsertTier(ctx context.Context, t domain.Tier) error {
	err := s.wq.UpsertTier(ctx, tierParams(t))
	if isCheck(err) {
		return &domain.Error{Kind: domain.KindInvalid, Message: "tier limits must be positive", Err: err}
	}
	if err != nil {
		return fmt.Errorf("upsert tier: %w", err)
	}
	return nil
}

// DeleteTier removes a tier unless a live key uses it. Soft-deleted keys are
// detached first; the foreign key then refuses the delete if a live key
// names the tier.
func (s *Store) DeleteTier(ctx context.Context, name string) error {
	return s.inTx(ctx, func(_ *sql.Tx, q *sqlitedb.Queries) error {
		if err := q.DetachDeletedKeysFromTier(ctx, &name); err != nil {
			return fmt.Errorf("delete tier: %w", err)
		}
		n, err := q.DeleteTier(ctx, name)
		if isForeignKey(err) {
			return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("rate limit tier %q is used by api keys", name), Err: err}
		}
		if err != nil {
			return fmt.Errorf("delete tier: %w", err)
		}
		if n == 0 {
			return notFound("rate limit tier", nil)
		}
		return nil
	})
}

// SeedTiers inserts tiers only into an empty table. The write transaction
// is IMMEDIATE, so two processes cannot both see an empty table.
func (s *Store) SeedTiers(ctx context.Context, tiers []domain.Tier) error {
	return s.inTx(ctx, func(_ *sql.Tx, q *sqlitedb.Queries) error {
		n, err := q.CountTiers(ctx)
		if err != nil {
			return fmt.Errorf("seed tiers: %w", err)
		}
		if n > 0 {
			return nil
		}
		for _, t := range tiers {
			if err := q.InsertTierIfAbsent(ctx, sqlitedb.InsertTierIfAbsentParams(tierParams(t))); err != nil {
				return fmt.Errorf("seed tier %q: %w", t.Name, err)
			}
		}
		return nil
	})
}

func tierParams(t domain.Tier) sqlitedb.UpsertTierParams {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	p := sqlitedb.UpsertTierParams{
		Name:          t.Name,
		Requests:      int64(t.Requests),
		PeriodSeconds: int64(t.Period / time.Second),
		Tokens:        t.Tokens,
		CreatedAt:     t.CreatedAt.UnixMicro(),
		UpdatedAt:     t.UpdatedAt.UnixMicro(),
	}
	if t.MaxConcurrency != nil {
		c := int64(*t.MaxConcurrency)
		p.MaxConcurrency = &c
	}
	return p
}

func tierFromRow(r sqlitedb.RateLimitTier) domain.Tier {
	t := domain.Tier{
		Name:      r.Name,
		Requests:  int(r.Requests),
		Period:    time.Duration(r.PeriodSeconds) * time.Second,
		Tokens:    r.Tokens,
		CreatedAt: fromMicro(r.CreatedAt),
		UpdatedAt: fromMicro(r.UpdatedAt),
	}
	if r.MaxConcurrency != nil {
		c := int(*r.MaxConcurrency)
		t.MaxConcurrency = &c
	}
	return t
}
