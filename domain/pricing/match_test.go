package pricing

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

func TestLookupSeed(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	for _, c := range []struct {
		name, id string
		by       MatchKind
	}{
		{"claude-opus-5-5", "claude-opus-5-5", ByID},
		{"claude-sonnet-4-5", "claude-sonnet-4-5-20250929", ByAlias},
		{"claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", ByID},
		{"claude-sonnet-4-5-20260101", "claude-sonnet-4-5-20250929", ByPattern},
		{"claude-opus-4-20250514", "claude-opus-4-20250514", ByID},
		{"claude-opus-4-0", "claude-opus-4-20250514", ByAlias},
		// A dated Opus 4.5 is not an Opus 4 snapshot, though both globs start alike.
		{"claude-opus-4-5-20990101", "claude-opus-4-5-20251101", ByPattern},
		{"claude-opus-4-20990101", "claude-opus-4-20250514", ByPattern},
		{"claude-3-5-haiku-latest", "claude-3-5-haiku-20241022", ByAlias},
		{"claude-haiku-5-5", "claude-haiku-5-5", ByID},
	} {
		m, ok := tab.Lookup(c.name)
		if !ok || m.Entry.ID != c.id || m.By != c.by {
			t.Errorf("Lookup(%q) = %+v, %v; want %s by %s", c.name, m, ok, c.id, c.by)
		}
	}
	// A model the table does not know is not priced as a neighbour.
	for _, name := range []string{"claude-opus-5-7", "claude-sonnet-4-55", "claude-opus", "", "CLAUDE-OPUS-5-5", "gpt-5"} {
		if m, ok := tab.Lookup(name); ok {
			t.Errorf("Lookup(%q) = %s, want not found", name, m.Entry.ID)
		}
	}
}

func TestLookupMostSpecificPatternWins(t *testing.T) {
	t.Parallel()
	entries := []string{
		model("any", `"patterns":["claude-*"]`),
		model("sonnet", `"patterns":["claude-sonnet-*"]`),
		model("sonnet-4-5", `"patterns":["claude-sonnet-4-5*"]`),
		model("q", `"patterns":["claude-sonnet-?-6*"]`),
		// Same literals: the longer glob wins; same length: the smaller glob.
		model("ab-star", `"patterns":["ab*"]`),
		model("a-star-b", `"patterns":["a*b"]`),
		model("a-star-b-star", `"patterns":["a*b*"]`),
	}
	want := map[string]string{
		"claude-sonnet-4-5-20250929": "sonnet-4-5",
		"claude-sonnet-4-6":          "q",
		"claude-sonnet-5":            "sonnet",
		"claude-haiku-4-5":           "any",
		"ab":                         "a-star-b-star",
		"abb":                        "a-star-b-star",
	}
	rng := rand.New(rand.NewPCG(5, 8))
	for range 20 {
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
		tab := MustParse(t, table(entries...))
		for name, id := range want {
			if m, ok := tab.Lookup(name); !ok || m.Entry.ID != id {
				t.Fatalf("order %v: Lookup(%q) = %+v, want %s", entries, name, m, id)
			}
		}
	}
	// Without the longer glob, the tie between "ab*" and "a*b" goes to the
	// byte-wise smaller one.
	tab := MustParse(t, table(model("ab-star", `"patterns":["ab*"]`), model("a-star-b", `"patterns":["a*b"]`)))
	if m, _ := tab.Lookup("ab"); m.Entry.ID != "a-star-b" || m.Pattern != "a*b" {
		t.Fatalf("tie: %+v", m)
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	if m, err := tab.Resolve("claude-haiku-4-5", Policy{}); err != nil || m.Entry.ID != "claude-haiku-4-5-20251001" {
		t.Fatalf("known: %+v %v", m, err)
	}
	_, err := tab.Resolve("claude-opus-9", Policy{})
	if !errors.Is(err, ErrUnpriced) || domain.KindOf(err) != domain.KindInvalid || !strings.Contains(err.Error(), "claude-opus-9") {
		t.Fatalf("refuse: %v", err)
	}
	m, err := tab.Resolve("claude-opus-9", Policy{Unpriced: UnpricedFallback, FallbackModel: "claude-opus-5-5"})
	if err != nil || m.By != ByFallback || m.Entry.ID != "claude-opus-5-5" {
		t.Fatalf("fallback: %+v %v", m, err)
	}
	// A fallback that is itself unpriced refuses.
	if _, err := tab.Resolve("claude-opus-9", Policy{Unpriced: UnpricedFallback, FallbackModel: "nope"}); !errors.Is(err, ErrUnpriced) {
		t.Fatalf("bad fallback: %v", err)
	}
}
