package admin

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	// Named money here: the login throttle has a type named budget.
	money "github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/ports"
)

const (
	maxNameLen        = 200
	maxDescriptionLen = 2000
	maxListItems      = 256
	// DefaultKeyPageSize and MaxKeyPageSize bound a key listing page.
	DefaultKeyPageSize = 50
	MaxKeyPageSize     = 200
)

// Nullable is a PATCH field that can be absent (Set false), null (Set true,
// Value nil) or a value.
type Nullable[T any] struct {
	Set   bool
	Value *T
}

// IssuedKey is a key together with its secret, which exists only in the
// create and rotate responses.
type IssuedKey struct {
	Key    domain.APIKey
	Secret string
}

// IssueKeyInput creates a proxy key.
type IssueKeyInput struct {
	Name           string
	Description    string
	TokenLimit     *int64 // nil = unlimited
	RateLimitTier  string // "" = the default tier
	ExpiresAt      *time.Time
	AllowedIPs     []string
	AllowedDomains []string
	// AllowedModels are model ids or globs; empty = any model.
	AllowedModels []string
	// Budgets are the key's money budgets; empty = none.
	Budgets []BudgetInput
	// UpstreamGroup is the upstream group the key's traffic goes to; "" =
	// the default group.
	UpstreamGroup string
}

// Validate checks the fields that need no lookup.
func (in IssueKeyInput) Validate() error {
	if err := validateName(in.Name); err != nil {
		return err
	}
	if err := validateDescription(in.Description); err != nil {
		return err
	}
	if err := validateTokenLimit(in.TokenLimit); err != nil {
		return err
	}
	if in.RateLimitTier != "" && !domain.ValidTierName(in.RateLimitTier) {
		return domain.Invalidf("rate_limit_tier %q is not a valid tier name", in.RateLimitTier)
	}
	if _, err := parseIPs(in.AllowedIPs); err != nil {
		return err
	}
	if _, err := ParseDomainPatterns(in.AllowedDomains); err != nil {
		return err
	}
	if _, err := parseModels(in.AllowedModels); err != nil {
		return err
	}
	if _, err := parseBudgets(in.Budgets); err != nil {
		return err
	}
	return validUpstreamGroup(in.UpstreamGroup)
}

// validUpstreamGroup checks a key's upstream group as an upstream's group
// is checked, so that every group a key can name is one an upstream can
// have. A group no upstream has yet is allowed: the key's requests find no
// upstream until one has it.
func validUpstreamGroup(g string) error {
	if err := upstreams.ValidGroup(g); err != nil {
		return domain.Invalidf("upstream_group must be at most %d bytes of printable UTF-8", pool.MaxGroupLen)
	}
	return nil
}

// Names and descriptions must be valid UTF-8 without NUL: PostgreSQL
// refuses both as text, and SQLite would store them, so checking here makes
// the two engines agree.

func validateName(name string) error {
	n := utf8.RuneCountInString(name)
	switch {
	case strings.TrimSpace(name) == "":
		return domain.Invalidf("name is required")
	case n > maxNameLen || !validText(name):
		return domain.Invalidf("name must be 1-%d characters of valid UTF-8 without NUL", maxNameLen)
	}
	return nil
}

func validateDescription(d string) error {
	if utf8.RuneCountInString(d) > maxDescriptionLen || !validText(d) {
		return domain.Invalidf("description must be at most %d characters of valid UTF-8 without NUL", maxDescriptionLen)
	}
	return nil
}

// validText reports whether s is valid UTF-8 and holds no NUL.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

func validateTokenLimit(l *int64) error {
	if l != nil && *l < 0 {
		return domain.Invalidf("token_limit must be at least 0, or null for unlimited")
	}
	return nil
}

func parseIPs(items []string) ([]netip.Prefix, error) {
	if len(items) > maxListItems {
		return nil, domain.Invalidf("allowed_ips may hold at most %d entries", maxListItems)
	}
	ps, err := domain.ParsePrefixes(items)
	if err != nil {
		return nil, fmt.Errorf("allowed_ips: %w", err)
	}
	return ps, nil
}

func (s *Service) checkExpiry(at *time.Time) error {
	if at != nil && !at.After(s.clock.Now()) {
		return domain.Invalidf("expires_at must be in the future")
	}
	return nil
}

func (s *Service) checkTier(ctx context.Context, name string) error {
	_, err := s.tiers.GetTier(ctx, name)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.Invalidf("rate_limit_tier %q does not exist", name)
	}
	if err != nil {
		return fmt.Errorf("get tier %q: %w", name, err)
	}
	return nil
}

// IssueKey creates a key and returns it with its secret. Only the secret's
// keyed hash is stored.
func (s *Service) IssueKey(ctx context.Context, in IssueKeyInput) (IssuedKey, error) {
	if err := in.Validate(); err != nil {
		return IssuedKey{}, err
	}
	if err := s.checkExpiry(in.ExpiresAt); err != nil {
		return IssuedKey{}, err
	}
	tier := in.RateLimitTier
	if tier == "" {
		tier = s.defaultTier
	}
	if err := s.checkTier(ctx, tier); err != nil {
		return IssuedKey{}, err
	}
	ips, _ := parseIPs(in.AllowedIPs)
	domains, _ := ParseDomainPatterns(in.AllowedDomains)
	models, _ := parseModels(in.AllowedModels)
	budgets, _ := parseBudgets(in.Budgets)
	secret, display, err := domain.NewKeySecret()
	if err != nil {
		return IssuedKey{}, fmt.Errorf("generate key secret: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return IssuedKey{}, fmt.Errorf("generate key id: %w", err)
	}
	now := s.now()
	k := domain.APIKey{
		ID:             id,
		Name:           in.Name,
		Description:    in.Description,
		KeyHash:        s.hasher.Hash(secret),
		KeyPrefix:      display,
		TokenLimit:     in.TokenLimit,
		RateLimitTier:  tier,
		IsActive:       true,
		ExpiresAt:      utcPtr(in.ExpiresAt),
		AllowedIPs:     ips,
		AllowedDomains: domains,
		AllowedModels:  models,
		Budgets:        money.ToKey(budgets),
		UpstreamGroup:  in.UpstreamGroup,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	if err := s.keys.CreateKey(ctx, k); err != nil {
		return IssuedKey{}, fmt.Errorf("create key: %w", err)
	}
	return IssuedKey{Key: k, Secret: secret}, nil
}

// now is the clock's time in UTC, at the microsecond precision both SQL
// engines keep, so what a use case returns equals what a later read returns.
func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	return &u
}

// ListKeysInput selects one page of keys.
type ListKeysInput struct {
	Active *bool
	Name   string
	Cursor string
	Limit  int // 0 = DefaultKeyPageSize
}

// Validate checks the page size, the name filter and the cursor.
func (in ListKeysInput) Validate() error {
	if in.Limit < 0 || in.Limit > MaxKeyPageSize {
		return domain.Invalidf("limit must be between 1 and %d", MaxKeyPageSize)
	}
	if len(in.Name) > maxNameLen {
		return domain.Invalidf("name filter must be at most %d characters", maxNameLen)
	}
	if !validText(in.Name) {
		return domain.Invalidf("name filter must be valid UTF-8 without NUL")
	}
	if in.Cursor != "" {
		if _, err := decodeKeyCursor(in.Cursor); err != nil {
			return err
		}
	}
	return nil
}

// KeyPage is one page of keys; NextCursor is "" on the last page.
type KeyPage struct {
	Keys []domain.APIKey
	// Quotas[i] is Keys[i]'s quota view; nil when its ledgers could not be
	// read (the page is still served, and the failure logged).
	Quotas     []*QuotaView
	NextCursor string
}

// ListKeys returns keys newest first, each with its quota view.
func (s *Service) ListKeys(ctx context.Context, in ListKeysInput) (KeyPage, error) {
	if err := in.Validate(); err != nil {
		return KeyPage{}, err
	}
	limit := in.Limit
	if limit == 0 {
		limit = DefaultKeyPageSize
	}
	f := domain.KeyFilter{Active: in.Active, NameContains: in.Name, Limit: limit + 1}
	if in.Cursor != "" {
		c, _ := decodeKeyCursor(in.Cursor)
		f.After = &c
	}
	keys, err := s.keys.ListKeys(ctx, f)
	if err != nil {
		return KeyPage{}, fmt.Errorf("list keys: %w", err)
	}
	page := KeyPage{Keys: keys}
	if len(keys) > limit {
		page.Keys = keys[:limit]
		last := page.Keys[limit-1]
		page.NextCursor = encodeKeyCursor(domain.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	page.Quotas = s.quotaViews(ctx, page.Keys)
	return page, nil
}

// pageLedgerReads bounds the ledger reads one key page runs at once.
const pageLedgerReads = 16

// quotaViews is the quota view of every key of a page, in one pass. A key
// without a token limit or budgets costs nothing: its view is its row. The
// others each read their ledgers (one in-process call each for the memory
// ledgers, one Redis round trip each for the shared ones), at most
// pageLedgerReads at once, so a page waits for about
// ceil(n/pageLedgerReads) round trips rather than n; a key with budgets
// the budget ledger does not hold yet is seeded from storage once, on its
// first read. A key whose ledgers fail gets no view: the list is still
// served (and the failures logged once), since its other fields stand.
func (s *Service) quotaViews(ctx context.Context, keys []domain.APIKey) []*QuotaView {
	out := make([]*QuotaView, len(keys))
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed int
		first  error
	)
	sem := make(chan struct{}, pageLedgerReads)
	for i, k := range keys {
		if !s.needsLedger(k) {
			v, _ := s.quotaView(ctx, k) // reads no ledger: cannot fail
			out[i] = &v
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			v, err := s.quotaView(ctx, k)
			if err != nil {
				mu.Lock()
				if failed++; first == nil {
					first = err
				}
				mu.Unlock()
				return
			}
			out[i] = &v
		}()
	}
	wg.Wait()
	if failed > 0 && ctx.Err() == nil {
		s.log.Warn("key list: quota views unavailable", "keys", failed, "error", first.Error())
	}
	return out
}

// GetKey returns a key that is not deleted.
func (s *Service) GetKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	k, err := s.keys.GetKey(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindNotFound, Message: "API key not found", Err: err}
	}
	if err != nil {
		return domain.APIKey{}, fmt.Errorf("get key: %w", err)
	}
	return k, nil
}

// UpdateKeyInput changes some of a key's fields; nil and unset fields stay.
type UpdateKeyInput struct {
	ID             uuid.UUID
	Name           *string
	Description    *string
	TokenLimit     Nullable[int64]
	RateLimitTier  *string
	ExpiresAt      Nullable[time.Time]
	AllowedIPs     *[]string
	AllowedDomains *[]string
	// AllowedModels and Budgets replace the key's lists; an empty list
	// clears one.
	AllowedModels *[]string
	Budgets       *[]BudgetInput
	// UpstreamGroup: "" moves the key to the default group.
	UpstreamGroup *string
}

// Validate checks every field present.
func (in UpdateKeyInput) Validate() error {
	if in.Name != nil {
		if err := validateName(*in.Name); err != nil {
			return err
		}
	}
	if in.Description != nil {
		if err := validateDescription(*in.Description); err != nil {
			return err
		}
	}
	if err := validateTokenLimit(in.TokenLimit.Value); err != nil {
		return err
	}
	if in.RateLimitTier != nil && !domain.ValidTierName(*in.RateLimitTier) {
		return domain.Invalidf("rate_limit_tier %q is not a valid tier name", *in.RateLimitTier)
	}
	if in.AllowedIPs != nil {
		if _, err := parseIPs(*in.AllowedIPs); err != nil {
			return err
		}
	}
	if in.AllowedDomains != nil {
		if _, err := ParseDomainPatterns(*in.AllowedDomains); err != nil {
			return err
		}
	}
	if in.AllowedModels != nil {
		if _, err := parseModels(*in.AllowedModels); err != nil {
			return err
		}
	}
	if in.Budgets != nil {
		if _, err := parseBudgets(*in.Budgets); err != nil {
			return err
		}
	}
	if in.UpstreamGroup != nil {
		return validUpstreamGroup(*in.UpstreamGroup)
	}
	return nil
}

// UpdateKey applies a partial update. When it changes the key's budgets,
// the key's budget ledger is reset once the key is stored, so it re-seeds
// from storage with the new list: a ledger need not have followed the
// key's spend while the key had no budgets (or other ones).
func (s *Service) UpdateKey(ctx context.Context, in UpdateKeyInput) (domain.APIKey, error) {
	if err := in.Validate(); err != nil {
		return domain.APIKey{}, err
	}
	if in.ExpiresAt.Set {
		if err := s.checkExpiry(in.ExpiresAt.Value); err != nil {
			return domain.APIKey{}, err
		}
	}
	var budgetsChanged bool
	k, err := s.mutate(ctx, in.ID, func(k *domain.APIKey) error {
		// mutate may run this more than once: decide from the key read.
		budgetsChanged = false
		if in.Name != nil {
			k.Name = *in.Name
		}
		if in.Description != nil {
			k.Description = *in.Description
		}
		if in.TokenLimit.Set {
			k.TokenLimit = in.TokenLimit.Value
		}
		if in.RateLimitTier != nil && *in.RateLimitTier != k.RateLimitTier {
			if err := s.checkTier(ctx, *in.RateLimitTier); err != nil {
				return err
			}
			k.RateLimitTier = *in.RateLimitTier
		}
		if in.ExpiresAt.Set {
			k.ExpiresAt = utcPtr(in.ExpiresAt.Value)
		}
		if in.AllowedIPs != nil {
			k.AllowedIPs, _ = parseIPs(*in.AllowedIPs)
		}
		if in.AllowedDomains != nil {
			k.AllowedDomains, _ = ParseDomainPatterns(*in.AllowedDomains)
		}
		if in.AllowedModels != nil {
			k.AllowedModels, _ = parseModels(*in.AllowedModels)
		}
		if in.Budgets != nil {
			bs, _ := parseBudgets(*in.Budgets)
			next := money.ToKey(bs)
			// The ledger follows the spend of every key with budgets, so
			// changing them needs nothing: the next request is measured
			// against the spend already there. A key that had none was
			// not followed (and a ledger may still hold stale figures
			// from budgets it had before): it must re-seed from storage.
			// Resetting in any other case would drop the reservations of
			// its requests in flight.
			budgetsChanged = len(k.Budgets) == 0 && len(next) > 0
			k.Budgets = next
		}
		if in.UpstreamGroup != nil {
			k.UpstreamGroup = *in.UpstreamGroup
		}
		return nil
	})
	if err != nil {
		return domain.APIKey{}, err
	}
	if budgetsChanged {
		s.resetBudgets(ctx, k.ID, "budgets changed")
	}
	return k, nil
}

// resetBudgets makes the key's budget ledger re-seed from storage on its
// next use. It runs even if the caller has gone away, since the change it
// follows is stored already; for the same reason a failure is logged, not
// returned (the ledger also forgets an idle key on its own).
func (s *Service) resetBudgets(ctx context.Context, id uuid.UUID, why string) {
	if s.budgets == nil {
		return
	}
	if err := s.budgets.Reset(context.WithoutCancel(ctx), id); err != nil {
		s.log.Error("reset budget ledger", "key_id", id.String(), "why", why, "error", err.Error())
	}
}

// maxUpdateAttempts bounds how often mutate re-applies a change after
// losing a race with another writer of the same key.
const maxUpdateAttempts = 5

// mutate reads key id, applies change to it and writes it back, but only if
// nobody changed the key in between: the store compares updated_at with the
// value read (optimistic concurrency), so a PATCH racing a disable or a
// rotation cannot silently undo it. On ports.ErrStale it re-reads and
// re-applies change, which must therefore be safe to run more than once.
// A successful write drops the key from the cache: every field can change
// whether, or from where, the key may authenticate.
func (s *Service) mutate(ctx context.Context, id uuid.UUID, change func(*domain.APIKey) error) (domain.APIKey, error) {
	var err error
	for attempt := range maxUpdateAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return domain.APIKey{}, err
			}
		}
		var k domain.APIKey
		if k, err = s.GetKey(ctx, id); err != nil {
			return domain.APIKey{}, err
		}
		prev := k.UpdatedAt
		if err = change(&k); err != nil {
			return domain.APIKey{}, err
		}
		// Strictly later than prev, so every write changes updated_at and a
		// writer that read the old row is always refused.
		k.UpdatedAt = s.now()
		if !k.UpdatedAt.After(prev) {
			k.UpdatedAt = prev.Add(time.Microsecond)
		}
		err = s.keys.UpdateKey(ctx, k, prev)
		switch {
		case err == nil:
			s.invalidate(k)
			return k, nil
		case errors.Is(err, ports.ErrStale):
			continue
		case errors.Is(err, domain.ErrNotFound):
			return domain.APIKey{}, &domain.Error{Kind: domain.KindNotFound, Message: "API key not found", Err: err}
		default:
			return domain.APIKey{}, fmt.Errorf("update key: %w", err)
		}
	}
	// Still losing after several attempts: tell the client to retry (409).
	return domain.APIKey{}, fmt.Errorf("update key after %d attempts: %w", maxUpdateAttempts, err)
}

// backoff waits a short random time before the attempt-th retry, so writers
// that collided do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond)))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("update key: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// DisableKey stops a key from authenticating until it is enabled again.
func (s *Service) DisableKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	return s.setActive(ctx, id, false)
}

// EnableKey lets a disabled key authenticate again.
func (s *Service) EnableKey(ctx context.Context, id uuid.UUID) (domain.APIKey, error) {
	return s.setActive(ctx, id, true)
}

func (s *Service) setActive(ctx context.Context, id uuid.UUID, active bool) (domain.APIKey, error) {
	return s.mutate(ctx, id, func(k *domain.APIKey) error {
		k.IsActive = active
		return nil
	})
}

// RotateKey gives the key a new secret. The old one stops working at once
// on this replica (and within the key cache's TTL on others).
func (s *Service) RotateKey(ctx context.Context, id uuid.UUID) (IssuedKey, error) {
	var secret string
	k, err := s.mutate(ctx, id, func(k *domain.APIKey) error {
		// A fresh secret per attempt; the one returned is the last one
		// generated, which is the one that was stored.
		sec, display, err := domain.NewKeySecret()
		if err != nil {
			return fmt.Errorf("generate key secret: %w", err)
		}
		secret = sec
		k.KeyHash, k.KeyPrefix = s.hasher.Hash(sec), display
		return nil
	})
	if err != nil {
		return IssuedKey{}, err
	}
	return IssuedKey{Key: k, Secret: secret}, nil
}

// DeleteKey soft-deletes a key: it stops working, and its usage history
// stays for the admin views.
func (s *Service) DeleteKey(ctx context.Context, id uuid.UUID) error {
	k, err := s.GetKey(ctx, id)
	if err != nil {
		return err
	}
	err = s.keys.DeleteKey(ctx, id, s.now())
	if errors.Is(err, domain.ErrNotFound) {
		return &domain.Error{Kind: domain.KindNotFound, Message: "API key not found", Err: err}
	}
	if err != nil {
		return fmt.Errorf("delete key: %w", err)
	}
	s.invalidate(k)
	if s.ledger != nil {
		if err := s.ledger.Reset(ctx, id); err != nil {
			// The key can no longer authenticate, so a stale ledger entry
			// costs memory only until it expires.
			s.log.Warn("reset quota ledger of deleted key", "key_id", id.String(), "error", err.Error())
		}
	}
	s.resetBudgets(ctx, id, "key deleted")
	return nil
}
