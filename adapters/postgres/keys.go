package postgres

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/postgres/pgdb"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// defaultLimit applies when a listing asks for no particular page size.
const defaultLimit = 100

// CreateKey inserts k. A duplicate id or hash is ErrConflict; an unknown tier
// is ErrInvalid.
func (s *Store) CreateKey(ctx context.Context, k domain.APIKey) error {
	now := time.Now()
	if k.CreatedAt.IsZero() {
		k.CreatedAt = now
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	err := s.q.CreateKey(ctx, pgdb.CreateKeyParams{
		ID:             k.ID,
		Name:           k.Name,
		Description:    k.Description,
		KeyHash:        k.KeyHash,
		KeyPrefix:      k.KeyPrefix,
		TokenLimit:     k.TokenLimit,
		TokensUsed:     k.TokensUsed,
		RateLimitTier:  tierRef(k.RateLimitTier),
		IsActive:       k.IsActive,
		ExpiresAt:      k.ExpiresAt,
		AllowedIps:     prefixesToStrings(k.AllowedIPs),
		AllowedDomains: nonNil(k.AllowedDomains),
		CreatedAt:      k.CreatedAt,
		UpdatedAt:      k.UpdatedAt,
		LastUsedAt:     k.LastUsedAt,
		DeletedAt:      k.DeletedAt,
	})
	return keyWriteErr("create api key", k.RateLimitTier, err)
}

// GetKey returns a non-deleted key by id.
func (s *Store) GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	row, err := s.q.GetKey(ctx, id)
	if err != nil {
		return domain.APIKey{}, wrap("api key", err)
	}
	return keyFromRow(row)
}

// GetKeyByHash returns a key by its hash, deleted or not.
func (s *Store) GetKeyByHash(ctx context.Context, hash string) (domain.APIKey, error) {
	row, err := s.q.GetKeyByHash(ctx, hash)
	if err != nil {
		return domain.APIKey{}, wrap("api key", err)
	}
	return keyFromRow(row)
}

// ListKeys returns non-deleted keys, newest first.
func (s *Store) ListKeys(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error) {
	p := pgdb.ListKeysParams{IsActive: f.Active, MaxRows: limit(f.Limit)}
	if f.NameContains != "" {
		p.NameContains = &f.NameContains
	}
	if f.After != nil {
		at, id := f.After.CreatedAt, f.After.ID
		p.AfterCreatedAt, p.AfterID = &at, &id
	}
	rows, err := s.q.ListKeys(ctx, p)
	if err != nil {
		switch pgCode(err) {
		case codeBadCharacter, codeUntranslatable:
			return nil, &domain.Error{Kind: domain.KindInvalid, Message: "the name filter must be valid UTF-8 without NUL characters", Err: err}
		}
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	out := make([]domain.APIKey, 0, len(rows))
	for _, r := range rows {
		k, err := keyFromRow(r)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// UpdateKey writes every mutable field of k if the stored key's updated_at
// is still prev; see ports.KeyStore.
func (s *Store) UpdateKey(ctx context.Context, k domain.APIKey, prev time.Time) error {
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = time.Now()
	}
	n, err := s.q.UpdateKey(ctx, pgdb.UpdateKeyParams{
		ID:             k.ID,
		Name:           k.Name,
		Description:    k.Description,
		KeyHash:        k.KeyHash,
		KeyPrefix:      k.KeyPrefix,
		TokenLimit:     k.TokenLimit,
		RateLimitTier:  tierRef(k.RateLimitTier),
		IsActive:       k.IsActive,
		ExpiresAt:      k.ExpiresAt,
		AllowedIps:     prefixesToStrings(k.AllowedIPs),
		AllowedDomains: nonNil(k.AllowedDomains),
		UpdatedAt:      k.UpdatedAt,
		PrevUpdatedAt:  prev,
	})
	if err != nil {
		return keyWriteErr("update api key", k.RateLimitTier, err)
	}
	if n == 0 {
		return s.whyUnchanged(ctx, k.ID)
	}
	return nil
}

// whyUnchanged tells a stale write (the key exists, changed since it was
// read) from one to a missing or deleted key.
func (s *Store) whyUnchanged(ctx context.Context, id uuid.UUID) error {
	_, err := s.q.GetKey(ctx, id)
	if err != nil {
		return wrap("api key", err)
	}
	return ports.ErrStale
}

// DeleteKey soft-deletes a key.
func (s *Store) DeleteKey(ctx context.Context, id uuid.UUID, at time.Time) error {
	n, err := s.q.DeleteKey(ctx, pgdb.DeleteKeyParams{ID: id, DeletedAt: &at})
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if n == 0 {
		return notFound("api key", nil)
	}
	return nil
}

func keyWriteErr(op, tier string, err error) error {
	if err == nil {
		return nil
	}
	switch pgCode(err) {
	case codeUniqueViolation:
		return &domain.Error{Kind: domain.KindConflict, Message: "an api key with this id or hash already exists", Err: err}
	case codeForeignKeyViolation:
		return &domain.Error{Kind: domain.KindInvalid, Message: fmt.Sprintf("rate limit tier %q does not exist", tier), Err: err}
	case codeBadCharacter, codeUntranslatable:
		return &domain.Error{Kind: domain.KindInvalid, Message: "text fields must be valid UTF-8 without NUL characters", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func keyFromRow(r pgdb.ApiKey) (domain.APIKey, error) {
	ips, err := stringsToPrefixes(r.AllowedIps)
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("api key %s: %w", r.ID, err)
	}
	k := domain.APIKey{
		ID:             r.ID,
		Name:           r.Name,
		Description:    r.Description,
		KeyHash:        r.KeyHash,
		KeyPrefix:      r.KeyPrefix,
		TokenLimit:     r.TokenLimit,
		TokensUsed:     r.TokensUsed,
		IsActive:       r.IsActive,
		ExpiresAt:      utcPtr(r.ExpiresAt),
		AllowedIPs:     ips,
		AllowedDomains: nilIfEmpty(r.AllowedDomains),
		CreatedAt:      r.CreatedAt.UTC(),
		UpdatedAt:      r.UpdatedAt.UTC(),
		LastUsedAt:     utcPtr(r.LastUsedAt),
		DeletedAt:      utcPtr(r.DeletedAt),
	}
	if r.RateLimitTier != nil {
		k.RateLimitTier = *r.RateLimitTier
	}
	return k, nil
}

// tierRef stores "no tier" as NULL, which the foreign key accepts.
func tierRef(name string) *string {
	if name == "" {
		return nil
	}
	return &name
}

func prefixesToStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func stringsToPrefixes(ss []string) ([]netip.Prefix, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// A bare address written by hand means that single host.
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("stored allowed_ips entry %q: %w", s, err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out[i] = p
	}
	return out, nil
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

func nilIfEmpty(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func limit(n int) int32 {
	if n <= 0 {
		return defaultLimit
	}
	if n > 1<<30 {
		return 1 << 30
	}
	return int32(n)
}
