// Package admin holds the management use cases: admin login, the proxy-key
// lifecycle, rate-limit tiers, and the usage views for admins and key
// holders. Each use case takes an input struct with a Validate method; the
// HTTP adapter converts its generated types to these and back.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alexedwards/argon2id"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/ports"
)

// Deps are the ports the use cases drive. Keys, Tiers, Usage, Clock and
// Hasher are required; the rest may be nil, and the views that use them then
// report what storage alone knows.
type Deps struct {
	Keys  ports.KeyStore
	Tiers ports.TierStore
	Usage ports.UsageStore
	// Cache is invalidated when a key is disabled, rotated or deleted, so the
	// change takes effect at once on this replica.
	Cache       ports.KeyLookup
	Ledger      ports.QuotaLedger
	Limiter     ports.RateLimiter
	Concurrency ports.ConcurrencyLimiter
	Clock       ports.Clock
	Hasher      domain.KeyHasher
	Log         *slog.Logger
	// LoginThrottle keeps the login throttle's counters; required.
	// LoginThrottleFallback, when set, takes over while LoginThrottle
	// fails (a shared store that is unreachable); without it logins are
	// refused then.
	LoginThrottle         ports.LoginThrottle
	LoginThrottleFallback ports.LoginThrottle
	// Prices is the price table (its versions, the unpriced models seen);
	// Budgets the money-budget ledger, for the quota views and to be reset
	// when a key's budgets change; Repricer rewrites stored costs. Without
	// them the views show no budgets, and pricing and repricing answer 503.
	Prices   *billing.Prices
	Budgets  *billing.Budgets
	Repricer ports.UsageRepricer
}

// Config is the admin side's own settings.
type Config struct {
	AdminUsername string
	// AdminPasswordHash is an argon2id PHC string ($argon2id$v=19$...).
	AdminPasswordHash string
	// DefaultTier is given to keys created without a tier
	// (default domain.DefaultTierName).
	DefaultTier string
	// MaxPasswordChecks bounds the argon2id checks running at once (each
	// costs ~64 MB and tens of ms of CPU); a login that finds them all
	// busy is refused with 429 at once, never queued. Required (> 0).
	MaxPasswordChecks int
	// LoginThrottle is the login throttle's policy; required.
	LoginThrottle LoginThrottlePolicy
}

// DefaultTokenTTL is how long an admin login lasts: the lifetime of the
// token the HTTP adapter issues for it.
const DefaultTokenTTL = time.Hour

// Service runs the management use cases.
type Service struct {
	// passwordChecks is a semaphore of argon2id checks in flight.
	passwordChecks chan struct{}
	throttle       *LoginThrottle
	keys           ports.KeyStore
	tiers          ports.TierStore
	usage          ports.UsageStore
	cache          ports.KeyLookup
	ledger         ports.QuotaLedger
	limiter        ports.RateLimiter
	concurrency    ports.ConcurrencyLimiter
	clock          ports.Clock
	hasher         domain.KeyHasher
	log            *slog.Logger
	// prices, budgets and repricer may be nil (see Deps).
	prices   *billing.Prices
	budgets  *billing.Budgets
	repricer ports.UsageRepricer

	adminUser   string
	adminHash   string
	defaultTier string
}

// NewService checks the configuration and builds a Service.
func NewService(d Deps, c Config) (*Service, error) {
	switch {
	case d.Keys == nil || d.Tiers == nil || d.Usage == nil:
		return nil, fmt.Errorf("admin: key, tier and usage stores are required")
	case d.Clock == nil:
		return nil, fmt.Errorf("admin: a clock is required")
	case c.AdminUsername == "":
		return nil, fmt.Errorf("admin: the admin username is empty")
	}
	if _, _, _, err := argon2id.DecodeHash(c.AdminPasswordHash); err != nil {
		return nil, fmt.Errorf("admin: the admin password hash is not an argon2id hash: %w", err)
	}
	if c.DefaultTier == "" {
		c.DefaultTier = domain.DefaultTierName
	}
	if c.MaxPasswordChecks <= 0 {
		return nil, fmt.Errorf("admin: MaxPasswordChecks must be positive")
	}
	if !domain.ValidTierName(c.DefaultTier) {
		return nil, fmt.Errorf("admin: default tier %q is not a valid tier name", c.DefaultTier)
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	throttle, err := NewLoginThrottle(d.LoginThrottle, d.LoginThrottleFallback, c.LoginThrottle, log)
	if err != nil {
		return nil, fmt.Errorf("admin: %w", err)
	}
	return &Service{
		keys: d.Keys, tiers: d.Tiers, usage: d.Usage, cache: d.Cache, ledger: d.Ledger,
		limiter: d.Limiter, concurrency: d.Concurrency, clock: d.Clock, hasher: d.Hasher, log: log,
		prices: d.Prices, budgets: d.Budgets, repricer: d.Repricer,
		adminUser: c.AdminUsername, adminHash: c.AdminPasswordHash, defaultTier: c.DefaultTier,
		passwordChecks: make(chan struct{}, c.MaxPasswordChecks), throttle: throttle,
	}, nil
}

// DefaultTier is the tier new keys get when none is named.
func (s *Service) DefaultTier() string { return s.defaultTier }

// SeedTiers writes the configured tiers (or domain.DefaultTiers when none
// are configured) into an empty tier table. Once the table has rows the
// database is authoritative and this does nothing.
func (s *Service) SeedTiers(ctx context.Context, configured []domain.Tier) error {
	tiers := configured
	if len(tiers) == 0 {
		tiers = domain.DefaultTiers()
	}
	now := s.clock.Now().UTC()
	seed := make([]domain.Tier, len(tiers))
	for i, t := range tiers {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("seed tier %q: %w", t.Name, err)
		}
		t.CreatedAt, t.UpdatedAt = now, now
		seed[i] = t
	}
	if err := s.tiers.SeedTiers(ctx, seed); err != nil {
		return fmt.Errorf("seed tiers: %w", err)
	}
	// Every key created without a tier gets the default one, so a default
	// tier that does not exist would fail each such creation later with a
	// confusing 400: refuse to start instead.
	_, err := s.tiers.GetTier(ctx, s.defaultTier)
	if errors.Is(err, domain.ErrNotFound) {
		names := make([]string, 0, len(tiers))
		if stored, lerr := s.tiers.ListTiers(ctx); lerr == nil {
			for _, t := range stored {
				names = append(names, t.Name)
			}
		}
		return fmt.Errorf("rate_limit.default_tier %q is not a rate-limit tier (the stored tiers are %s): "+
			"add it to rate_limit.by_tier (or, once the database is seeded, with PUT /admin/tiers/%s), "+
			"or set rate_limit.default_tier to an existing tier", s.defaultTier, strings.Join(names, ", "), s.defaultTier)
	}
	if err != nil {
		return fmt.Errorf("check rate_limit.default_tier %q: %w", s.defaultTier, err)
	}
	return nil
}

func (s *Service) invalidate(k domain.APIKey) {
	if s.cache != nil {
		s.cache.Invalidate(k.ID)
	}
}
