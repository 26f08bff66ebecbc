package pricing

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/relaystation/relay/domain"
)

// Bounds a table must keep. They are far above any real price and keep
// every cost of a sane request inside int64 nanodollars.
const (
	// MaxRate is the highest token price a table may hold: $100,000/MTok.
	MaxRate USDPerMTok = 100_000 * NanosPerUSD
	// MaxFee is the highest per-1,000-calls fee: $1,000,000 per 1,000.
	MaxFee USDPer1000 = 1_000_000 * NanosPerUSD
	// MaxMultiplier is the highest factor a table may hold: 1000.
	MaxMultiplier Multiplier = 1000 * One
	// DefaultBatch is the batch multiplier of an entry that names none:
	// the Message Batches API bills half of every token price.
	DefaultBatch Multiplier = One / 2
)

// ErrInvalidTable marks a price table that failed to load or validate.
var ErrInvalidTable = errors.New("invalid price table")

// Table is a versioned price table: the embedded seed, or an operator's
// override loaded from the database. Build one with Parse (or Seed); a
// Table is read-only afterwards and safe for concurrent use.
type Table struct {
	// Version names this table; every cost priced with it records it.
	Version string `json:"version"`
	// Source is where the prices were read, Retrieved the day (YYYY-MM-DD).
	Source    string   `json:"source,omitempty"`
	Sources   []string `json:"sources,omitempty"`
	Retrieved string   `json:"retrieved,omitempty"`
	Comment   string   `json:"comment,omitempty"`
	Models    []Entry  `json:"models"`

	byName   map[string]*Entry // ids and aliases
	patterns []pattern         // most specific first
}

// Entry is the price card of one model.
type Entry struct {
	// ID is the model id; Aliases are other exact names for the same model
	// (a dated snapshot, a "-latest" alias). Patterns are path.Match globs
	// for names not listed, e.g. "claude-sonnet-4-5-20*" for snapshots.
	ID       string   `json:"id"`
	Aliases  []string `json:"aliases,omitempty"`
	Patterns []string `json:"patterns,omitempty"`
	Name     string   `json:"name,omitempty"`
	Status   string   `json:"status,omitempty"`
	// Rates are the standard prices of each token class.
	Rates Rates `json:"rates"`
	// LongContext, when set, reprices a whole request whose prompt is
	// longer than its threshold.
	LongContext *LongContext `json:"long_context,omitempty"`
	// Batch multiplies every token price of a Message Batches request;
	// nil means DefaultBatch.
	Batch *Multiplier `json:"batch,omitempty"`
	// Fast multiplies every token price of a speed "fast" reply; nil means
	// the model has no fast mode.
	Fast *Multiplier `json:"fast,omitempty"`
	// Geo multiplies every token price by the reply's inference_geo; a geo
	// not listed (and "global") costs the standard price.
	Geo map[string]Multiplier `json:"geo,omitempty"`
	// WebSearch and WebFetch are the server-tool fees; nil means the table
	// does not price that tool for this model.
	WebSearch *USDPer1000 `json:"web_search_per_1000,omitempty"`
	WebFetch  *USDPer1000 `json:"web_fetch_per_1000,omitempty"`
	// Comment says where the numbers come from and what is unconfirmed.
	Comment string `json:"comment,omitempty"`
}

// Rates are the prices of the five token classes. In JSON every class is
// required: a class the upstream does not bill is written "0".
type Rates struct {
	Input        USDPerMTok `json:"input"`
	Output       USDPerMTok `json:"output"`
	CacheWrite5m USDPerMTok `json:"cache_write_5m"`
	CacheWrite1h USDPerMTok `json:"cache_write_1h"`
	CacheRead    USDPerMTok `json:"cache_read"`
}

// LongContext is a second rate card for long prompts: a request whose
// prompt (input + cache writes + cache reads) is more than AbovePromptTokens
// pays Rates on every token, output included.
type LongContext struct {
	AbovePromptTokens int64 `json:"above_prompt_tokens"`
	Rates             Rates `json:"rates"`
}

// UnmarshalJSON refuses rates with a class missing or unknown, so a typo
// in a table cannot price a class at zero.
func (r *Rates) UnmarshalJSON(b []byte) error {
	var aux struct {
		Input        *USDPerMTok `json:"input"`
		Output       *USDPerMTok `json:"output"`
		CacheWrite5m *USDPerMTok `json:"cache_write_5m"`
		CacheWrite1h *USDPerMTok `json:"cache_write_1h"`
		CacheRead    *USDPerMTok `json:"cache_read"`
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&aux); err != nil {
		return err
	}
	var missing []string
	get := func(name string, p *USDPerMTok) USDPerMTok {
		if p == nil {
			missing = append(missing, name)
			return 0
		}
		return *p
	}
	*r = Rates{
		Input:        get("input", aux.Input),
		Output:       get("output", aux.Output),
		CacheWrite5m: get("cache_write_5m", aux.CacheWrite5m),
		CacheWrite1h: get("cache_write_1h", aux.CacheWrite1h),
		CacheRead:    get("cache_read", aux.CacheRead),
	}
	if len(missing) > 0 {
		return fmt.Errorf("rates: missing %s", strings.Join(missing, ", "))
	}
	return nil
}

// BatchMultiplier is the entry's batch factor, DefaultBatch when unset.
func (e *Entry) BatchMultiplier() Multiplier {
	if e.Batch == nil {
		return DefaultBatch
	}
	return *e.Batch
}

// GeoMultiplier is the factor for an inference_geo value, and whether the
// entry prices it: "" and "global" are the standard price.
func (e *Entry) GeoMultiplier(geo string) (Multiplier, bool) {
	if geo == "" || geo == "global" {
		return One, true
	}
	m, ok := e.Geo[geo]
	if !ok {
		return One, false
	}
	return m, true
}

//go:embed prices.json
var seedJSON []byte

var seed = sync.OnceValues(func() (*Table, error) { return Parse(seedJSON) })

// Seed is the price table embedded at build time.
func Seed() (*Table, error) { return seed() }

// SeedJSON returns a copy of the embedded table's bytes, e.g. to store it
// as the first version in the database.
func SeedJSON() []byte { return bytes.Clone(seedJSON) }

// Parse reads and validates a price table from JSON (the embedded seed or
// a database row). Unknown fields are refused. The error is a
// domain.KindInvalid error matching ErrInvalidTable that lists every problem.
func Parse(data []byte) (*Table, error) {
	var t Table
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&t); err != nil {
		return nil, tableErr(err)
	}
	if d.More() {
		return nil, tableErr(errors.New("trailing data after the table"))
	}
	if err := t.build(); err != nil {
		return nil, err
	}
	return &t, nil
}

// tableErr reports every problem in one caller-safe message: the table is
// the caller's own input, so the details are theirs to see.
func tableErr(problems ...error) error {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.Error()
	}
	return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonPriceTable,
		Message: "price table: " + strings.Join(msgs, "; "), Err: ErrInvalidTable}
}

// build validates t and indexes its names and patterns.
func (t *Table) build() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(t.Version) == "" {
		bad("version is required")
	}
	if t.Retrieved != "" {
		if _, err := time.Parse(time.DateOnly, t.Retrieved); err != nil {
			bad("retrieved %q is not a YYYY-MM-DD date", t.Retrieved)
		}
	}
	if len(t.Models) == 0 {
		bad("no models")
	}
	t.byName = make(map[string]*Entry)
	owner := make(map[string]string) // pattern -> entry id
	for i := range t.Models {
		e := &t.Models[i]
		where := fmt.Sprintf("models[%d]", i)
		if e.ID != "" {
			where += " (" + e.ID + ")"
		}
		for _, err := range e.validate() {
			bad("%s: %v", where, err)
		}
		for _, name := range append([]string{e.ID}, e.Aliases...) {
			if name == "" {
				continue
			}
			if prev, dup := t.byName[name]; dup {
				bad("%s: name %q is also %s", where, name, prev.ID)
				continue
			}
			t.byName[name] = e
		}
		for _, p := range e.Patterns {
			if prev, dup := owner[p]; dup {
				bad("%s: pattern %q is also %s's", where, p, prev)
				continue
			}
			owner[p] = e.ID
			t.patterns = append(t.patterns, newPattern(p, e))
		}
	}
	if len(errs) > 0 {
		return tableErr(errs...)
	}
	sortPatterns(t.patterns)
	return nil
}

func (e *Entry) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.TrimSpace(e.ID) == "" {
		bad("id is required")
	}
	for _, a := range e.Aliases {
		if strings.TrimSpace(a) == "" {
			bad("empty alias")
		}
	}
	for _, p := range e.Patterns {
		if p == "" {
			bad("empty pattern")
		} else if _, err := path.Match(p, ""); err != nil {
			bad("pattern %q: %v", p, err)
		}
	}
	if e.Rates == (Rates{}) {
		// No Anthropic model is free: all zeros is a missing "rates".
		bad("rates are required (every class zero would price the model at $0)")
	}
	for _, err := range e.Rates.validate() {
		bad("rates.%v", err)
	}
	if lc := e.LongContext; lc != nil {
		if lc.AbovePromptTokens <= 0 {
			bad("long_context.above_prompt_tokens must be > 0")
		}
		for _, err := range lc.Rates.validate() {
			bad("long_context.rates.%v", err)
		}
	}
	checkMult := func(name string, m Multiplier) {
		if m < 0 || m > MaxMultiplier {
			bad("%s %s is outside [0, %s]", name, m, MaxMultiplier)
		}
	}
	if e.Batch != nil {
		checkMult("batch", *e.Batch)
	}
	if e.Fast != nil {
		checkMult("fast", *e.Fast)
	}
	for geo, m := range e.Geo {
		if geo == "" || geo == "global" {
			bad("geo %q: the standard price needs no multiplier", geo)
		}
		checkMult("geo "+geo, m)
	}
	checkFee := func(name string, f *USDPer1000) {
		if f != nil && (*f < 0 || *f > MaxFee) {
			bad("%s %s is outside [0, %s]", name, *f, MaxFee)
		}
	}
	checkFee("web_search_per_1000", e.WebSearch)
	checkFee("web_fetch_per_1000", e.WebFetch)
	return errs
}

func (r Rates) validate() []error {
	var errs []error
	for _, c := range []struct {
		name string
		v    USDPerMTok
	}{
		{"input", r.Input}, {"output", r.Output}, {"cache_write_5m", r.CacheWrite5m},
		{"cache_write_1h", r.CacheWrite1h}, {"cache_read", r.CacheRead},
	} {
		if c.v < 0 || c.v > MaxRate {
			errs = append(errs, fmt.Errorf("%s %s is outside [0, %s]", c.name, c.v, MaxRate))
		}
	}
	return errs
}

// Entry returns the entry whose id is exactly id.
func (t *Table) Entry(id string) (*Entry, bool) {
	e, ok := t.byName[id]
	if !ok || e.ID != id {
		return nil, false
	}
	return e, true
}
