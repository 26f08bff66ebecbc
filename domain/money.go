package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Nanodollars is an exact amount of US dollars in units of 10⁻⁹ USD, in
// int64 (up to about $9.2 billion). Every stored and summed amount of money
// is one; decimal USD appears only at the edges (JSON, messages). It lives
// here, not in domain/pricing, because usage records, keys' budgets and
// the stores carry it, and domain/pricing imports this package.
type Nanodollars int64

// NanosPerUSD is the number of nanodollars in one dollar.
const NanosPerUSD = 1_000_000_000

// usdDecimals is the number of decimal places a Nanodollars amount holds.
const usdDecimals = 9

// ErrAmount marks a decimal amount that cannot be read exactly: malformed,
// negative, finer than the unit, or out of range.
var ErrAmount = errors.New("invalid amount")

// ParseUSD reads a non-negative decimal USD amount ("10", "10.5", "0.30")
// into nanodollars exactly. It refuses a sign, an exponent, spaces, a bare
// or trailing point, digits finer than a nanodollar (trailing zeros past the
// ninth decimal are accepted: they add no precision) and amounts past
// math.MaxInt64 nanodollars.
func ParseUSD(s string) (Nanodollars, error) {
	v, err := ParseFixed(s, usdDecimals)
	return Nanodollars(v), err
}

// FormatUSD writes n as decimal USD, exactly, with at least six decimal
// places and up to nine: 3_750_000 is "0.003750", 1 is "0.000000001".
// Every amount has exactly one such form, and ParseUSD reads it back
// (negative amounts, which ParseUSD refuses, are written with a minus).
func FormatUSD(n Nanodollars) string { return FormatFixed(int64(n), usdDecimals, 6) }

// String is FormatUSD.
func (n Nanodollars) String() string { return FormatUSD(n) }

// USD is n as a JSON number in dollars ("0.003750"), for APIs that show
// money as a decimal number rather than integer nanodollars.
func (n Nanodollars) USD() json.Number { return json.Number(FormatUSD(n)) }

func amountErr(s, why string) error {
	return &Error{Kind: KindInvalid, Message: fmt.Sprintf("amount %q: %s", s, why), Reason: ReasonAmount, Err: ErrAmount}
}

// ParseFixed reads s as a non-negative decimal with at most scale
// significant fractional digits and returns it times 10^scale, exactly. A
// malformed s is an ErrAmount of kind invalid.
func ParseFixed(s string, scale int) (int64, error) {
	if s == "" {
		return 0, amountErr(s, "empty")
	}
	if s[0] == '-' {
		return 0, amountErr(s, "negative")
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && frac == "") {
		return 0, amountErr(s, "want digits on both sides of the point")
	}
	if !allDigits(whole) || !allDigits(frac) {
		return 0, amountErr(s, "want only decimal digits and one point")
	}
	if len(frac) > scale {
		if strings.TrimRight(frac[scale:], "0") != "" {
			return 0, amountErr(s, fmt.Sprintf("more than %d decimal places", scale))
		}
		frac = frac[:scale]
	}
	frac += strings.Repeat("0", scale-len(frac))
	// Leading zeros are harmless, and trimming them keeps long-but-small
	// inputs ("000…01") from tripping the range check.
	digits := strings.TrimLeft(whole+frac, "0")
	if digits == "" {
		return 0, nil
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, amountErr(s, "out of range")
	}
	return v, nil
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// FormatFixed writes v / 10^scale exactly, with at least minFrac and at
// most scale fractional digits (trailing zeros trimmed down to minFrac).
func FormatFixed(v int64, scale, minFrac int) string {
	neg := v < 0
	// uint64 holds |math.MinInt64|, which int64 cannot.
	u := uint64(v)
	if neg {
		u = -u
	}
	p := uint64(1)
	for range scale {
		p *= 10
	}
	whole, frac := u/p, u%p
	fs := fmt.Sprintf("%0*d", scale, frac)
	end := len(fs)
	for end > minFrac && fs[end-1] == '0' {
		end--
	}
	var b strings.Builder
	if neg {
		b.WriteByte('-')
	}
	b.WriteString(strconv.FormatUint(whole, 10))
	if end > 0 {
		b.WriteByte('.')
		b.WriteString(fs[:end])
	}
	return b.String()
}

// CostBreakdown is a cost per price class, with what the cache reads
// saved.
type CostBreakdown struct {
	Input        Nanodollars `json:"input"`
	Output       Nanodollars `json:"output"`
	CacheWrite5m Nanodollars `json:"cache_write_5m"`
	CacheWrite1h Nanodollars `json:"cache_write_1h"`
	CacheRead    Nanodollars `json:"cache_read"`
	WebSearch    Nanodollars `json:"web_search"`
	WebFetch     Nanodollars `json:"web_fetch"`
	// CacheSaved is not a class and not part of Sum: it is what the cache
	// reads would have cost at the input rate of the same price card, with
	// the same modifiers, minus what they cost at the cache-read rate.
	CacheSaved Nanodollars `json:"cache_saved,omitempty"`
}

func (b CostBreakdown) classes() [7]Nanodollars {
	return [7]Nanodollars{b.Input, b.Output, b.CacheWrite5m, b.CacheWrite1h, b.CacheRead, b.WebSearch, b.WebFetch}
}

// Sum is the total of the classes; ok is false when it leaves int64.
func (b CostBreakdown) Sum() (total Nanodollars, ok bool) {
	for _, c := range b.classes() {
		if total, ok = addMoney(total, c); !ok {
			return 0, false
		}
	}
	return total, true
}

// Add is b + o per class (and CacheSaved); ok is false when a sum leaves
// int64.
func (b CostBreakdown) Add(o CostBreakdown) (CostBreakdown, bool) {
	x, y := b.classes(), o.classes()
	var r [7]Nanodollars
	for i := range x {
		var ok bool
		if r[i], ok = addMoney(x[i], y[i]); !ok {
			return CostBreakdown{}, false
		}
	}
	saved, ok := addMoney(b.CacheSaved, o.CacheSaved)
	if !ok {
		return CostBreakdown{}, false
	}
	return CostBreakdown{Input: r[0], Output: r[1], CacheWrite5m: r[2], CacheWrite1h: r[3], CacheRead: r[4], WebSearch: r[5], WebFetch: r[6], CacheSaved: saved}, true
}

// Sub is b − o per class (for a repricing's difference); it wraps on
// overflow, which costs from one table never reach.
func (b CostBreakdown) Sub(o CostBreakdown) CostBreakdown {
	return CostBreakdown{
		Input: b.Input - o.Input, Output: b.Output - o.Output,
		CacheWrite5m: b.CacheWrite5m - o.CacheWrite5m, CacheWrite1h: b.CacheWrite1h - o.CacheWrite1h,
		CacheRead: b.CacheRead - o.CacheRead, WebSearch: b.WebSearch - o.WebSearch, WebFetch: b.WebFetch - o.WebFetch,
		CacheSaved: b.CacheSaved - o.CacheSaved,
	}
}

func addMoney(a, b Nanodollars) (Nanodollars, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// RecordCost is what a usage record cost, as it is stored with it: the
// classes, their total, what its cache reads saved (CacheSaved, in the
// breakdown), the price table version that priced them and the
// flags a reader needs to trust the figure. Detail is the full priced cost
// (domain/pricing's Cost, JSON) when it says more than the columns do:
// per-step parts of a request with iterations, models priced at a fallback
// or not at all, modifiers without a price.
type RecordCost struct {
	CostBreakdown
	Total        Nanodollars
	PriceVersion string // "" when the record was never priced
	// Fallback5m: cache writes without a 5m/1h split were priced at the
	// 5-minute rate.
	Fallback5m bool
	// Unpriced: some tokens had no price (an unpriced model, recorded
	// under the fallback policy, or a record the relay refused): Total
	// leaves them out.
	Unpriced bool
	Detail   json.RawMessage
}
