package domain

import "path"

// MaxModelPatternLen bounds one model id or glob (allowed_models, an
// upstream's models).
const MaxModelPatternLen = 256

// MatchModel reports whether model equals one of patterns or matches it as
// a path.Match glob ("claude-sonnet-*"). A malformed pattern matches
// nothing (patterns are checked with ValidModelPattern when stored).
func MatchModel(patterns []string, model string) bool {
	for _, p := range patterns {
		if p == model {
			return true
		}
		if ok, err := path.Match(p, model); ok && err == nil {
			return true
		}
	}
	return false
}

// ValidModelPattern checks one model id or glob: 1 to MaxModelPatternLen
// printable ASCII bytes without spaces, and a well-formed glob.
func ValidModelPattern(p string) error {
	if p == "" || len(p) > MaxModelPatternLen {
		return Invalidf("model patterns must be 1 to %d bytes", MaxModelPatternLen)
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] > '~' {
			return Invalidf("model pattern %q: only printable ASCII without spaces", p)
		}
	}
	// path.Match checks the whole pattern even when it does not match.
	if _, err := path.Match(p, ""); err != nil {
		return Invalidf("model pattern %q is not a valid glob", p)
	}
	return nil
}
