package metrics

import "strings"

// ModelOther labels a model the relay does not recognise; ModelNone labels a
// request that named no model (admin calls, unparsable bodies).
const (
	ModelOther = "other"
	ModelNone  = "none"
)

// modelFamilies are the label values a known model maps to: Anthropic model
// ids without their snapshot date. A request for
// "claude-sonnet-4-5-20250929", "claude-sonnet-4-5" or
// "claude-sonnet-4-5-latest" is counted as "claude-sonnet-4-5".
var modelFamilies = []string{
	"claude-opus-4-6",
	"claude-sonnet-4-6",
	"claude-opus-4-5",
	"claude-sonnet-4-5",
	"claude-haiku-4-5",
	"claude-opus-4-1",
	"claude-opus-4-0",
	"claude-sonnet-4-0",
	"claude-opus-4",
	"claude-sonnet-4",
	"claude-3-7-sonnet",
	"claude-3-5-sonnet",
	"claude-3-5-haiku",
	"claude-3-opus",
	"claude-3-sonnet",
	"claude-3-haiku",
	"claude-2-1",
	"claude-2-0",
	"claude-2",
	"claude-instant-1-2",
}

// modelFamilyAliases fold ids that name the same model onto one label.
var modelFamilyAliases = map[string]string{
	"claude-opus-4-0":   "claude-opus-4",
	"claude-sonnet-4-0": "claude-sonnet-4",
}

// knownModels maps exact ids seen in practice (and every family id) to their
// label, so the common case is one map lookup.
var knownModels = func() map[string]string {
	m := make(map[string]string, 64)
	for _, f := range modelFamilies {
		m[f] = familyLabel(f)
		m[f+"-latest"] = familyLabel(f)
	}
	for id, f := range map[string]string{
		"claude-opus-4-5-20251101":   "claude-opus-4-5",
		"claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
		"claude-haiku-4-5-20251001":  "claude-haiku-4-5",
		"claude-opus-4-1-20250805":   "claude-opus-4-1",
		"claude-opus-4-20250514":     "claude-opus-4",
		"claude-sonnet-4-20250514":   "claude-sonnet-4",
		"claude-3-7-sonnet-20250219": "claude-3-7-sonnet",
		"claude-3-5-sonnet-20241022": "claude-3-5-sonnet",
		"claude-3-5-sonnet-20240620": "claude-3-5-sonnet",
		"claude-3-5-haiku-20241022":  "claude-3-5-haiku",
		"claude-3-opus-20240229":     "claude-3-opus",
		"claude-3-sonnet-20240229":   "claude-3-sonnet",
		"claude-3-haiku-20240307":    "claude-3-haiku",
	} {
		m[id] = f
	}
	return m
}()

func familyLabel(f string) string {
	if a, ok := modelFamilyAliases[f]; ok {
		return a
	}
	return f
}

// NormalizeModel maps a requested model to a bounded label value.
//
//   - Known ids, their aliases and any dated snapshot of a known family
//     ("<family>-YYYYMMDD", "<family>-latest", Vertex-style "<family>@YYYYMMDD")
//     map to the family id, e.g. "claude-sonnet-4-5".
//   - Other ids of the modern shape claude-{opus,sonnet,haiku}-N[-M] (one
//     digit each, optionally dated) map to that id without the date, so a
//     model released after this build is still counted on its own; this adds
//     at most 3*10*11 label values.
//   - "" maps to "none"; anything else to "other".
//
// The result is always a constant or a substring of s: it never allocates.
func NormalizeModel(s string) string {
	if s == "" {
		return ModelNone
	}
	if f, ok := knownModels[s]; ok {
		return f
	}
	if len(s) > 64 || !strings.HasPrefix(s, "claude-") {
		return ModelOther
	}
	for _, f := range modelFamilies {
		if strings.HasPrefix(s, f) && validSnapshotSuffix(s[len(f):]) {
			return familyLabel(f)
		}
	}
	if n := modernFamilyLen(s); n > 0 && validSnapshotSuffix(s[n:]) {
		return s[:n]
	}
	return ModelOther
}

// validSnapshotSuffix accepts what may follow a family id: nothing,
// "-latest", or a date "-YYYYMMDD" / "@YYYYMMDD".
func validSnapshotSuffix(rest string) bool {
	switch {
	case rest == "", rest == "-latest":
		return true
	case len(rest) == 9 && (rest[0] == '-' || rest[0] == '@') && rest[1] == '2':
		for i := 1; i < 9; i++ {
			if rest[i] < '0' || rest[i] > '9' {
				return false
			}
		}
		return true
	}
	return false
}

// modernFamilyLen returns the length of a "claude-{opus,sonnet,haiku}-N[-M]"
// prefix of s, or 0.
func modernFamilyLen(s string) int {
	rest := s[len("claude-"):]
	var tier string
	for _, t := range [...]string{"opus-", "sonnet-", "haiku-"} {
		if strings.HasPrefix(rest, t) {
			tier = t
			break
		}
	}
	if tier == "" {
		return 0
	}
	n := len("claude-") + len(tier)
	if n >= len(s) || !isDigit(s[n]) {
		return 0
	}
	n++
	// An optional single-digit minor version; an 8-digit date is not one.
	if n+1 < len(s) && s[n] == '-' && isDigit(s[n+1]) && (n+2 == len(s) || !isDigit(s[n+2])) {
		n += 2
	}
	return n
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
