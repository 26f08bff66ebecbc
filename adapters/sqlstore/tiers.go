package sqlstore

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/relaystation/relay/domain"
)

// tierRow is a rate_limit_tiers row, and the parameters of UpsertTier and
// InsertTierIfAbsent.
type tierRow = struct {
	Name           string
	Requests       int64
	PeriodSeconds  int64
	Tokens         *int64
	MaxConcurrency *int64
	CreatedAt      Time
	UpdatedAt      Time
}

// tierSQL is an engine's sqlc queries on rate_limit_tiers.
type tierSQL[Row, Upsert, Insert ~tierRow] interface {
	ListTiers(ctx context.Context) ([]Row, error)
	GetTier(ctx context.Context, name string) (Row, error)
	UpsertTier(ctx context.Context, arg Upsert) error
	InsertTierIfAbsent(ctx context.Context, arg Insert) error
	CountTiers(ctx context.Context) (int64, error)
	DetachDeletedKeysFromTier(ctx context.Context, name *string) error
	DeleteTier(ctx context.Context, name string) (int64, error)
}

// TierQueries are an engine's rate_limit_tiers queries in domain terms.
type TierQueries struct {
	list           func(ctx context.Context) ([]domain.Tier, error)
	get            func(ctx context.Context, name string) (domain.Tier, error)
	upsert         func(ctx context.Context, t domain.Tier) error
	insertIfAbsent func(ctx context.Context, t domain.Tier) error
	count          func(ctx context.Context) (int64, error)
	detachDeleted  func(ctx context.Context, name string) error
	delete         func(ctx context.Context, name string) (int64, error)
}

// BindTiers binds an engine's sqlc queries on rate_limit_tiers.
func BindTiers[Row, Upsert, Insert ~tierRow](q tierSQL[Row, Upsert, Insert]) TierQueries {
	tier := func(r Row) (domain.Tier, error) { return tierFromRow(r), nil }
	return TierQueries{
		list: func(ctx context.Context) ([]domain.Tier, error) {
			rows, err := q.ListTiers(ctx)
			return mapRows(rows, err, tier)
		},
		get: func(ctx context.Context, name string) (domain.Tier, error) {
			r, err := q.GetTier(ctx, name)
			return tierFromRow(r), err
		},
		upsert: func(ctx context.Context, t domain.Tier) error {
			return q.UpsertTier(ctx, tierArgs(t))
		},
		insertIfAbsent: func(ctx context.Context, t domain.Tier) error {
			return q.InsertTierIfAbsent(ctx, tierArgs(t))
		},
		count:         q.CountTiers,
		detachDeleted: func(ctx context.Context, name string) error { return q.DetachDeletedKeysFromTier(ctx, &name) },
		delete:        q.DeleteTier,
	}
}

// ListTiers returns every tier, by name.
func (s *Store) ListTiers(ctx context.Context) ([]domain.Tier, error) {
	tiers, err := s.read.Tiers.list(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tiers: %w", err)
	}
	return tiers, nil
}

// GetTier returns one tier.
func (s *Store) GetTier(ctx context.Context, name string) (domain.Tier, error) {
	t, err := s.read.Tiers.get(ctx, name)
	if err != nil {
		return domain.Tier{}, s.wrap("rate limit tier", err)
	}
	return t, nil
}

// UpsertTier creates or replaces a tier; created_at survives a replace.
func (s *Store) UpsertTier(ctx context.Context, t domain.Tier) error {
	if err := fitsColumns(t); err != nil {
		return err
	}
	err := s.write.Tiers.upsert(ctx, t)
	if s.is(err, ErrDBCheck) {
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
	return s.engine.Tx(ctx, func(q Queries) error {
		if err := q.Tiers.detachDeleted(ctx, name); err != nil {
			return fmt.Errorf("delete tier: %w", err)
		}
		n, err := q.Tiers.delete(ctx, name)
		if s.is(err, ErrDBForeignKey) {
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

// SeedTiers inserts tiers only into an empty table, in a transaction that
// no other SeedTiers runs beside (see Engine.SeedTx).
func (s *Store) SeedTiers(ctx context.Context, tiers []domain.Tier) error {
	return s.engine.SeedTx(ctx, func(q Queries) error {
		n, err := q.Tiers.count(ctx)
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
			if err := q.Tiers.insertIfAbsent(ctx, t); err != nil {
				return fmt.Errorf("seed tier %q: %w", t.Name, err)
			}
		}
		return nil
	})
}

// fitsColumns refuses values PostgreSQL's integer columns would not hold,
// on both engines alike. domain.Tier.Validate keeps far below these
// bounds; this is the last line.
func fitsColumns(t domain.Tier) error {
	if t.Requests > math.MaxInt32 || t.Period/time.Second > math.MaxInt32 ||
		t.MaxConcurrency != nil && *t.MaxConcurrency > math.MaxInt32 {
		return &domain.Error{Kind: domain.KindInvalid, Message: "tier limits are out of range"}
	}
	return nil
}

func tierArgs(t domain.Tier) tierRow {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = time.Now()
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	p := tierRow{
		Name:          t.Name,
		Requests:      int64(t.Requests),
		PeriodSeconds: int64(t.Period / time.Second),
		Tokens:        t.Tokens,
		CreatedAt:     Time(t.CreatedAt),
		UpdatedAt:     Time(t.UpdatedAt),
	}
	if t.MaxConcurrency != nil {
		c := int64(*t.MaxConcurrency)
		p.MaxConcurrency = &c
	}
	return p
}

func tierFromRow(r tierRow) domain.Tier {
	t := domain.Tier{
		Name:      r.Name,
		Requests:  int(r.Requests),
		Period:    time.Duration(r.PeriodSeconds) * time.Second,
		Tokens:    r.Tokens,
		CreatedAt: time.Time(r.CreatedAt),
		UpdatedAt: time.Time(r.UpdatedAt),
	}
	if r.MaxConcurrency != nil {
		c := int(*r.MaxConcurrency)
		t.MaxConcurrency = &c
	}
	return t
}
