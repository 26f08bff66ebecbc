package pricing

import (
	"cmp"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/relaystation/relay/domain"
)

// ErrUnpriced marks a model the table has no price for, under the refuse
// policy.
var ErrUnpriced = errors.New("model is not priced")

// Unpriced is the policy for a model the table does not price
// (config pricing.unpriced).
type Unpriced string

const (
	// UnpricedRefuse refuses the model: Resolve fails with ErrUnpriced. It
	// is what the zero Policy does.
	UnpricedRefuse Unpriced = "refuse"
	// UnpricedFallback prices the model at the Policy's FallbackModel.
	UnpricedFallback Unpriced = "fallback"
)

// Policy says what to do with a model the table does not price.
type Policy struct {
	Unpriced Unpriced
	// FallbackModel names the entry (an id, alias or pattern match) that
	// prices unknown models under UnpricedFallback.
	FallbackModel string
}

// Validate checks the policy against t: a fallback must name a model t
// prices.
func (p Policy) Validate(t *Table) error {
	switch p.Unpriced {
	case "", UnpricedRefuse:
		return nil
	case UnpricedFallback:
		if p.FallbackModel == "" {
			return domain.Invalidf("pricing.unpriced %q needs a fallback model", p.Unpriced)
		}
		if _, ok := t.Lookup(p.FallbackModel); !ok {
			return domain.Invalidf("pricing fallback model %q is not in price table %s", p.FallbackModel, t.Version)
		}
		return nil
	default:
		return domain.Invalidf("pricing.unpriced %q: want %q or %q", p.Unpriced, UnpricedRefuse, UnpricedFallback)
	}
}

// MatchKind says how a model name found its entry.
type MatchKind string

const (
	ByID       MatchKind = "id"
	ByAlias    MatchKind = "alias"
	ByPattern  MatchKind = "pattern"
	ByFallback MatchKind = "fallback"
)

// Match is the entry a model name resolved to.
type Match struct {
	Entry *Entry
	By    MatchKind
	// Pattern is the glob that matched, for ByPattern.
	Pattern string
}

type pattern struct {
	glob     string
	literals int // characters that are not glob syntax
	entry    *Entry
}

func newPattern(glob string, e *Entry) pattern {
	n := 0
	for i := 0; i < len(glob); i++ {
		switch glob[i] {
		case '*', '?', '[', ']', '\\':
		default:
			n++
		}
	}
	return pattern{glob: glob, literals: n, entry: e}
}

// sortPatterns orders patterns most specific first: more literal
// characters, then the longer glob, then the byte-wise smaller glob. Globs
// are unique in a table, so the order, and every lookup, is deterministic
// whatever the order of the entries in the file.
func sortPatterns(ps []pattern) {
	slices.SortFunc(ps, func(a, b pattern) int {
		if c := cmp.Compare(b.literals, a.literals); c != 0 {
			return c
		}
		if c := cmp.Compare(len(b.glob), len(a.glob)); c != 0 {
			return c
		}
		return strings.Compare(a.glob, b.glob)
	})
}

// Lookup finds the entry for a model name: an exact id or alias first,
// then the most specific matching pattern (see sortPatterns).
func (t *Table) Lookup(model string) (Match, bool) {
	if e, ok := t.byName[model]; ok {
		by := ByAlias
		if e.ID == model {
			by = ByID
		}
		return Match{Entry: e, By: by}, true
	}
	for _, p := range t.patterns {
		// Globs were checked when the table was built, so Match cannot fail.
		if ok, _ := path.Match(p.glob, model); ok {
			return Match{Entry: p.entry, By: ByPattern, Pattern: p.glob}, true
		}
	}
	return Match{}, false
}

// Resolve is Lookup under a policy: an unpriced model either fails with an
// error matching ErrUnpriced (kind invalid), or resolves to the fallback.
func (t *Table) Resolve(model string, p Policy) (Match, error) {
	if m, ok := t.Lookup(model); ok {
		return m, nil
	}
	if p.Unpriced == UnpricedFallback {
		if m, ok := t.Lookup(p.FallbackModel); ok {
			return Match{Entry: m.Entry, By: ByFallback}, nil
		}
	}
	return Match{}, &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonUnpriced,
		Message: fmt.Sprintf("model %q has no price in price table %s", model, t.Version), Err: ErrUnpriced}
}
