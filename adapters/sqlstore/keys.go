package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// keyRow is an api_keys row, and CreateKey's parameters. L is how the
// engine holds a list column.
type keyRow[L ~[]string] = struct {
	ID             uuid.UUID
	Name           string
	Description    string
	KeyHash        string
	KeyPrefix      string
	TokenLimit     *int64
	TokensUsed     int64
	RateLimitTier  *string
	IsActive       bool
	ExpiresAt      *Time
	AllowedIps     L
	AllowedDomains L
	CreatedAt      Time
	UpdatedAt      Time
	LastUsedAt     *Time
	DeletedAt      *Time
	AllowedModels  L
	Budgets        string // JSON, see encodeBudgets
	UpstreamGroup  string
}

type listKeysParams = struct {
	IsActive       *bool
	NameContains   *string
	AfterCreatedAt *Time
	AfterID        uuid.UUID
	MaxRows        int64
}

type updateKeyParams[L ~[]string] = struct {
	Name           string
	Description    string
	KeyHash        string
	KeyPrefix      string
	TokenLimit     *int64
	RateLimitTier  *string
	IsActive       bool
	ExpiresAt      *Time
	AllowedIps     L
	AllowedDomains L
	AllowedModels  L
	Budgets        string
	UpstreamGroup  string
	UpdatedAt      Time
	ID             uuid.UUID
	PrevUpdatedAt  Time
}

type deleteKeyParams = struct {
	DeletedAt *Time
	ID        uuid.UUID
}

// keySQL is an engine's sqlc queries on api_keys.
type keySQL[L ~[]string, Row, Create ~keyRow[L], List ~listKeysParams, Update ~updateKeyParams[L], Delete ~deleteKeyParams] interface {
	CreateKey(ctx context.Context, arg Create) error
	GetKey(ctx context.Context, id uuid.UUID) (Row, error)
	GetKeyByHash(ctx context.Context, keyHash string) (Row, error)
	ListKeys(ctx context.Context, arg List) ([]Row, error)
	UpdateKey(ctx context.Context, arg Update) (int64, error)
	DeleteKey(ctx context.Context, arg Delete) (int64, error)
}

// KeyQueries are an engine's api_keys queries in domain terms. The errors
// are the driver's, for the Store to interpret.
type KeyQueries struct {
	create func(ctx context.Context, k domain.APIKey) error
	get    func(ctx context.Context, id uuid.UUID) (domain.APIKey, error)
	byHash func(ctx context.Context, hash string) (domain.APIKey, error)
	list   func(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error)
	update func(ctx context.Context, k domain.APIKey, prev time.Time) (int64, error)
	delete func(ctx context.Context, id uuid.UUID, at time.Time) (int64, error)
}

// BindKeys binds an engine's sqlc queries on api_keys.
func BindKeys[L ~[]string, Row, Create ~keyRow[L], List ~listKeysParams, Update ~updateKeyParams[L], Delete ~deleteKeyParams](
	q keySQL[L, Row, Create, List, Update, Delete],
) KeyQueries {
	key := func(r Row) (domain.APIKey, error) { return keyFromRow[L](r) }
	one := func(r Row, err error) (domain.APIKey, error) {
		if err != nil {
			return domain.APIKey{}, err
		}
		return key(r)
	}
	return KeyQueries{
		create: func(ctx context.Context, k domain.APIKey) error {
			return q.CreateKey(ctx, keyArgs[L](k))
		},
		get: func(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
			return one(q.GetKey(ctx, id))
		},
		byHash: func(ctx context.Context, hash string) (domain.APIKey, error) {
			return one(q.GetKeyByHash(ctx, hash))
		},
		list: func(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error) {
			rows, err := q.ListKeys(ctx, listArgs(f))
			return mapRows(rows, err, key)
		},
		update: func(ctx context.Context, k domain.APIKey, prev time.Time) (int64, error) {
			return q.UpdateKey(ctx, updateArgs[L](k, prev))
		},
		delete: func(ctx context.Context, id uuid.UUID, at time.Time) (int64, error) {
			return q.DeleteKey(ctx, deleteKeyParams{DeletedAt: (*Time)(&at), ID: id})
		},
	}
}

// CreateKey inserts k. A duplicate id or hash is ErrConflict; an unknown tier
// is ErrInvalid.
func (s *Store) CreateKey(ctx context.Context, k domain.APIKey) error {
	if k.CreatedAt.IsZero() {
		k.CreatedAt = time.Now()
	}
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = k.CreatedAt
	}
	return s.keyWriteErr("create api key", k.RateLimitTier, s.write.Keys.create(ctx, k))
}

// GetKey returns a non-deleted key by id.
func (s *Store) GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	k, err := s.read.Keys.get(ctx, id)
	if err != nil {
		return domain.APIKey{}, s.wrap("api key", err)
	}
	return k, nil
}

// GetKeyByHash returns a key by its hash, deleted or not.
func (s *Store) GetKeyByHash(ctx context.Context, hash string) (domain.APIKey, error) {
	k, err := s.read.Keys.byHash(ctx, hash)
	if err != nil {
		return domain.APIKey{}, s.wrap("api key", err)
	}
	return k, nil
}

// ListKeys returns non-deleted keys, newest first.
func (s *Store) ListKeys(ctx context.Context, f domain.KeyFilter) ([]domain.APIKey, error) {
	keys, err := s.read.Keys.list(ctx, f)
	if s.is(err, ErrDBBadText) {
		return nil, &domain.Error{Kind: domain.KindInvalid, Message: "the name filter must be valid UTF-8 without NUL characters", Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, nil
}

// UpdateKey writes every mutable field of k if the stored key's updated_at
// is still prev; see ports.KeyStore.
func (s *Store) UpdateKey(ctx context.Context, k domain.APIKey, prev time.Time) error {
	if k.UpdatedAt.IsZero() {
		k.UpdatedAt = time.Now()
	}
	n, err := s.write.Keys.update(ctx, k, prev)
	if err != nil {
		return s.keyWriteErr("update api key", k.RateLimitTier, err)
	}
	if n == 0 {
		return s.whyUnchanged(ctx, k.ID)
	}
	return nil
}

// whyUnchanged tells a stale write (the key exists, changed since it was
// read) from one to a missing or deleted key.
func (s *Store) whyUnchanged(ctx context.Context, id uuid.UUID) error {
	if _, err := s.write.Keys.get(ctx, id); err != nil {
		return s.wrap("api key", err)
	}
	return ports.ErrStale
}

// DeleteKey soft-deletes a key.
func (s *Store) DeleteKey(ctx context.Context, id uuid.UUID, at time.Time) error {
	n, err := s.write.Keys.delete(ctx, id, at)
	if err != nil {
		return fmt.Errorf("delete api key: %w", err)
	}
	if n == 0 {
		return notFound("api key", nil)
	}
	return nil
}

func (s *Store) keyWriteErr(op, tier string, err error) error {
	switch {
	case err == nil:
		return nil
	case s.is(err, ErrDBDuplicatedEntry):
		return &domain.Error{Kind: domain.KindConflict, Message: "an api key with this id or hash already exists", Err: err}
	case s.is(err, ErrDBForeignKey):
		return &domain.Error{Kind: domain.KindInvalid, Message: fmt.Sprintf("rate limit tier %q does not exist", tier), Err: err}
	case s.is(err, ErrDBBadText):
		return &domain.Error{Kind: domain.KindInvalid, Message: "text fields must be valid UTF-8 without NUL characters", Err: err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

func keyFromRow[L ~[]string](r keyRow[L]) (domain.APIKey, error) {
	ips, err := storedPrefixes(r.AllowedIps)
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("api key %s: %w", r.ID, err)
	}
	budgets, err := decodeBudgets(r.Budgets)
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
		ExpiresAt:      (*time.Time)(r.ExpiresAt),
		AllowedIPs:     ips,
		AllowedDomains: nilIfEmpty(r.AllowedDomains),
		AllowedModels:  nilIfEmpty(r.AllowedModels),
		Budgets:        budgets,
		UpstreamGroup:  r.UpstreamGroup,
		CreatedAt:      time.Time(r.CreatedAt),
		UpdatedAt:      time.Time(r.UpdatedAt),
		LastUsedAt:     (*time.Time)(r.LastUsedAt),
		DeletedAt:      (*time.Time)(r.DeletedAt),
	}
	if r.RateLimitTier != nil {
		k.RateLimitTier = *r.RateLimitTier
	}
	return k, nil
}

// keyArgs is k as stored: CreateKey's parameters.
func keyArgs[L ~[]string](k domain.APIKey) keyRow[L] {
	return keyRow[L]{
		ID:             k.ID,
		Name:           k.Name,
		Description:    k.Description,
		KeyHash:        k.KeyHash,
		KeyPrefix:      k.KeyPrefix,
		TokenLimit:     k.TokenLimit,
		TokensUsed:     k.TokensUsed,
		RateLimitTier:  tierRef(k.RateLimitTier),
		IsActive:       k.IsActive,
		ExpiresAt:      (*Time)(k.ExpiresAt),
		AllowedIps:     prefixStrings[L](k.AllowedIPs),
		AllowedDomains: nonNil[L](k.AllowedDomains),
		CreatedAt:      Time(k.CreatedAt),
		UpdatedAt:      Time(k.UpdatedAt),
		LastUsedAt:     (*Time)(k.LastUsedAt),
		DeletedAt:      (*Time)(k.DeletedAt),
		AllowedModels:  nonNil[L](k.AllowedModels),
		Budgets:        encodeBudgets(k.Budgets),
		UpstreamGroup:  k.UpstreamGroup,
	}
}

// updateArgs are UpdateKey's parameters: the mutable fields, as keyArgs
// stores them.
func updateArgs[L ~[]string](k domain.APIKey, prev time.Time) updateKeyParams[L] {
	r := keyArgs[L](k)
	return updateKeyParams[L]{
		Name: r.Name, Description: r.Description, KeyHash: r.KeyHash, KeyPrefix: r.KeyPrefix,
		TokenLimit: r.TokenLimit, RateLimitTier: r.RateLimitTier, IsActive: r.IsActive, ExpiresAt: r.ExpiresAt,
		AllowedIps: r.AllowedIps, AllowedDomains: r.AllowedDomains, AllowedModels: r.AllowedModels, Budgets: r.Budgets,
		UpstreamGroup: r.UpstreamGroup, UpdatedAt: r.UpdatedAt, ID: r.ID, PrevUpdatedAt: Time(prev),
	}
}

func listArgs(f domain.KeyFilter) listKeysParams {
	p := listKeysParams{IsActive: f.Active, MaxRows: limit(f.Limit)}
	if f.NameContains != "" {
		p.NameContains = &f.NameContains
	}
	if f.After != nil {
		at := Time(f.After.CreatedAt)
		p.AfterCreatedAt, p.AfterID = &at, f.After.ID
	}
	return p
}

// tierRef stores "no tier" as NULL, which the foreign key accepts.
func tierRef(name string) *string {
	if name == "" {
		return nil
	}
	return &name
}

// prefixStrings renders the allow-list as stored: CIDR notation, never
// nil (the column is NOT NULL).
func prefixStrings[L ~[]string](ps []netip.Prefix) L {
	out := make(L, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// storedPrefixes parses a stored allow-list. An entry that does not parse
// is a corrupt row, an internal error, not the caller's invalid input: the
// parse error is formatted in, not wrapped.
func storedPrefixes[L ~[]string](ss L) ([]netip.Prefix, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		p, err := domain.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("stored allowed_ips entry %q: %v", s, err)
		}
		out[i] = p
	}
	return out, nil
}

func nonNil[L ~[]string](ss []string) L {
	if ss == nil {
		return L{}
	}
	return L(ss)
}

func nilIfEmpty[L ~[]string](ss L) []string {
	if len(ss) == 0 {
		return nil
	}
	return []string(ss)
}

// keyBudget is the stored form of a domain.KeyBudget, one element of the
// api_keys.budgets JSON array. The limit is integer nanodollars: a float
// would round money.
type keyBudget struct {
	Window     string `json:"window"`
	LimitNanos int64  `json:"limit_nanos"`
	TimeZone   string `json:"time_zone"`
}

// encodeBudgets returns the stored text of bs: "[]" when there are none
// (the column is NOT NULL).
func encodeBudgets(bs []domain.KeyBudget) string {
	out := make([]keyBudget, len(bs))
	for i, b := range bs {
		out[i] = keyBudget{Window: b.Window, LimitNanos: int64(b.Limit), TimeZone: b.TimeZone}
	}
	j, _ := json.Marshal(out) // cannot fail: only strings and integers
	return string(j)
}

// decodeBudgets reads what encodeBudgets stored; an empty array (or an
// empty string) is none. A row that does not parse is corrupt: an internal
// error, the parse error formatted in, not wrapped.
func decodeBudgets(s string) ([]domain.KeyBudget, error) {
	if s == "" {
		return nil, nil
	}
	// Unknown fields are ignored, so a relay reads what a newer one wrote
	// during a rolling upgrade; a limit that is not an integer fails.
	var in []keyBudget
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("stored budgets %q: %v", s, err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]domain.KeyBudget, len(in))
	for i, b := range in {
		out[i] = domain.KeyBudget{Window: b.Window, Limit: domain.Nanodollars(b.LimitNanos), TimeZone: b.TimeZone}
	}
	return out, nil
}
