package pricing

import (
	"encoding/json"
	"fmt"

	"github.com/relaystation/relay/domain"
)

// Nanodollars is the domain's exact money unit (10⁻⁹ USD).
type Nanodollars = domain.Nanodollars

// NanosPerUSD is the number of nanodollars in one dollar.
const NanosPerUSD = domain.NanosPerUSD

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

// ErrAmount marks a decimal amount that cannot be read exactly.
var ErrAmount = domain.ErrAmount

// ParseUSD reads a non-negative decimal USD amount exactly (domain.ParseUSD).
func ParseUSD(s string) (Nanodollars, error) { return domain.ParseUSD(s) }

// ParseMultiplier reads a non-negative decimal factor ("0.5", "1.1", "6")
// exactly, to a millionth.
func ParseMultiplier(s string) (Multiplier, error) {
	v, err := parseDecimal(s, multDecimals)
	return Multiplier(v), err
}

func parseDecimal(s string, scale int) (int64, error) { return domain.ParseFixed(s, scale) }

func formatDecimal(v int64, scale, minFrac int) string { return domain.FormatFixed(v, scale, minFrac) }

// FormatUSD writes n as decimal USD exactly (domain.FormatUSD).
func FormatUSD(n Nanodollars) string { return domain.FormatUSD(n) }

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
