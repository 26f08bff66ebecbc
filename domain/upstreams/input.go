package upstreams

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
)

// Bounds of the fields an operator sets.
const (
	MaxNameLen     = 200
	MaxURLLen      = 2048
	MaxAPIKeyLen   = 512
	MaxPriority    = 1_000_000
	MaxConcurrency = 1_000_000
	// MaxReasonLen bounds a stored disabled reason.
	MaxReasonLen = 500
)

// ListInput asks for every upstream.
type ListInput struct{}

// Validate has nothing to check: every upstream is listed.
func (ListInput) Validate() error { return nil }

// GetInput names one upstream.
type GetInput struct{ ID string }

// Validate checks that an id is given.
func (in GetInput) Validate() error { return validID(in.ID) }

// CreateInput creates an upstream. The id is generated; it never changes.
type CreateInput struct {
	Name string
	URL  string
	// APIKey is the upstream's API key: sealed before it is stored, never
	// returned or logged.
	APIKey   string
	Priority int
	// Weight is the share of new sessions within the tier; nil is 1.
	Weight *int
	// MaxConcurrency caps in-flight requests per replica; 0 is no cap.
	MaxConcurrency int
	// Models are model ids or path.Match globs; none means every model.
	Models []string
	Group  string
	// Enabled: nil is true.
	Enabled *bool
	// Actor is the admin who asks, for the disabled reason of an upstream
	// created disabled.
	Actor string
}

// Validate checks every field.
func (in CreateInput) Validate() error {
	if err := validName(in.Name); err != nil {
		return err
	}
	if err := validURL(in.URL); err != nil {
		return err
	}
	if err := validAPIKey(in.APIKey); err != nil {
		return err
	}
	if in.Weight != nil {
		if err := validWeight(*in.Weight); err != nil {
			return err
		}
	}
	if err := validPriority(in.Priority); err != nil {
		return err
	}
	if err := validConcurrency(in.MaxConcurrency); err != nil {
		return err
	}
	if err := validModels(in.Models); err != nil {
		return err
	}
	return validGroup(in.Group)
}

// UpdateInput changes some of an upstream's fields; nil fields stay.
type UpdateInput struct {
	ID   string
	Name *string
	URL  *string
	// APIKey replaces the key (sealed again).
	APIKey   *string
	Priority *int
	Weight   *int
	// MaxConcurrency: 0 is no cap.
	MaxConcurrency *int
	// Models replaces the list; an empty list means every model.
	Models  *[]string
	Group   *string
	Enabled *bool
	Actor   string
}

// Validate checks every field present.
func (in UpdateInput) Validate() error {
	if err := validID(in.ID); err != nil {
		return err
	}
	checks := []func() error{
		func() error { return ifSet(in.Name, validName) },
		func() error { return ifSet(in.URL, validURL) },
		func() error { return ifSet(in.APIKey, validAPIKey) },
		func() error { return ifSet(in.Priority, validPriority) },
		func() error { return ifSet(in.Weight, validWeight) },
		func() error { return ifSet(in.MaxConcurrency, validConcurrency) },
		func() error { return ifSet(in.Models, validModels) },
		func() error { return ifSet(in.Group, validGroup) },
	}
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}

func ifSet[T any](v *T, check func(T) error) error {
	if v == nil {
		return nil
	}
	return check(*v)
}

// DisableInput turns an upstream off; Actor names the admin, for the
// reason kept with it.
type DisableInput struct {
	ID    string
	Actor string
}

// Validate checks that an id is given.
func (in DisableInput) Validate() error { return validID(in.ID) }

// EnableInput turns an upstream on again.
type EnableInput struct {
	ID    string
	Actor string
}

// Validate checks that an id is given.
func (in EnableInput) Validate() error { return validID(in.ID) }

// DeleteInput removes an upstream.
type DeleteInput struct{ ID string }

// Validate checks that an id is given.
func (in DeleteInput) Validate() error { return validID(in.ID) }

// TestInput sends one cheap request to an upstream with its stored key.
type TestInput struct{ ID string }

// Validate checks that an id is given.
func (in TestInput) Validate() error { return validID(in.ID) }

// SeedUpstream is an upstream of the configuration, seeded into an empty
// table on first start.
type SeedUpstream struct {
	// ID is the configuration's name ("primary", a fallback's name), so that
	// pins and usage that name it keep working.
	ID     string
	Name   string
	URL    string
	APIKey string
	// Priority: the primary 0, each fallback its place in the list.
	Priority int
	Weight   int
	Group    string
	Enabled  bool
}

// Validate checks every field; an empty APIKey is allowed (that upstream is
// not seeded).
func (in SeedUpstream) Validate() error {
	if err := validSeedID(in.ID); err != nil {
		return err
	}
	if err := validName(in.Name); err != nil {
		return err
	}
	if err := validURL(in.URL); err != nil {
		return err
	}
	if in.APIKey != "" {
		if err := validAPIKey(in.APIKey); err != nil {
			return err
		}
	}
	if err := validPriority(in.Priority); err != nil {
		return err
	}
	if err := validWeight(in.Weight); err != nil {
		return err
	}
	return validGroup(in.Group)
}

func validID(id string) error {
	if id == "" {
		return domain.Invalidf("an upstream id is required")
	}
	return nil
}

// validSeedID accepts the ids a configuration gives: its upstreams' names,
// which appear in URLs of the admin API and in metrics.
func validSeedID(id string) error {
	if id == "" || len(id) > pool.MaxIDLen {
		return domain.Invalidf("upstream id must be 1-%d characters", pool.MaxIDLen)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return domain.Invalidf("upstream id %q must be letters, digits, '-', '_' or '.'", id)
		}
	}
	return nil
}

func validName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return domain.Invalidf("name is required")
	case utf8.RuneCountInString(name) > MaxNameLen || !printable(name):
		return domain.Invalidf("name must be 1-%d printable characters of valid UTF-8", MaxNameLen)
	}
	return nil
}

func validURL(raw string) error {
	if len(raw) > MaxURLLen || !printable(raw) || strings.ContainsRune(raw, ' ') {
		return domain.Invalidf("url must be an http or https URL of at most %d characters", MaxURLLen)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		// The URL is not echoed: a key pasted into the wrong field would be.
		return domain.Invalidf("url must be an http or https URL with a host, e.g. https://api.anthropic.com")
	case u.User != nil:
		// It would be shown in every view and log line; the key has a field.
		return domain.Invalidf("url must not hold credentials; give the key as api_key")
	case u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return domain.Invalidf("url must not have a query or a fragment")
	}
	return nil
}

// validAPIKey refuses what could not be sent as a header value unchanged
// (spaces, control characters), so a key can never split a header.
func validAPIKey(key string) error {
	if key == "" {
		return domain.Invalidf("api_key is required")
	}
	if len(key) > MaxAPIKeyLen {
		return domain.Invalidf("api_key must be at most %d bytes", MaxAPIKeyLen)
	}
	for _, c := range key {
		if c <= ' ' || c >= 0x7f {
			return domain.Invalidf("api_key must be printable ASCII without spaces")
		}
	}
	return nil
}

func validPriority(p int) error {
	if p < 0 || p > MaxPriority {
		return domain.Invalidf("priority must be between 0 and %d", MaxPriority)
	}
	return nil
}

func validWeight(w int) error {
	if w < 1 || w > pool.MaxWeight {
		return domain.Invalidf("weight must be between 1 and %d", pool.MaxWeight)
	}
	return nil
}

func validConcurrency(c int) error {
	if c < 0 || c > MaxConcurrency {
		return domain.Invalidf("max_concurrency must be between 1 and %d, or 0 or null for no cap", MaxConcurrency)
	}
	return nil
}

func validModels(ms []string) error {
	if len(ms) > pool.MaxModels {
		return domain.Invalidf("models may hold at most %d patterns", pool.MaxModels)
	}
	for _, m := range ms {
		if err := domain.ValidModelPattern(m); err != nil {
			return err
		}
	}
	return nil
}

// ValidGroup checks an upstream group name, of an upstream or of the group
// a proxy key names: at most pool.MaxGroupLen bytes of printable text; ""
// is the default group.
func ValidGroup(g string) error { return validGroup(g) }

func validGroup(g string) error {
	if len(g) > pool.MaxGroupLen || !printable(g) {
		return domain.Invalidf("group must be at most %d bytes of printable UTF-8", pool.MaxGroupLen)
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters
// (NUL included: PostgreSQL refuses it, SQLite would store it).
func printable(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, c := range s {
		if unicode.IsControl(c) {
			return false
		}
	}
	return true
}
