package pricing

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/relaystation/relay/domain"
)

// Nanodollars is an exact amount of US dollars in units of 10⁻⁹ USD. It
// encodes to JSON as an integer, so a stored cost reads back bit for bit.
type Nanodollars int64

// NanosPerUSD is the number of nanodollars in one dollar.
const NanosPerUSD = 1_000_000_000

// USDPerMTok is a token price in nanodollars per million tokens: the unit
// Anthropic quotes prices in, held exactly. $0.30/MTok is 300_000_000. It
// encodes to JSON as a decimal USD string ("0.3").
type USDPerMTok int64

// USDPer1000 is a per-call fee in nanodollars per 1,000 calls (web search
// is quoted per 1,000 searches). It encodes to JSON as a decimal USD string.
type USDPer1000 int64

// Multiplier is an exact price factor in millionths: 0.5 is 500_000, 1.1
// is 1_100_000. It encodes to JSON as a decimal string ("1.1").
type Multiplier int64

// One is the multiplier that changes nothing.
const One Multiplier = 1_000_000

// Decimal places each fixed-point type holds.
const (
	usdDecimals  = 9
	multDecimals = 6
)

// ErrAmount marks a decimal amount that cannot be read exactly: malformed,
// negative, finer than the unit, or out of range.
var ErrAmount = errors.New("invalid amount")

// ParseUSD reads a non-negative decimal USD amount ("10", "10.5", "0.30")
// into nanodollars exactly. It refuses a sign, an exponent, spaces, a bare
// or trailing point, digits finer than a nanodollar (trailing zeros past the
// ninth decimal are accepted: they add no precision) and amounts past
// math.MaxInt64 nanodollars.
func ParseUSD(s string) (Nanodollars, error) {
	v, err := parseDecimal(s, usdDecimals)
	return Nanodollars(v), err
}

// ParseMultiplier reads a non-negative decimal factor ("0.5", "1.1", "6")
// exactly, to a millionth.
func ParseMultiplier(s string) (Multiplier, error) {
	v, err := parseDecimal(s, multDecimals)
	return Multiplier(v), err
}

func amountErr(s, why string) error {
	return &domain.Error{Kind: domain.KindInvalid, Message: fmt.Sprintf("amount %q: %s", s, why), Reason: domain.ReasonAmount, Err: ErrAmount}
}

// parseDecimal reads s as a non-negative decimal with at most scale
// significant fractional digits and returns it times 10^scale.
func parseDecimal(s string, scale int) (int64, error) {
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

// formatDecimal writes v / 10^scale exactly, with at least minFrac and at
// most scale fractional digits (trailing zeros trimmed down to minFrac).
func formatDecimal(v int64, scale, minFrac int) string {
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

// FormatUSD writes n as decimal USD, exactly, with at least six decimal
// places and up to nine: 3_750_000 is "0.003750", 1 is "0.000000001".
// Every amount has exactly one such form, and ParseUSD reads it back
// (negative amounts, which ParseUSD refuses, are written with a minus).
func FormatUSD(n Nanodollars) string { return formatDecimal(int64(n), usdDecimals, 6) }

// String is FormatUSD.
func (n Nanodollars) String() string { return FormatUSD(n) }

// USD is n as a JSON number in dollars ("0.003750"), for APIs that show
// money as a decimal number rather than integer nanodollars.
func (n Nanodollars) USD() json.Number { return json.Number(FormatUSD(n)) }

// String writes the price in USD per MTok with no trailing zeros ("3.75").
func (r USDPerMTok) String() string { return formatDecimal(int64(r), usdDecimals, 0) }

// String writes the fee in USD per 1,000 calls with no trailing zeros.
func (r USDPer1000) String() string { return formatDecimal(int64(r), usdDecimals, 0) }

// String writes the factor with no trailing zeros ("0.5").
func (m Multiplier) String() string { return formatDecimal(int64(m), multDecimals, 0) }

// decimalText returns the text of a JSON string or number literal. A
// number is taken from its literal text, never through a float.
func decimalText(b []byte) (string, error) {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return "", err
		}
		return s, nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return "", fmt.Errorf("want a decimal string: %w", err)
	}
	return n.String(), nil
}

func (r USDPerMTok) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads a decimal USD string ("0.30") or a bare JSON number.
func (r *USDPerMTok) UnmarshalJSON(b []byte) error {
	s, err := decimalText(b)
	if err != nil {
		return err
	}
	v, err := parseDecimal(s, usdDecimals)
	*r = USDPerMTok(v)
	return err
}

func (r USDPer1000) MarshalJSON() ([]byte, error) { return json.Marshal(r.String()) }

// UnmarshalJSON reads a decimal USD string ("10") or a bare JSON number.
func (r *USDPer1000) UnmarshalJSON(b []byte) error {
	s, err := decimalText(b)
	if err != nil {
		return err
	}
	v, err := parseDecimal(s, usdDecimals)
	*r = USDPer1000(v)
	return err
}

func (m Multiplier) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON reads a decimal string ("1.1") or a bare JSON number.
func (m *Multiplier) UnmarshalJSON(b []byte) error {
	s, err := decimalText(b)
	if err != nil {
		return err
	}
	v, err := parseDecimal(s, multDecimals)
	*m = Multiplier(v)
	return err
}
