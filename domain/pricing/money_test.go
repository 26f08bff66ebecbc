package pricing

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"regexp"
	"testing"

	"github.com/relaystation/relay/domain"
)

func TestParseUSD(t *testing.T) {
	t.Parallel()
	ok := []struct {
		in   string
		want Nanodollars
	}{
		{"0", 0},
		{"10", 10 * NanosPerUSD},
		{"10.5", 10_500_000_000},
		{"0.30", 300_000_000},
		{"3.75", 3_750_000_000},
		{"0.000000001", 1},
		{"0.0000000010", 1}, // a trailing zero past the ninth place adds no precision
		{"007.50", 7_500_000_000},
		{"000000000000000000000000000001", NanosPerUSD},
		{"9223372036.854775807", math.MaxInt64},
	}
	for _, c := range ok {
		got, err := ParseUSD(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseUSD(%q) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	bad := []string{
		"", "-1", "-0.5", "+1", "1e3", "1E-3", " 1", "1 ", "1.", ".5", ".", "1.2.3", "1,000", "0x10",
		"0.0000000001", "0.0000000015", "9223372036.854775808", "99999999999999999999", "٣", "1_000", "NaN", "Inf",
	}
	for _, in := range bad {
		got, err := ParseUSD(in)
		if err == nil {
			t.Errorf("ParseUSD(%q) = %d, want an error", in, got)
			continue
		}
		if !errors.Is(err, ErrAmount) || domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("ParseUSD(%q) error %v: want ErrAmount of kind invalid", in, err)
		}
	}
}

func TestFormatUSD(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   Nanodollars
		want string
	}{
		{0, "0.000000"},
		{3_750_000, "0.003750"},
		{1, "0.000000001"},
		{1_230, "0.00000123"},
		{10_500_000_000, "10.500000"},
		{-1, "-0.000000001"},
		{-3_750_000, "-0.003750"},
		{math.MaxInt64, "9223372036.854775807"},
		{math.MinInt64, "-9223372036.854775808"},
	} {
		if got := FormatUSD(c.in); got != c.want {
			t.Errorf("FormatUSD(%d) = %q, want %q", c.in, got, c.want)
		}
		if got := c.in.String(); got != c.want {
			t.Errorf("String(%d) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestFormatParseRoundTrip(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	vals := []Nanodollars{0, 1, 9, 10, 999_999_999, NanosPerUSD, math.MaxInt64, math.MaxInt64 - 1}
	for range 10_000 {
		vals = append(vals, Nanodollars(rng.Int64()), Nanodollars(rng.Int64N(1_000_000_000_000)))
	}
	for _, v := range vals {
		s := FormatUSD(v)
		got, err := ParseUSD(s)
		if err != nil || got != v {
			t.Fatalf("ParseUSD(FormatUSD(%d) = %q) = %d, %v", v, s, got, err)
		}
	}
}

func TestUSDJSONForms(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(struct {
		N Nanodollars `json:"n"`
		U json.Number `json:"u"`
	}{3_750_000, Nanodollars(3_750_000).USD()})
	if err != nil || string(b) != `{"n":3750000,"u":0.003750}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	var back struct{ U json.Number }
	if err := json.Unmarshal([]byte(`{"U":0.003750}`), &back); err != nil {
		t.Fatal(err)
	}
	if n, err := ParseUSD(back.U.String()); err != nil || n != 3_750_000 {
		t.Fatalf("json.Number round trip = %d, %v", n, err)
	}
}

func TestDecimalTypesJSON(t *testing.T) {
	t.Parallel()
	var r struct {
		A USDPerMTok `json:"a"`
		B USDPerMTok `json:"b"`
		F USDPer1000 `json:"f"`
		M Multiplier `json:"m"`
	}
	// A bare number is read from its literal text, never through a float.
	if err := json.Unmarshal([]byte(`{"a":"0.30","b":0.1,"f":"10","m":1.1}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.A != 300_000_000 || r.B != 100_000_000 || r.F != 10*NanosPerUSD || r.M != 1_100_000 {
		t.Fatalf("decoded %+v", r)
	}
	b, err := json.Marshal(r)
	if err != nil || string(b) != `{"a":"0.3","b":"0.1","f":"10","m":"1.1"}` {
		t.Fatalf("marshal = %s, %v", b, err)
	}
	for _, in := range []string{`{"m":"1.0000001"}`, `{"m":"-1"}`, `{"a":"1e2"}`, `{"a":1e2}`, `{"a":true}`, `{"f":"-10"}`} {
		if err := json.Unmarshal([]byte(in), &r); err == nil {
			t.Errorf("%s: want an error", in)
		}
	}
	if m, err := ParseMultiplier("0.5"); err != nil || m != DefaultBatch {
		t.Fatalf("ParseMultiplier(0.5) = %d, %v", m, err)
	}
}

var strictDecimal = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)

// FuzzParseUSD checks that ParseUSD reads exactly the strict grammar, to the
// nanodollar, and that FormatUSD writes back what it read.
func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"0", "10.5", "0.30", "0.000000001", "0.0000000001", "-1", "1e3", "9223372036.854775807",
		"9223372036.854775808", "00.10", "1.", ".1", "+2"} {
		f.Add(s)
	}
	nano := big.NewRat(NanosPerUSD, 1)
	maxRat := new(big.Rat).SetInt64(math.MaxInt64)
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseUSD(s)
		if !strictDecimal.MatchString(s) {
			if err == nil {
				t.Fatalf("ParseUSD(%q) = %d, want an error outside the grammar", s, v)
			}
			return
		}
		exact, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("big.Rat cannot read %q", s)
		}
		exact.Mul(exact, nano)
		representable := exact.IsInt() && exact.Cmp(maxRat) <= 0
		if err != nil {
			if representable {
				t.Fatalf("ParseUSD(%q): %v, but it is %s nanodollars", s, err, exact.RatString())
			}
			return
		}
		if !representable || exact.Num().Int64() != int64(v) {
			t.Fatalf("ParseUSD(%q) = %d, exact value %s", s, v, exact.RatString())
		}
		if back, err := ParseUSD(FormatUSD(v)); err != nil || back != v {
			t.Fatalf("round trip of %q: %q -> %d, %v", s, FormatUSD(v), back, err)
		}
	})
}
