package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// defaultLimit applies when a listing asks for no particular page size.
const defaultLimit = 100

// CreateKey inserts k. A duplicate id or hash is ErrConflict; an unknown tier
// is ErrInvalid.
func (s *Store) CreateKey(ctx context.Context, k domain.APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	ips, domains, err := encodeLists(k)
	if err != nil {
		return err
	}
	err = s.wq.CreateKey(ctx, sqlitedb.CreateKeyParams{
		ID:             k.ID.String(),
		Name:           k.Name,
		Description:    k.Description,
		KeyHash:        k.KeyHash,
		KeyPrefix:      k.KeyPrefix,
		TokenLimit:     k.TokenLimit,
		TokensUsed:     k.TokensUsed,
		RateLimitTier:  tierRef(k.RateLimitTier),
		IsActive:       boolInt(k.IsActive),
		ExpiresAt:      microPtr(k.ExpiresAt),
		AllowedIps:     ips,
		AllowedDomains: domains,
		CreatedAt:      k.CreatedAt.UnixMicro(),
		UpdatedAt:      k.UpdatedAt.UnixMicro(),
		LastUsedAt:     microPtr(k.LastUsedAt),
		DeletedAt:      microPtr(k.DeletedAt),
	})
	return keyWriteErr("create api key", k.RateLimitTier, err)
}

// GetKey returns a non-deleted key by id.
func (s *Store) GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	row, err := s.rq.GetKey(ctx, id.String())
	if err != nil {
		return domain.APIKey{}, wrap("api key", err)
	}
	return keyFromRow(row)
}

// GetKeyByHash returns a key by its hash, deleted or not.
func (s *Store) GetKeyByHash(ctx context.Context, hash string) (domain.APIKey, error) {
	row, err := s.rq.GetKeyByHash(ctx, hash)
	if err != nil {
		return domain.APIKey{}, wrap("api key", err)
	}
	return keyFromRow(row)
}

// ListKeys returns non-deleted keys, newest first.
func (s *Store) ListKeys(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error) {
	p := sqlitedb.ListKeysParams{MaxRows: limit(f.Limit)}
	if f.Active != nil {
		v := boolInt(*f.Active)
		p.IsActive = &v
	}
	if f.NameContains != "" {
		p.NameContains = &f.NameContains
	}
	if f.After != nil {
		at, id := f.After.CreatedAt.UnixMicro(), f.After.ID.String()
		p.AfterCreatedAt, p.AfterID = &at, &id
	}
	rows, err := s.rq.ListKeys(ctx, p)
	if err != nil {
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
	ips, domains, err := encodeLists(k)
	if err != nil {
		return err
	}
	n, err := s.wq.UpdateKey(ctx, sqlitedb.UpdateKeyParams{
		ID:             k.ID.String(),
		Name:           k.Name,
		Description:    k.Description,
		KeyHash:        k.KeyHash,
		KeyPrefix:      k.KeyPrefix,
		TokenLimit:     k.TokenLimit,
		RateLimitTier:  tierRef(k.RateLimitTier),
		IsActive:       boolInt(k.IsActive),
		ExpiresAt:      microPtr(k.ExpiresAt),
		AllowedIps:     ips,
		AllowedDomains: domains,
		UpdatedAt:      k.UpdatedAt.UnixMicro(),
		PrevUpdatedAt:  prev.UnixMicro(),
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
	_, err := s.wq.GetKey(ctx, id.String())
	if err != nil {
		return wrap("api key", err)
	}
	return ports.ErrStale
}

// DeleteKey soft-deletes a key.
func (s *Store) DeleteKey(ctx context.Context, id uuid.UUID, at time.Time) error {
	n, err := s.wq.DeleteKey(ctx, sqlitedb.DeleteKeyParams{ID: id.String(), DeletedAt: microPtr(&at)})
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if n == 0 {
		return notFound("api key", nil)
	}
	return nil
}

func keyWriteErr(op, tier string, err error) error {
	switch {
	case err == nil:
		return nil
	case isUnique(err):
		return &domain.Error{Kind: domain.KindConflict, Message: "an api key with this id or hash already exists", Err: err}
	case isForeignKey(err):
		return &domain.Error{Kind: domain.KindInvalid, Message: fmt.Sprintf("rate limit tier %q does not exist", tier), Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func keyFromRow(r sqlitedb.ApiKey) (domain.APIKey, error) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("stored api key id %q: %w", r.ID, err)
	}
	var ipStrs, domains []string
	if err := json.Unmarshal([]byte(r.AllowedIps), &ipStrs); err != nil {
		return domain.APIKey{}, fmt.Errorf("api key %s: stored allowed_ips: %w", id, err)
	}
	if err := json.Unmarshal([]byte(r.AllowedDomains), &domains); err != nil {
		return domain.APIKey{}, fmt.Errorf("api key %s: stored allowed_domains: %w", id, err)
	}
	ips, err := stringsToPrefixes(ipStrs)
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("api key %s: %w", id, err)
	}
	k := domain.APIKey{
		ID:             id,
		Name:           r.Name,
		Description:    r.Description,
		KeyHash:        r.KeyHash,
		KeyPrefix:      r.KeyPrefix,
		TokenLimit:     r.TokenLimit,
		TokensUsed:     r.TokensUsed,
		IsActive:       r.IsActive != 0,
		ExpiresAt:      timePtr(r.ExpiresAt),
		AllowedIPs:     ips,
		AllowedDomains: nilIfEmpty(domains),
		CreatedAt:      fromMicro(r.CreatedAt),
		UpdatedAt:      fromMicro(r.UpdatedAt),
		LastUsedAt:     timePtr(r.LastUsedAt),
		DeletedAt:      timePtr(r.DeletedAt),
	}
	if r.RateLimitTier != nil {
		k.RateLimitTier = *r.RateLimitTier
	}
	return k, nil
}

// encodeLists renders the allow-lists as JSON arrays ("[]" when empty).
func encodeLists(k domain.APIKey) (ips, domains string, err error) {
	ipStrs := make([]string, len(k.AllowedIPs))
	for i, p := range k.AllowedIPs {
		ipStrs[i] = p.String()
	}
	if k.AllowedDomains == nil {
		k.AllowedDomains = []string{}
	}
	b1, err := json.Marshal(ipStrs)
	if err != nil {
		return "", "", fmt.Errorf("encode allowed_ips: %w", err)
	}
	b2, err := json.Marshal(k.AllowedDomains)
	if err != nil {
		return "", "", fmt.Errorf("encode allowed_domains: %w", err)
	}
	return string(b1), string(b2), nil
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

// tierRef stores "no tier" as NULL, which the foreign key accepts.
func tierRef(name string) *string {
	if name == "" {
		return nil
	}
	return &name
}

func nilIfEmpty(ss []string) []string {
	if len(ss) == 0 {
		return nil
	}
	return ss
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

func microPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	us := t.UnixMicro()
	return &us
}

func timePtr(us *int64) *time.Time {
	if us == nil {
		return nil
	}
	t := fromMicro(*us)
	return &t
}

func limit(n int) int64 {
	if n <= 0 {
		return defaultLimit
	}
	return int64(n)
}
