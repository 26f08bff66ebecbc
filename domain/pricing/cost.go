package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"slices"

	"github.com/relaystation/relay/domain"
)

// ErrOutOfRange marks a cost that does not fit in int64 nanodollars, or
// a negative count.
var ErrOutOfRange = errors.New("cost out of range")

// Request is what one proxied request bills: a reply's top-level usage
// and iterations, as the upstream reported them, with its modifiers.
type Request struct {
	// Model is the model that served the request; iterations with no model
	// of their own ran on it.
	Model string
	// Usage is the reply's top-level usage (the final "message" step), not
	// the billed sum: see FromRecord for a domain.UsageRecord.
	Usage       domain.Usage
	Iterations  []domain.Iteration
	ServerTools domain.ServerToolUse
	// Batch: a Message Batches request. ServiceTier "batch" means the same.
	Batch       bool
	ServiceTier string
	// Speed "fast" applies the fast-mode multiplier.
	Speed string
	// InferenceGeo applies the data-residency multiplier ("us", ...).
	InferenceGeo string
}

// FromRecord rebuilds the Request of a usage record. A record's Usage is
// already the billed sum of its iterations (domain.BilledUsage), so the
// top-level step is recovered as what the iterations leave over; a count
// that would go negative (an inconsistent record) is taken as zero.
func FromRecord(r domain.UsageRecord) Request { return fromRecord(&r) }

// fromRecord is FromRecord without copying the record (it is large, and
// pricing runs deep in a request's stack).
func fromRecord(r *domain.UsageRecord) Request {
	top := r.Usage
	if len(r.Iterations) > 0 {
		var sum domain.Usage
		message := false
		for _, it := range r.Iterations {
			sum = sum.Add(it.Usage)
			message = message || it.Type == "message"
		}
		if message {
			top = domain.Usage{}
		} else {
			top = domain.Usage{
				InputTokens:              max(0, top.InputTokens-sum.InputTokens),
				OutputTokens:             max(0, top.OutputTokens-sum.OutputTokens),
				CacheCreationInputTokens: max(0, top.CacheCreationInputTokens-sum.CacheCreationInputTokens),
				CacheReadInputTokens:     max(0, top.CacheReadInputTokens-sum.CacheReadInputTokens),
				CacheCreation5mTokens:    max(0, top.CacheCreation5mTokens-sum.CacheCreation5mTokens),
				CacheCreation1hTokens:    max(0, top.CacheCreation1hTokens-sum.CacheCreation1hTokens),
			}
		}
	}
	return Request{
		Model: r.Model, Usage: top, Iterations: r.Iterations, ServerTools: r.ServerTools,
		Batch: r.Batch, ServiceTier: r.ServiceTier, Speed: r.Speed, InferenceGeo: r.InferenceGeo,
	}
}

// Breakdown is a cost per price class, in nanodollars.
type Breakdown = domain.CostBreakdown

func sumOf(b Breakdown) (Nanodollars, error) {
	t, ok := b.Sum()
	if !ok {
		return 0, outOfRange("total")
	}
	return t, nil
}

func addTo(b, o Breakdown) (Breakdown, error) {
	r, ok := b.Add(o)
	if !ok {
		return Breakdown{}, outOfRange("total")
	}
	return r, nil
}

// Cost is what a request costs, per class, with what it was priced by.
// Its JSON encoding is stable (fixed field order, integer nanodollars,
// sorted lists), so it can be stored with the usage record and compared.
type Cost struct {
	// PriceVersion is the Version of the table that priced the request.
	PriceVersion string `json:"price_version"`
	Breakdown
	// Total is the sum of the classes.
	Total Nanodollars `json:"total"`
	// Fallback5m: some cache writes had no 5m/1h split (or a split short
	// of the aggregate) and the rest was priced at the 5-minute rate.
	Fallback5m bool `json:"fallback_5m,omitempty"`
	// LongContext: some step was priced at its long-context rates.
	LongContext bool `json:"long_context,omitempty"`
	// Unpriced lists models the table has no price for; their tokens cost
	// nothing here, and Price returned ErrUnpriced.
	Unpriced []string `json:"unpriced,omitempty"`
	// Fallback lists models priced at the policy's fallback entry.
	Fallback []string `json:"fallback,omitempty"`
	// UnpricedModifiers lists modifiers the reply reported but the entry
	// has no price for, priced as standard: "speed=fast@claude-sonnet-5",
	// "inference_geo=eu@claude-opus-5-5", "web_search@claude-3-haiku-…".
	UnpricedModifiers []string `json:"unpriced_modifiers,omitempty"`
	// Parts are the sampling steps of a request with iterations, each at
	// its own model; the classes above are their sums (plus server tools,
	// which are billed once per request). Absent for a single-step request.
	Parts []Part `json:"parts,omitempty"`
}

// Part is the cost of one sampling step.
type Part struct {
	// Type is the iteration type ("message", "compaction",
	// "advisor_message", ...); Model the model it ran on and PricedAs the
	// entry that priced it ("" when unpriced).
	Type     string `json:"type,omitempty"`
	Model    string `json:"model"`
	PricedAs string `json:"priced_as,omitempty"`
	Breakdown
	Total       Nanodollars `json:"total"`
	LongContext bool        `json:"long_context,omitempty"`
	Fallback5m  bool        `json:"fallback_5m,omitempty"`
}

type step struct {
	typ   string
	model string
	usage domain.Usage
}

// steps lists the sampling steps a request bills, the way
// domain.BilledUsage sums them.
func (r Request) steps(buf []step) []step {
	if len(r.Iterations) == 0 {
		return append(buf, step{model: r.Model, usage: r.Usage})
	}
	out := buf
	message := false
	for _, it := range r.Iterations {
		m := it.Model
		if m == "" {
			m = r.Model
		}
		out = append(out, step{typ: it.Type, model: m, usage: it.Usage})
		message = message || it.Type == "message"
	}
	if !message {
		out = append(out, step{typ: "message", model: r.Model, usage: r.Usage})
	}
	return out
}

// Price prices a request with table t. Every sampling step is priced at
// its own model's entry; see the package documentation for the rules and
// the rounding.
//
// Under UnpricedRefuse an unpriced model does not stop the rest from being
// priced: Price returns the full Cost (the unpriced steps at zero, listed
// in Unpriced) together with an error matching ErrUnpriced, so the caller
// can both refuse and still record what it knows. Any other error (a
// negative count, a cost out of int64 range) comes with a zero Cost.
func (t *Table) Price(r Request, p Policy) (Cost, error) {
	c := Cost{PriceVersion: t.Version}
	var unpricedErr error
	unpriced, fallback, ignored := set{}, set{}, set{}
	mods := modifiers{batch: r.Batch || r.ServiceTier == "batch", fast: r.Speed == "fast", geo: r.InferenceGeo}
	var one [1]step // a request without iterations needs no allocation
	for _, s := range r.steps(one[:0]) {
		if err := checkUsage(s.usage); err != nil {
			return Cost{}, err
		}
		part := Part{Type: s.typ, Model: s.model}
		m, err := t.Resolve(s.model, p)
		if err != nil {
			unpriced.add(s.model)
			unpricedErr = err
		} else {
			if m.By == ByFallback {
				fallback.add(s.model)
			}
			part.PricedAs = m.Entry.ID
			if err := priceStep(&part, m.Entry, s.usage, mods, ignored); err != nil {
				return Cost{}, err
			}
		}
		if c.Breakdown, err = addTo(c.Breakdown, part.Breakdown); err != nil {
			return Cost{}, err
		}
		c.LongContext = c.LongContext || part.LongContext
		c.Fallback5m = c.Fallback5m || part.Fallback5m
		if len(r.Iterations) > 0 {
			c.Parts = append(c.Parts, part)
		}
	}
	tools, err := t.priceTools(r, p, ignored)
	if err != nil {
		return Cost{}, err
	}
	if c.Breakdown, err = addTo(c.Breakdown, tools); err != nil {
		return Cost{}, err
	}
	if c.Total, err = sumOf(c.Breakdown); err != nil {
		return Cost{}, err
	}
	c.Unpriced, c.Fallback, c.UnpricedModifiers = unpriced.sorted(), fallback.sorted(), ignored.sorted()
	if unpricedErr != nil && len(unpriced) > 1 {
		unpricedErr = &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonUnpriced, Err: ErrUnpriced,
			Message: fmt.Sprintf("models %q have no price in price table %s", c.Unpriced, t.Version)}
	}
	return c, unpricedErr
}

// priceTools prices the request's server-tool calls at the request model's
// entry. Tool fees are flat: no batch, fast or geo multiplier applies.
func (t *Table) priceTools(r Request, p Policy, ignored set) (Breakdown, error) {
	st := r.ServerTools
	if st.WebSearchRequests < 0 || st.WebFetchRequests < 0 {
		return Breakdown{}, outOfRange("negative server tool count")
	}
	if st.IsZero() {
		return Breakdown{}, nil
	}
	m, err := t.Resolve(r.Model, p)
	if err != nil {
		// The unpriced model is already reported by its step.
		return Breakdown{}, nil
	}
	var b Breakdown
	fee := func(n int64, f *USDPer1000, name string) (Nanodollars, error) {
		if n == 0 {
			return 0, nil
		}
		if f == nil {
			ignored.add(name + "@" + m.Entry.ID)
			return 0, nil
		}
		return roundDiv(mulBig(n, int64(*f)), big.NewInt(1000), name)
	}
	if b.WebSearch, err = fee(st.WebSearchRequests, m.Entry.WebSearch, "web_search"); err != nil {
		return Breakdown{}, err
	}
	if b.WebFetch, err = fee(st.WebFetchRequests, m.Entry.WebFetch, "web_fetch"); err != nil {
		return Breakdown{}, err
	}
	return b, nil
}

type modifiers struct {
	batch, fast bool
	geo         string
}

func checkUsage(u domain.Usage) error {
	if u.InputTokens < 0 || u.OutputTokens < 0 || u.CacheCreationInputTokens < 0 || u.CacheReadInputTokens < 0 ||
		u.CacheCreation5mTokens < 0 || u.CacheCreation1hTokens < 0 {
		return outOfRange("negative token count")
	}
	return nil
}

// priceStep prices one sampling step, whose counts are not negative, at
// entry e.
func priceStep(part *Part, e *Entry, u domain.Usage, mods modifiers, ignored set) error {
	// Cache buckets are never added to input: input_tokens already
	// excludes them. A split short of the aggregate leaves the rest at the
	// 5-minute rate, the default TTL.
	w5, w1 := u.CacheCreation5mTokens, u.CacheCreation1hTokens
	split, ok := addInt(w5, w1)
	if !ok {
		return outOfRange("cache write tokens")
	}
	if rest := u.CacheCreationInputTokens - split; rest > 0 {
		w5 += rest
		part.Fallback5m = true
	}
	rates := e.Rates
	if lc := e.LongContext; lc != nil {
		// The counts are non-negative (checkUsage): a sum past int64 is
		// past any threshold.
		prompt, ok1 := addInt(u.InputTokens, w5)
		prompt, ok2 := addInt(prompt, w1)
		prompt, ok3 := addInt(prompt, u.CacheReadInputTokens)
		if !ok1 || !ok2 || !ok3 || prompt > lc.AbovePromptTokens {
			rates = lc.Rates
			part.LongContext = true
		}
	}
	f := stepFactors(e, mods, ignored)
	var err error
	cls := []struct {
		dst    *Nanodollars
		tokens int64
		rate   USDPerMTok
		name   string
	}{
		{&part.Input, u.InputTokens, rates.Input, "input"},
		{&part.Output, u.OutputTokens, rates.Output, "output"},
		{&part.CacheWrite5m, w5, rates.CacheWrite5m, "cache_write_5m"},
		{&part.CacheWrite1h, w1, rates.CacheWrite1h, "cache_write_1h"},
		{&part.CacheRead, u.CacheReadInputTokens, rates.CacheRead, "cache_read"},
	}
	for _, k := range cls {
		if *k.dst, err = tokenCost(k.tokens, k.rate, f, k.name); err != nil {
			return err
		}
	}
	// What the cache reads saved: the same tokens at the input rate of the
	// same tier and factors, rounded as a price is, minus their price.
	asInput, err := tokenCost(u.CacheReadInputTokens, rates.Input, f, "cache_saved")
	if err != nil {
		return err
	}
	part.CacheSaved = asInput - part.CacheRead
	part.Total, err = sumOf(part.Breakdown)
	return err
}

// stepFactors is the batch, fast and geo multipliers that apply to a step
// at entry e; a modifier e has no price for is recorded and left out.
func stepFactors(e *Entry, mods modifiers, ignored set) [3]Multiplier {
	f := [3]Multiplier{One, One, One}
	if mods.batch {
		f[0] = e.BatchMultiplier()
	}
	if mods.fast {
		if e.Fast != nil {
			f[1] = *e.Fast
		} else {
			ignored.add("speed=fast@" + e.ID)
		}
	}
	if g, ok := e.GeoMultiplier(mods.geo); ok {
		f[2] = g
	} else {
		ignored.add("inference_geo=" + mods.geo + "@" + e.ID)
	}
	return f
}

var (
	perMTok = big.NewInt(1_000_000)
	oneBig  = big.NewInt(int64(One))
)

// tokenCost is tokens × rate × factors in nanodollars: the exact rational
// value, rounded once, half up.
func tokenCost(tokens int64, rate USDPerMTok, f [3]Multiplier, what string) (Nanodollars, error) {
	if tokens == 0 || rate == 0 {
		return 0, nil
	}
	if c, ok := tokenCostFast(tokens, rate, f); ok {
		return c, nil
	}
	num := mulBig(tokens, int64(rate))
	den := new(big.Int).Set(perMTok)
	for _, m := range f {
		num.Mul(num, big.NewInt(int64(m)))
		den.Mul(den, oneBig)
	}
	return roundDiv(num, den, what)
}

// tokenCostFast is tokenCost in 128-bit integer arithmetic, for the
// products that fit (every realistic request): the same exact quotient,
// rounded half up the same way, without math/big's allocations and stack.
// Multipliers of One are skipped, numerator and denominator alike, which
// leaves the rational unchanged. ok is false when anything would overflow;
// the caller then takes the math/big path.
func tokenCostFast(tokens int64, rate USDPerMTok, f [3]Multiplier) (Nanodollars, bool) {
	if tokens < 0 || rate < 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(tokens), uint64(rate))
	q, ok := quotient128(hi, lo, f, false)
	return Nanodollars(q), ok
}

// quotient128 is num · Πf / (10⁶ · One^k), num the 128-bit (hi, lo) and k
// the multipliers of f that are not One (skipped in both, which leaves the
// rational unchanged), rounded half up, or up with ceil. ok is false when
// anything would overflow 128 bits or the quotient int64.
func quotient128(hi, lo uint64, f [3]Multiplier, ceil bool) (int64, bool) {
	den := uint64(1_000_000)
	for _, m := range f {
		if m == One {
			continue
		}
		if m < 0 {
			return 0, false
		}
		h1, l1 := bits.Mul64(lo, uint64(m))
		h2, l2 := bits.Mul64(hi, uint64(m))
		if h2 != 0 {
			return 0, false
		}
		var carry uint64
		if h1, carry = bits.Add64(h1, l2, 0); carry != 0 {
			return 0, false
		}
		hi, lo = h1, l1
		dh, dl := bits.Mul64(den, uint64(One))
		if dh != 0 {
			return 0, false
		}
		den = dl
	}
	if ceil { // num + den − 1, then truncate
		var carry uint64
		lo, carry = bits.Add64(lo, den-1, 0)
		if hi, carry = bits.Add64(hi, 0, carry); carry != 0 {
			return 0, false
		}
	}
	if hi >= den { // the quotient would not fit in 64 bits
		return 0, false
	}
	q, r := bits.Div64(hi, lo, den)
	if !ceil && r >= den-r { // 2r >= den: half up
		q++
	}
	if q > math.MaxInt64 {
		return 0, false
	}
	return int64(q), true
}

// boundFast is the token part of UpperBound in 128-bit arithmetic (see
// quotient128); ok is false when it does not fit.
func boundFast(in int64, inRate USDPerMTok, out int64, outRate USDPerMTok, f [3]Multiplier) (Nanodollars, bool) {
	if in < 0 || out < 0 || inRate < 0 || outRate < 0 {
		return 0, false
	}
	h1, l1 := bits.Mul64(uint64(in), uint64(inRate))
	h2, l2 := bits.Mul64(uint64(out), uint64(outRate))
	lo, carry := bits.Add64(l1, l2, 0)
	hi, carry := bits.Add64(h1, h2, carry)
	if carry != 0 {
		return 0, false
	}
	q, ok := quotient128(hi, lo, f, true)
	return Nanodollars(q), ok
}

func mulBig(a, b int64) *big.Int { return new(big.Int).Mul(big.NewInt(a), big.NewInt(b)) }

// roundDiv is num/den rounded half up, for num ≥ 0 and den > 0.
func roundDiv(num, den *big.Int, what string) (Nanodollars, error) {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, outOfRange(what)
	}
	return Nanodollars(q.Int64()), nil
}

// ceilDiv is num/den rounded up, for num ≥ 0 and den > 0.
func ceilDiv(num, den *big.Int, what string) (Nanodollars, error) {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Sign() > 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsInt64() {
		return 0, outOfRange(what)
	}
	return Nanodollars(q.Int64()), nil
}

// addInt is a + b, and false when the sum leaves int64.
func addInt[T ~int64](a, b T) (T, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

func outOfRange(what string) error {
	return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonCostRange, Message: "cost out of range: " + what, Err: ErrOutOfRange}
}

type set map[string]struct{}

func (s set) add(v string) { s[v] = struct{}{} }

func (s set) sorted() []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, 0, len(s))
	for v := range s {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Modifiers are what a request asks for that changes its price bound.
type Modifiers struct {
	// Batch: a Message Batches request.
	Batch bool
	// Fast: the request asks for speed "fast".
	Fast bool
	// InferenceGeo is the geo the request names. "" means unknown: a
	// workspace default may pick any geo, so the largest geo multiplier
	// of the entry applies.
	InferenceGeo string
	// WebSearches and WebFetches bound the server-tool calls (a tool's
	// max_uses); the caller picks a bound when the request sets none.
	WebSearches, WebFetches int64
}

// boundSlack covers the per-class rounding of Price: each of the seven
// classes rounds half up on its own, so the sum of the rounded classes can
// pass the rounded-up exact bound by under one nanodollar per class.
const boundSlack = 7

// UpperBound is the most a single-step request on entry e can cost with a
// prompt of at most inputTokens (input plus cache writes and reads) and at
// most outputTokens of output, for a budget to reserve before sending it:
//
//   - every prompt token at the dearest input-side class (input, 5m or 1h
//     cache write, cache read) of the dearest tier that could apply: the
//     long-context tier when inputTokens passes its threshold;
//   - every output token at that tier's output price;
//   - times the batch multiplier when m.Batch, the fast one when m.Fast
//     and e has one, and the geo multiplier of m.InferenceGeo (the largest
//     of e's when it is "");
//   - plus m.WebSearches and m.WebFetches calls at e's tool fees.
//
// Server-tool results come back as input tokens of the same request: the
// caller must count them in inputTokens. Iterations on another model (an
// advisor) are not bounded here. The bound is rounded up and carries
// boundSlack, so Price of any usage within it is never more.
func UpperBound(e *Entry, inputTokens, outputTokens int64, m Modifiers) (Nanodollars, error) {
	if inputTokens < 0 || outputTokens < 0 || m.WebSearches < 0 || m.WebFetches < 0 {
		return 0, outOfRange("negative bound")
	}
	tiers := []Rates{e.Rates}
	if lc := e.LongContext; lc != nil && inputTokens > lc.AbovePromptTokens {
		tiers = append(tiers, lc.Rates)
	}
	var in, out USDPerMTok
	for _, r := range tiers {
		in = max(in, r.Input, r.CacheWrite5m, r.CacheWrite1h, r.CacheRead)
		out = max(out, r.Output)
	}
	f := [3]Multiplier{One, One, One}
	if m.Batch {
		f[0] = e.BatchMultiplier()
	}
	if m.Fast && e.Fast != nil {
		f[1] = *e.Fast
	}
	if m.InferenceGeo == "" {
		for _, g := range e.Geo {
			f[2] = max(f[2], g)
		}
	} else if g, ok := e.GeoMultiplier(m.InferenceGeo); ok {
		f[2] = g
	}
	tokens, ok := boundFast(inputTokens, in, outputTokens, out, f)
	if !ok {
		num := new(big.Int).Add(mulBig(inputTokens, int64(in)), mulBig(outputTokens, int64(out)))
		den := new(big.Int).Set(perMTok)
		for _, x := range f {
			num.Mul(num, big.NewInt(int64(x)))
			den.Mul(den, oneBig)
		}
		var err error
		if tokens, err = ceilDiv(num, den, "bound"); err != nil {
			return 0, err
		}
	}
	if m.WebSearches == 0 && m.WebFetches == 0 {
		total, ok := addInt(tokens, boundSlack)
		if !ok {
			return 0, outOfRange("bound")
		}
		return total, nil
	}
	fees := new(big.Int)
	if m.WebSearches > 0 && e.WebSearch != nil {
		fees.Add(fees, mulBig(m.WebSearches, int64(*e.WebSearch)))
	}
	if m.WebFetches > 0 && e.WebFetch != nil {
		fees.Add(fees, mulBig(m.WebFetches, int64(*e.WebFetch)))
	}
	tools, err := ceilDiv(fees, big.NewInt(1000), "bound")
	if err != nil {
		return 0, err
	}
	total, ok := addInt(tokens, tools)
	if ok {
		total, ok = addInt(total, boundSlack)
	}
	if !ok {
		return 0, outOfRange("bound")
	}
	return total, nil
}

// RecordCostOf is c as a usage record stores it. The columns hold the
// classes, total, version and flags; Detail keeps the whole Cost when it
// says more (steps with their own models, fallback or unpriced models,
// unpriced modifiers, the long-context tier), so a drill-down can show it.
func RecordCostOf(c Cost) domain.RecordCost {
	rc := domain.RecordCost{
		CostBreakdown: c.Breakdown, Total: c.Total, PriceVersion: c.PriceVersion,
		Fallback5m: c.Fallback5m, Unpriced: len(c.Unpriced) > 0,
	}
	if len(c.Parts) > 0 || len(c.Unpriced) > 0 || len(c.Fallback) > 0 || len(c.UnpricedModifiers) > 0 || c.LongContext {
		// Cost's encoding cannot fail: fixed types, no maps of interfaces.
		rc.Detail, _ = json.Marshal(c)
	}
	return rc
}

// PriceRecord prices a usage record as it is stored with it: its cost,
// and the models the table could not price (the cost then says Unpriced;
// the priced parts are kept, never a silent $0). Any other failure (a
// count out of range) is returned with a cost marked unpriced at t's
// version.
func (t *Table) PriceRecord(rec *domain.UsageRecord, p Policy) (domain.RecordCost, []string, error) {
	c, err := t.Price(fromRecord(rec), p)
	switch {
	case errors.Is(err, ErrUnpriced):
		return RecordCostOf(c), c.Unpriced, nil
	case err != nil:
		return domain.RecordCost{PriceVersion: t.Version, Unpriced: true}, nil, err
	}
	return RecordCostOf(c), nil, nil
}

// Billable reports whether a record has anything to price: tokens or
// server-tool calls.
func Billable(rec *domain.UsageRecord) bool {
	return rec.Usage.Total() != 0 || !rec.ServerTools.IsZero()
}
