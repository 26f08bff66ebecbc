package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/domain"
)

// ListTiers returns every tier, by name.
func (s *Store) ListTiers(ctx context.Context) ([]domain.Tier, error) {
	rows, err := s.q.ListTiers(ctx)
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
	r, err := s.q.GetTier(ctx, name)
	if err != nil {
		return domain.Tier{}, wrap("rate limit tier", err)
	}
	return tierFromRow(r), nil
}

// UpsertTier creates or replaces a tier; created_at survives a replace.
func (s *Store) UpsertTier(ctx context.Context, t domain.Tier) error {
	if err := fitsColumns(t); err != nil {
		return err
	}
	err := s.q.UpsertTier(ctx, tierParams(t))
	if pgCode(err) == codeCheckViolation {
		return &domain.Error{Kind: domain.KindInvalid, Message: "tier limits must be positive", Err: err}
	}
	if err != nil {
		return fmt.Errorf("upsert tier: %w", err)
	}
	return nil
}

// DeleteTier removes a tier unless a live key uses it. Soft-deleted keys are
// detached first; the foreign key then refuses the delete atomically if a
// live key names the tier, even one created concurrently.
func (s *Store) DeleteTier(ctx context.Context, name string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.DetachDeletedKeysFromTier(ctx, &name); err != nil {
			return fmt.Errorf("delete tier: %w", err)
		}
		n, err := q.DeleteTier(ctx, name)
		if pgCode(err) == codeForeignKeyViolation {
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

// SeedTiers inserts tiers only into an empty table. An advisory lock keeps
// replicas that start together from seeding twice.
func (s *Store) SeedTiers(ctx context.Context, tiers []domain.Tier) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		q := s.q.WithTx(tx)
		if err := q.LockTierSeeding(ctx); err != nil {
			return fmt.Errorf("seed tiers: %w", err)
		}
		n, err := q.CountTiers(ctx)
		if err != nil {
			return fmt.Errorf("seed tiers: %w", err)
		}
		if n > 0 {
			return nil
		}
		for _, t := range tiers {
			if err := fitsColumns(t); err != nil {
				return err
			}
			if err := q.InsertTierIfAbsent(ctx, pgdb.InsertTierIfAbsentParams(tierParams(t))); err != nil {
				return fmt.Errorf("seed tier %q: %w", t.Name, err)
			}
		}
		return nil
	})
}

// fitsColumns refuses values the int32 columns would silently truncate.
// domain.Tier.Validate keeps far below these bounds; this is the last line.
func fitsColumns(t domain.Tier) error {
	if t.Requests > math.MaxInt32 || t.Period/time.Second > math.MaxInt32 ||
		t.MaxConcurrency != nil && *t.MaxConcurrency > math.MaxInt32 {
		return &domain.Error{Kind: domain.KindInvalid, Message: "tier limits are out of range"}
	}
	return nil
}

func tierParams(t domain.Tier) pgdb.UpsertTierParams {
	now := time.Now()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	p := pgdb.UpsertTierParams{
		Name:          t.Name,
		Requests:      int32(t.Requests),
		PeriodSeconds: int32(t.Period / time.Second),
		Tokens:        t.Tokens,
		CreatedAt:     t.CreatedAt,
		UpdatedAt:     t.UpdatedAt,
	}
	if t.MaxConcurrency != nil {
		c := int32(*t.MaxConcurrency)
		p.MaxConcurrency = &c
	}
	return p
}

func tierFromRow(r pgdb.RateLimitTier) domain.Tier {
	t := domain.Tier{
		Name:      r.Name,
		Requests:  int(r.Requests),
		Period:    time.Duration(r.PeriodSeconds) * time.Second,
		Tokens:    r.Tokens,
		CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.MaxConcurrency != nil {
		c := int(*r.MaxConcurrency)
		t.MaxConcurrency = &c
	}
	return t
}
