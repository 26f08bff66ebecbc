package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

func TestSeedLoads(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	if tab.Version == "" || !strings.HasPrefix(tab.Source, "https://") || tab.Retrieved != "2026-12-01" {
		t.Fatalf("seed header: version %q source %q retrieved %q", tab.Version, tab.Source, tab.Retrieved)
	}
	again, err := Seed()
	if err != nil || again != tab {
		t.Fatalf("Seed is not loaded once: %p %p %v", tab, again, err)
	}
	b := SeedJSON()
	b[0] = 'x'
	if SeedJSON()[0] == 'x' {
		t.Fatal("SeedJSON shares the embedded bytes")
	}
}

// TestSeedPricesEveryModel prices a request on every entry, by its id, each
// alias and a dated snapshot its patterns cover, and checks the rates
// against Anthropic's cache multipliers so a typo in the file shows.
func TestSeedPricesEveryModel(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	if len(tab.Models) < 20 {
		t.Fatalf("only %d models", len(tab.Models))
	}
	u := domain.Usage{InputTokens: 1000, OutputTokens: 1000, CacheCreationInputTokens: 2000, CacheCreation5mTokens: 1000,
		CacheCreation1hTokens: 1000, CacheReadInputTokens: 1000}
	for i := range tab.Models {
		e := &tab.Models[i]
		names := append([]string{e.ID}, e.Aliases...)
		for _, p := range e.Patterns {
			names = append(names, strings.ReplaceAll(p, "*", "991231"))
		}
		for _, name := range names {
			if m, ok := tab.Lookup(name); !ok || m.Entry != e {
				t.Errorf("%s does not resolve to %s: %+v", name, e.ID, m)
			}
			c, err := tab.Price(Request{Model: name, Usage: u, ServerTools: domain.ServerToolUse{WebSearchRequests: 1}}, Policy{})
			if err != nil || c.Total <= 0 || c.Input <= 0 || c.Output <= 0 || c.CacheWrite5m <= 0 || c.CacheWrite1h <= 0 ||
				c.CacheRead <= 0 || c.WebSearch != 10_000_000 || c.UnpricedModifiers != nil {
				t.Errorf("%s (%s): %+v, %v", name, e.ID, c, err)
			}
		}
		if e.Comment == "" || e.Name == "" {
			t.Errorf("%s: no name or comment", e.ID)
		}
		tiers := []Rates{e.Rates}
		if e.LongContext != nil {
			tiers = append(tiers, e.LongContext.Rates)
		}
		for _, r := range tiers {
			if r.CacheWrite1h != r.Input*2 || r.Output < r.Input {
				t.Errorf("%s: 1h write %s is not 2 x input %s", e.ID, r.CacheWrite1h, r.Input)
			}
			// Claude Haiku 3 is the one card off the multipliers: $0.30 5m
			// writes and $0.03 reads for $0.25 input.
			if e.ID == "claude-3-haiku-20240307" {
				continue
			}
			if r.CacheWrite5m*4 != r.Input*5 || r.CacheRead > r.Input/10 {
				t.Errorf("%s: 5m write %s or read %s off the multipliers of input %s", e.ID, r.CacheWrite5m, r.CacheRead, r.Input)
			}
		}
	}
}

func TestTableJSONRoundTrip(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	b, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	back := MustParse(t, string(b))
	if !reflect.DeepEqual(back.Models, tab.Models) || back.Version != tab.Version {
		t.Fatal("seed does not survive a JSON round trip")
	}
	b2, _ := json.Marshal(back)
	if string(b2) != string(b) {
		t.Fatal("marshalling is not stable")
	}
}

const okRates = `{"input":"1","output":"5","cache_write_5m":"1.25","cache_write_1h":"2","cache_read":"0.1"}`

func table(models ...string) string {
	return `{"version":"t1","models":[` + strings.Join(models, ",") + `]}`
}

func model(id string, extra string) string {
	s := `{"id":"` + id + `","rates":` + okRates
	if extra != "" {
		s += "," + extra
	}
	return s + "}"
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, json, want string
	}{
		{"not json", `{`, "unexpected EOF"},
		{"trailing data", table(model("a", "")) + `{}`, "trailing data"},
		{"no version", `{"models":[` + model("a", "") + `]}`, "version is required"},
		{"bad date", `{"version":"1","retrieved":"yesterday","models":[` + model("a", "") + `]}`, "not a YYYY-MM-DD date"},
		{"no models", `{"version":"1","models":[]}`, "no models"},
		{"unknown field", `{"version":"1","modles":[]}`, `unknown field "modles"`},
		{"unknown rate", table(`{"id":"a","rates":{"inptu":"1"}}`), `unknown field "inptu"`},
		{"missing rate", table(`{"id":"a","rates":{"input":"1","output":"5","cache_write_5m":"1","cache_write_1h":"2"}}`), "missing cache_read"},
		{"no id", table(model("", "")), "id is required"},
		{"duplicate id", table(model("a", ""), model("a", "")), `name "a" is also a`},
		{"alias is an id", table(model("a", ""), model("b", `"aliases":["a"]`)), `name "a" is also a`},
		{"empty alias", table(model("a", `"aliases":[""]`)), "empty alias"},
		{"duplicate pattern", table(model("a", `"patterns":["x*"]`), model("b", `"patterns":["x*"]`)), `pattern "x*" is also a's`},
		{"bad pattern", table(model("a", `"patterns":["claude-["]`)), `pattern "claude-["`},
		{"negative rate", table(`{"id":"a","rates":{"input":"-1","output":"5","cache_write_5m":"1","cache_write_1h":"2","cache_read":"0"}}`), "negative"},
		{"sub-nanodollar rate", table(`{"id":"a","rates":{"input":"0.0000000001","output":"5","cache_write_5m":"1","cache_write_1h":"2","cache_read":"0"}}`), "more than 9 decimal places"},
		{"rate too high", table(`{"id":"a","rates":{"input":"100000.000000001","output":"5","cache_write_5m":"1","cache_write_1h":"2","cache_read":"0"}}`), "input 100000.000000001 is outside"},
		{"threshold", table(model("a", `"long_context":{"above_prompt_tokens":0,"rates":`+okRates+`}`)), "above_prompt_tokens must be > 0"},
		{"long rates", table(model("a", `"long_context":{"above_prompt_tokens":5,"rates":{"input":"1"}}`)), "missing output"},
		{"multiplier", table(model("a", `"fast":"1000.000001"`)), "fast 1000.000001 is outside"},
		{"negative multiplier", table(model("a", `"batch":"-0.5"`)), "negative"},
		{"global geo", table(model("a", `"geo":{"global":"1"}`)), `geo "global"`},
		{"fee", table(model("a", `"web_search_per_1000":"1000000.5"`)), "web_search_per_1000 1000000.5 is outside"},
	} {
		_, err := Parse([]byte(c.json))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want it to mention %q", c.name, err, c.want)
			continue
		}
		if !errors.Is(err, ErrInvalidTable) || domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: %v is not an invalid-table error", c.name, err)
		}
	}
}

func TestParseListsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte(`{"version":"","models":[` + model("a", `"fast":"2000"`) + `,` + model("a", "") + `]}`))
	msg := fmt.Sprint(err)
	for _, want := range []string{"version is required", "models[0] (a): fast 2000 is outside", `models[1] (a): name "a" is also a`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not mention %q", msg, want)
		}
	}
}

func TestEntryDefaults(t *testing.T) {
	t.Parallel()
	tab := MustParse(t, table(model("a", ""), model("b", `"batch":"0.25","geo":{"us":"1.1"}`)))
	a, _ := tab.Entry("a")
	b, _ := tab.Entry("b")
	if a.BatchMultiplier() != DefaultBatch || b.BatchMultiplier() != 250_000 {
		t.Fatalf("batch %s %s", a.BatchMultiplier(), b.BatchMultiplier())
	}
	if m, ok := b.GeoMultiplier("us"); !ok || m != 1_100_000 {
		t.Fatalf("geo us %s %v", m, ok)
	}
	if m, ok := a.GeoMultiplier(""); !ok || m != One {
		t.Fatalf("geo empty %s %v", m, ok)
	}
	if _, ok := a.GeoMultiplier("us"); ok {
		t.Fatal("a prices us")
	}
	if _, ok := tab.Entry("nope"); ok {
		t.Fatal("Entry found nope")
	}
}
