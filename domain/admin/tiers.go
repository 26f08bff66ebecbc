package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/relaystation/relay/domain"
)

// ListTiers returns every tier.
func (s *Service) ListTiers(ctx context.Context) ([]domain.Tier, error) {
	ts, err := s.tiers.ListTiers(ctx)
	if err != nil {
		return nil, fmt.Errorf("list tiers: %w", err)
	}
	return ts, nil
}

// PutTierInput creates or replaces a tier.
type PutTierInput struct {
	Name           string
	Requests       int
	PeriodSeconds  int
	Tokens         *int64
	MaxConcurrency *int
}

func (in PutTierInput) tier() domain.Tier {
	return domain.Tier{
		Name: in.Name, Requests: in.Requests, Period: time.Duration(in.PeriodSeconds) * time.Second,
		Tokens: in.Tokens, MaxConcurrency: in.MaxConcurrency,
	}
}

// Validate applies the tier's own rules.
func (in PutTierInput) Validate() error {
	// Checked before the conversion to a Duration, which a huge value
	// would overflow.
	if maxS := int(domain.MaxTierPeriod / time.Second); in.PeriodSeconds < 1 || in.PeriodSeconds > maxS {
		return domain.Invalidf("period must be between 1 and %d seconds", maxS)
	}
	return in.tier().Validate()
}

// PutTier creates or replaces a tier. The relay reads tiers per request, so
// the change applies to the next request.
func (s *Service) PutTier(ctx context.Context, in PutTierInput) (domain.Tier, error) {
	if err := in.Validate(); err != nil {
		return domain.Tier{}, err
	}
	t := in.tier()
	now := s.now()
	t.CreatedAt, t.UpdatedAt = now, now
	if old, err := s.tiers.GetTier(ctx, t.Name); err == nil {
		t.CreatedAt = old.CreatedAt
	} else if !errors.Is(err, domain.ErrNotFound) {
		return domain.Tier{}, fmt.Errorf("get tier: %w", err)
	}
	if err := s.tiers.UpsertTier(ctx, t); err != nil {
		return domain.Tier{}, fmt.Errorf("upsert tier: %w", err)
	}
	stored, err := s.tiers.GetTier(ctx, t.Name)
	if err != nil {
		return domain.Tier{}, fmt.Errorf("read back tier: %w", err)
	}
	return stored, nil
}

// DeleteTier removes a tier no key uses. The default tier and the last
// remaining tier cannot be deleted: key creation depends on them.
func (s *Service) DeleteTier(ctx context.Context, name string) error {
	if !domain.ValidTierName(name) {
		return domain.Invalidf("%q is not a valid tier name", name)
	}
	if name == s.defaultTier {
		return domain.Errorf(domain.KindConflict, "tier %q is the default tier and cannot be deleted", name)
	}
	if _, err := s.tiers.GetTier(ctx, name); errors.Is(err, domain.ErrNotFound) {
		return &domain.Error{Kind: domain.KindNotFound, Message: fmt.Sprintf("tier %q not found", name), Err: err}
	} else if err != nil {
		return fmt.Errorf("get tier: %w", err)
	}
	// Keys always need some tier to be created on. The default tier cannot
	// be deleted, so this only matters when it is missing; the check races
	// with a concurrent delete, which is acceptable for an operator action.
	all, err := s.tiers.ListTiers(ctx)
	if err != nil {
		return fmt.Errorf("list tiers: %w", err)
	}
	if len(all) <= 1 {
		return domain.Errorf(domain.KindConflict, "tier %q is the last tier and cannot be deleted", name)
	}
	err = s.tiers.DeleteTier(ctx, name)
	switch {
	case errors.Is(err, domain.ErrConflict):
		return &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("tier %q is still used by API keys", name), Err: err}
	case errors.Is(err, domain.ErrNotFound):
		return &domain.Error{Kind: domain.KindNotFound, Message: fmt.Sprintf("tier %q not found", name), Err: err}
	case err != nil:
		return fmt.Errorf("delete tier: %w", err)
	}
	return nil
}
