package pool

import (
	"github.com/relaystation/relay/domain"
)

// Upstream is the pool's view of one configured upstream: what selection
// needs, not how to reach it (its URL and API key stay with the transport).
type Upstream struct {
	// ID names the upstream in pins, object affinity, events and skips. It
	// must not change when the upstream is renamed, or every session pinned
	// to it would lose its prompt cache.
	ID string
	// Name is for people (logs, the admin view).
	Name string
	// Priority is the upstream's tier. Lower is preferred: tier 0 takes every
	// new session while any of its upstreams may, tier 1 only when none may.
	Priority int
	// Weight is the upstream's share of new sessions within its tier,
	// relative to the others' weights; at least 1.
	Weight int
	// MaxConcurrency caps the requests in flight on it from this replica;
	// 0 means no cap.
	MaxConcurrency int
	// Models are the model ids it serves, as path.Match globs such as
	// "claude-sonnet-*"; none means every model.
	Models []string
	// Group is the upstream group it belongs to; "" is the default group,
	// which keys that name no group use.
	Group string
	// Enabled is the operator's switch. A disabled upstream keeps its
	// health, so enabling it again does not forget a cooling.
	Enabled bool
}

// Bounds of an Upstream's fields.
const (
	MaxIDLen    = 128
	MaxGroupLen = 64
	MaxWeight   = 1_000_000
	MaxModels   = 64
)

// Validate checks the upstream's own fields.
func (u Upstream) Validate() error {
	switch {
	case u.ID == "" || len(u.ID) > MaxIDLen:
		return domain.Invalidf("upstream id must be 1-%d bytes", MaxIDLen)
	case u.Priority < 0:
		return domain.Invalidf("upstream %s: priority must be 0 or more", u.ID)
	case u.Weight < 1 || u.Weight > MaxWeight:
		return domain.Invalidf("upstream %s: weight must be between 1 and %d", u.ID, MaxWeight)
	case u.MaxConcurrency < 0:
		return domain.Invalidf("upstream %s: max_concurrency must be 0 (no cap) or more", u.ID)
	case len(u.Group) > MaxGroupLen:
		return domain.Invalidf("upstream %s: group must be at most %d bytes", u.ID, MaxGroupLen)
	case len(u.Models) > MaxModels:
		return domain.Invalidf("upstream %s: at most %d model patterns", u.ID, MaxModels)
	}
	for _, m := range u.Models {
		if err := domain.ValidModelPattern(m); err != nil {
			return domain.Invalidf("upstream %s: %s", u.ID, err.(*domain.Error).Message)
		}
	}
	return nil
}

// Serves reports whether the upstream serves model. A request that names
// no model (a file, a batch listing) can go anywhere.
func (u Upstream) Serves(model string) bool {
	return len(u.Models) == 0 || model == "" || domain.MatchModel(u.Models, model)
}
