package config

import (
	"encoding/json"
	"net/url"
	"sort"
	"time"

	"github.com/relaystation/relay/domain"
)

const mask = "*****"

func maskIf(s string) string {
	if s == "" {
		return ""
	}
	return mask
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return maskIf(s)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), mask)
		}
	}
	return u.String()
}

// Redacted returns a copy with every secret masked, safe to print or log.
func (c Config) Redacted() Config {
	r := c
	r.SecretKey = maskIf(c.SecretKey)
	r.KeyHashSecret = maskIf(c.KeyHashSecret)
	r.DatabaseURL = redactURL(c.DatabaseURL)
	r.RedisURL = redactURL(c.RedisURL)
	r.Admin.Password = maskIf(c.Admin.Password)
	r.Admin.PasswordHash = maskIf(c.Admin.PasswordHash)
	r.Metrics.Token = maskIf(c.Metrics.Token)
	r.Upstream.Primary.APIKey = maskIf(c.Upstream.Primary.APIKey)
	r.Upstream.Fallbacks = append([]UpstreamConfig(nil), c.Upstream.Fallbacks...)
	for i := range r.Upstream.Fallbacks {
		r.Upstream.Fallbacks[i].APIKey = maskIf(r.Upstream.Fallbacks[i].APIKey)
	}
	r.Upstream.KeySecret = maskIf(c.Upstream.KeySecret)
	r.Upstream.PreviousKeySecrets = make([]string, len(c.Upstream.PreviousKeySecrets))
	for i, s := range c.Upstream.PreviousKeySecrets {
		r.Upstream.PreviousKeySecrets[i] = maskIf(s)
	}
	if c.Upstream.PreviousKeySecrets == nil {
		r.Upstream.PreviousKeySecrets = nil
	}
	return r
}

// String renders the redacted configuration as JSON.
func (c Config) String() string {
	b, _ := json.MarshalIndent(c.Redacted(), "", "  ")
	return string(b)
}

// Tiers returns the configured tiers as domain tiers, sorted by name; nil
// when the configuration names none (the caller then uses the defaults).
func (c Config) Tiers() []domain.Tier {
	if len(c.RateLimit.ByTier) == 0 {
		return nil
	}
	out := make([]domain.Tier, 0, len(c.RateLimit.ByTier))
	for name, t := range c.RateLimit.ByTier {
		out = append(out, domain.Tier{
			Name:           name,
			Requests:       t.Requests,
			Period:         t.Period.Truncate(time.Second),
			Tokens:         t.Tokens,
			MaxConcurrency: t.MaxConcurrency,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
