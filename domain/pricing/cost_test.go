package pricing

import (
	"encoding/json"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

// Golden costs. Each case is a real reply's usage object; each expected
// amount is worked out by hand below it, with the seed's rates. A rate of
// $R/MTok is R×1000 nanodollars per token. "saved" is what the cache reads
// would have cost at the input rate of the same card and modifiers, minus
// their cost (not part of the total).
var golden = []struct {
	name  string
	reply string
	batch bool
	want  Cost
}{
	{
		name: "5m cache write",
		reply: `{"model":"claude-sonnet-4-6","usage":{"input_tokens":2000,"cache_creation_input_tokens":10000,
			"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":10000,"ephemeral_1h_input_tokens":0},
			"output_tokens":500,"service_tier":"standard"}}`,
		// input   2,000 × $3    = $0.006   =  6,000,000
		// 5m     10,000 × $3.75 = $0.0375  = 37,500,000
		// output    500 × $15   = $0.0075  =  7,500,000
		// total                              51,000,000
		want: Cost{Breakdown: Breakdown{Input: 6_000_000, CacheWrite5m: 37_500_000, Output: 7_500_000}, Total: 51_000_000},
	},
	{
		name: "1h cache write and cache read",
		reply: `{"model":"claude-opus-5-5","usage":{"input_tokens":2000,"cache_creation_input_tokens":8000,
			"cache_read_input_tokens":140000,"cache_creation":{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":8000},
			"output_tokens":1500}}`,
		// input    2,000 × $4    = $0.008 =   8,000,000
		// 1h       8,000 × $8    = $0.064 =  64,000,000
		// read   140,000 × $0.20 = $0.028 =  28,000,000
		// output   1,500 × $20   = $0.030 =  30,000,000
		// total                              130,000,000
		// saved  140,000 × $4 − 28,000,000 = 560,000,000 − 28,000,000 = 532,000,000
		want: Cost{Breakdown: Breakdown{Input: 8_000_000, CacheWrite1h: 64_000_000, CacheRead: 28_000_000, Output: 30_000_000,
			CacheSaved: 532_000_000}, Total: 130_000_000},
	},
	{
		name: "both TTLs on a dated snapshot",
		reply: `{"model":"claude-haiku-4-5-20251001","usage":{"input_tokens":1234,"cache_creation_input_tokens":5000,
			"cache_read_input_tokens":50000,"cache_creation":{"ephemeral_5m_input_tokens":3000,"ephemeral_1h_input_tokens":2000},
			"output_tokens":777}}`,
		// input   1,234 × $1    = 1,234 × 1,000 = 1,234,000
		// 5m      3,000 × $1.25 = 3,000 × 1,250 = 3,750,000
		// 1h      2,000 × $2    = 2,000 × 2,000 = 4,000,000
		// read   50,000 × $0.10 = 50,000 × 100  = 5,000,000
		// output    777 × $5    = 777 × 5,000   = 3,885,000
		// total                                  17,869,000
		// saved  50,000 × $1 − 5,000,000 = 50,000,000 − 5,000,000 = 45,000,000
		want: Cost{Breakdown: Breakdown{Input: 1_234_000, CacheWrite5m: 3_750_000, CacheWrite1h: 4_000_000,
			CacheRead: 5_000_000, Output: 3_885_000, CacheSaved: 45_000_000}, Total: 17_869_000},
	},
	{
		name: "TTL split missing",
		reply: `{"model":"claude-sonnet-4-6","usage":{"input_tokens":100,"cache_creation_input_tokens":4000,
			"cache_read_input_tokens":0,"output_tokens":50}}`,
		// input    100 × $3    =    300,000
		// 5m     4,000 × $3.75 = 15,000,000  (no split: all at the 5-minute rate)
		// output    50 × $15   =    750,000
		// total                  16,050,000
		want: Cost{Breakdown: Breakdown{Input: 300_000, CacheWrite5m: 15_000_000, Output: 750_000}, Total: 16_050_000,
			Fallback5m: true},
	},
	{
		name: "TTL split short of the aggregate",
		reply: `{"model":"claude-sonnet-4-6","usage":{"input_tokens":0,"cache_creation_input_tokens":5000,
			"cache_creation":{"ephemeral_5m_input_tokens":1000,"ephemeral_1h_input_tokens":3000},"output_tokens":0}}`,
		// 5m (1,000 + the 1,000 not split) × $3.75 = 2,000 × 3,750 =  7,500,000
		// 1h  3,000 × $6                            = 3,000 × 6,000 = 18,000,000
		want: Cost{Breakdown: Breakdown{CacheWrite5m: 7_500_000, CacheWrite1h: 18_000_000}, Total: 25_500_000, Fallback5m: true},
	},
	{
		name: "long-context tier",
		reply: `{"model":"claude-sonnet-4-5","usage":{"input_tokens":150000,"cache_read_input_tokens":60000,
			"cache_creation_input_tokens":0,"output_tokens":2000}}`,
		// prompt 150,000 + 60,000 = 210,000 > 200,000: long-context rates on every token
		// input  150,000 × $6     = 900,000,000
		// read    60,000 × $0.60  =  36,000,000
		// output   2,000 × $22.50 =  45,000,000
		// total                     981,000,000
		// saved at the long-context input rate:
		//         60,000 × $6 − 36,000,000 = 360,000,000 − 36,000,000 = 324,000,000
		want: Cost{Breakdown: Breakdown{Input: 900_000_000, CacheRead: 36_000_000, Output: 45_000_000, CacheSaved: 324_000_000},
			Total: 981_000_000, LongContext: true},
	},
	{
		name: "long-context threshold is exclusive",
		reply: `{"model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":140000,"cache_read_input_tokens":60000,
			"output_tokens":2000}}`,
		// prompt exactly 200,000: standard rates
		// input  140,000 × $3    = 420,000,000
		// read    60,000 × $0.30 =  18,000,000
		// output   2,000 × $15   =  30,000,000
		// saved   60,000 × $3 − 18,000,000 = 180,000,000 − 18,000,000 = 162,000,000
		want: Cost{Breakdown: Breakdown{Input: 420_000_000, CacheRead: 18_000_000, Output: 30_000_000, CacheSaved: 162_000_000},
			Total: 468_000_000},
	},
	{
		name: "prompt-length band counts cache writes",
		reply: `{"model":"claude-haiku-5-5","usage":{"input_tokens":90000,"cache_creation_input_tokens":10001,
			"cache_creation":{"ephemeral_5m_input_tokens":10001,"ephemeral_1h_input_tokens":0},"output_tokens":1000}}`,
		// prompt 90,000 + 10,001 = 100,001 > 100,000: the over-100K card
		// input  90,000 × $0.50  = 90,000 × 500  = 45,000,000
		// 5m     10,001 × $0.625 = 10,001 × 625  =  6,250,625
		// output  1,000 × $2.50  = 1,000 × 2,500 =  2,500,000
		// total                                    53,750,625
		want: Cost{Breakdown: Breakdown{Input: 45_000_000, CacheWrite5m: 6_250_625, Output: 2_500_000}, Total: 53_750_625,
			LongContext: true},
	},
	{
		name:  "batch",
		batch: true,
		reply: `{"model":"claude-opus-5-5","usage":{"input_tokens":5000,"output_tokens":800}}`,
		// input  5,000 × $4  × 0.5 = 10,000,000
		// output   800 × $20 × 0.5 =  8,000,000
		want: Cost{Breakdown: Breakdown{Input: 10_000_000, Output: 8_000_000}, Total: 18_000_000},
	},
	{
		name: "batch by service tier, rounded half up per class",
		reply: `{"model":"claude-haiku-5-5","usage":{"input_tokens":1,"cache_creation_input_tokens":3,
			"cache_creation":{"ephemeral_5m_input_tokens":3},"cache_read_input_tokens":1,"output_tokens":1,"service_tier":"batch"}}`,
		// input  1 × $0.10  × 0.5 = 50
		// 5m     3 × $0.125 × 0.5 = 3 × 62.5 = 187.5 -> 188
		// read   1 × $0.01  × 0.5 = 5
		// output 1 × $0.50  × 0.5 = 250
		// total                     493
		// saved  1 × $0.10 × 0.5 − 5 = 50 − 5 = 45 (the batch rate on both sides)
		want: Cost{Breakdown: Breakdown{Input: 50, CacheWrite5m: 188, CacheRead: 5, Output: 250, CacheSaved: 45}, Total: 493},
	},
	{
		name: "US-only inference",
		reply: `{"model":"claude-sonnet-5-5","usage":{"input_tokens":1000,"cache_read_input_tokens":10000,
			"output_tokens":1000,"inference_geo":"us"}}`,
		// input   1,000 × $2    × 1.1 =  2,200,000
		// read   10,000 × $0.10 × 1.1 =  1,100,000
		// output  1,000 × $10   × 1.1 = 11,000,000
		// total                         14,300,000
		// saved  10,000 × $2 × 1.1 − 1,100,000 = 22,000,000 − 1,100,000 = 20,900,000
		want: Cost{Breakdown: Breakdown{Input: 2_200_000, CacheRead: 1_100_000, Output: 11_000_000, CacheSaved: 20_900_000},
			Total: 14_300_000},
	},
	{
		name:  "global inference is the standard price",
		reply: `{"model":"claude-sonnet-5-5","usage":{"input_tokens":1000,"output_tokens":1000,"inference_geo":"global"}}`,
		// 1,000 × $2 + 1,000 × $10 = 2,000,000 + 10,000,000
		want: Cost{Breakdown: Breakdown{Input: 2_000_000, Output: 10_000_000}, Total: 12_000_000},
	},
	{
		name: "fast mode",
		reply: `{"model":"claude-opus-5-5","usage":{"input_tokens":10000,"cache_creation_input_tokens":1000,
			"cache_creation":{"ephemeral_5m_input_tokens":1000},"output_tokens":2000,"speed":"fast"}}`,
		// input  10,000 × $4  × 2 = 80,000,000
		// 5m      1,000 × $5  × 2 = 10,000,000
		// output  2,000 × $20 × 2 = 80,000,000
		want: Cost{Breakdown: Breakdown{Input: 80_000_000, CacheWrite5m: 10_000_000, Output: 80_000_000}, Total: 170_000_000},
	},
	{
		name:  "fast mode and US-only stack",
		reply: `{"model":"claude-opus-4-6","usage":{"input_tokens":1000,"output_tokens":100,"speed":"fast","inference_geo":"us"}}`,
		// input  1,000 × $5  × 6 × 1.1 = 33,000,000
		// output   100 × $25 × 6 × 1.1 = 16,500,000
		want: Cost{Breakdown: Breakdown{Input: 33_000_000, Output: 16_500_000}, Total: 49_500_000},
	},
	{
		name: "web search and web fetch",
		reply: `{"model":"claude-sonnet-5-5","usage":{"input_tokens":12000,"output_tokens":600,
			"server_tool_use":{"web_search_requests":3,"web_fetch_requests":2}}}`,
		// input  12,000 × $2  = 24,000,000 (search results arrive as input tokens)
		// output    600 × $10 =  6,000,000
		// search  3 × $10 / 1,000 = $0.03 = 30,000,000
		// fetch   2 × $0                 =          0
		want: Cost{Breakdown: Breakdown{Input: 24_000_000, Output: 6_000_000, WebSearch: 30_000_000}, Total: 60_000_000},
	},
	{
		name:  "web search fee is flat under batch",
		batch: true,
		reply: `{"model":"claude-sonnet-5-5","usage":{"input_tokens":12000,"output_tokens":600,
			"server_tool_use":{"web_search_requests":3}}}`,
		// tokens halved: 12,000,000 + 3,000,000; search 30,000,000 as is
		want: Cost{Breakdown: Breakdown{Input: 12_000_000, Output: 3_000_000, WebSearch: 30_000_000}, Total: 45_000_000},
	},
	{
		name: "advisor iteration at its own model",
		reply: `{"model":"claude-sonnet-5-5","usage":{"input_tokens":1200,"output_tokens":300,"cache_read_input_tokens":20000,
			"iterations":[
			  {"type":"message","input_tokens":1000,"output_tokens":200,"cache_creation_input_tokens":20000,
			   "cache_creation":{"ephemeral_5m_input_tokens":20000,"ephemeral_1h_input_tokens":0}},
			  {"type":"advisor_message","model":"claude-opus-5-5","input_tokens":25000,"output_tokens":400},
			  {"type":"message","input_tokens":1200,"output_tokens":300,"cache_read_input_tokens":20000}]}}`,
		// step 1, Sonnet 5.5: 1,000 × $2 + 20,000 × $2.50 + 200 × $10
		//                   = 2,000,000 + 50,000,000 + 2,000,000     =  54,000,000
		// step 2, Opus 5.5:  25,000 × $4 + 400 × $20
		//                   = 100,000,000 + 8,000,000                = 108,000,000
		// step 3, Sonnet 5.5: 1,200 × $2 + 20,000 × $0.10 + 300 × $10
		//                   = 2,400,000 + 2,000,000 + 3,000,000      =   7,400,000
		// total                                                         169,400,000
		// (the top-level usage is step 3 and is not counted again)
		// saved, step 3 only: 20,000 × $2 − 2,000,000 = 40,000,000 − 2,000,000 = 38,000,000
		want: Cost{
			Breakdown: Breakdown{Input: 104_400_000, Output: 13_000_000, CacheWrite5m: 50_000_000, CacheRead: 2_000_000,
				CacheSaved: 38_000_000},
			Total: 169_400_000,
			Parts: []Part{
				{Type: "message", Model: "claude-sonnet-5-5", PricedAs: "claude-sonnet-5-5",
					Breakdown: Breakdown{Input: 2_000_000, CacheWrite5m: 50_000_000, Output: 2_000_000}, Total: 54_000_000},
				{Type: "advisor_message", Model: "claude-opus-5-5", PricedAs: "claude-opus-5-5",
					Breakdown: Breakdown{Input: 100_000_000, Output: 8_000_000}, Total: 108_000_000},
				{Type: "message", Model: "claude-sonnet-5-5", PricedAs: "claude-sonnet-5-5",
					Breakdown: Breakdown{Input: 2_400_000, CacheRead: 2_000_000, Output: 3_000_000, CacheSaved: 38_000_000},
					Total:     7_400_000},
			},
		},
	},
	{
		name: "compaction without a message iteration adds the top level",
		reply: `{"model":"claude-opus-5","usage":{"input_tokens":100,"output_tokens":50,
			"iterations":[{"type":"compaction","input_tokens":2000,"output_tokens":300}]}}`,
		// compaction, Opus 5: 2,000 × $5 + 300 × $25 = 10,000,000 + 7,500,000 = 17,500,000
		// top level,  Opus 5:   100 × $5 +  50 × $25 =    500,000 + 1,250,000 =  1,750,000
		want: Cost{
			Breakdown: Breakdown{Input: 10_500_000, Output: 8_750_000}, Total: 19_250_000,
			Parts: []Part{
				{Type: "compaction", Model: "claude-opus-5", PricedAs: "claude-opus-5",
					Breakdown: Breakdown{Input: 10_000_000, Output: 7_500_000}, Total: 17_500_000},
				{Type: "message", Model: "claude-opus-5", PricedAs: "claude-opus-5",
					Breakdown: Breakdown{Input: 500_000, Output: 1_250_000}, Total: 1_750_000},
			},
		},
	},
}

func TestPriceGolden(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	for _, c := range golden {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, err := tab.Price(NewRequest(t, c.reply, c.batch), Policy{})
			if err != nil {
				t.Fatal(err)
			}
			want := c.want
			want.PriceVersion = tab.Version
			if !reflect.DeepEqual(got, want) {
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				t.Fatalf("got  %s\nwant %s", gb, wb)
			}
			if s, _ := got.Breakdown.Sum(); s != got.Total {
				t.Fatalf("classes sum to %d, total %d", s, got.Total)
			}
		})
	}
}

func TestPriceUnpricedModifiers(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	for _, c := range []struct {
		reply string
		want  []string
		total Nanodollars
	}{
		// Sonnet 5.5 has no fast mode: standard price, and the record says so.
		{`{"model":"claude-sonnet-5-5","usage":{"input_tokens":1000,"speed":"fast"}}`,
			[]string{"speed=fast@claude-sonnet-5-5"}, 2_000_000},
		{`{"model":"claude-sonnet-5-5","usage":{"input_tokens":1000,"inference_geo":"eu"}}`,
			[]string{"inference_geo=eu@claude-sonnet-5-5"}, 2_000_000},
		// Haiku 4.5 predates inference_geo.
		{`{"model":"claude-haiku-4-5","usage":{"input_tokens":1000,"inference_geo":"us"}}`,
			[]string{"inference_geo=us@claude-haiku-4-5-20251001"}, 1_000_000},
	} {
		got, err := tab.Price(NewRequest(t, c.reply, false), Policy{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.UnpricedModifiers, c.want) || got.Total != c.total {
			t.Errorf("%s: unpriced %q total %d; want %q %d", c.reply, got.UnpricedModifiers, got.Total, c.want, c.total)
		}
	}
}

func TestPriceUnpricedPolicy(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	reply := `{"model":"claude-sonnet-5-5","usage":{"input_tokens":1000,"output_tokens":10,
		"server_tool_use":{"web_search_requests":1},
		"iterations":[{"type":"advisor_message","model":"claude-opus-9","input_tokens":500,"output_tokens":5},
		              {"type":"message","input_tokens":1000,"output_tokens":10}]}}`
	r := NewRequest(t, reply, false)

	got, err := tab.Price(r, Policy{Unpriced: UnpricedRefuse})
	if !errors.Is(err, ErrUnpriced) || domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("refuse: err %v", err)
	}
	// The rest is still priced: 1,000 × $2 + 10 × $10 + one search.
	if got.Total != 2_000_000+100_000+10_000_000 || !reflect.DeepEqual(got.Unpriced, []string{"claude-opus-9"}) ||
		got.Parts[0].PricedAs != "" || got.Parts[0].Total != 0 {
		t.Fatalf("refuse: %+v", got)
	}

	pol := Policy{Unpriced: UnpricedFallback, FallbackModel: "claude-opus-5-5"}
	if err := pol.Validate(tab); err != nil {
		t.Fatal(err)
	}
	got, err = tab.Price(r, pol)
	if err != nil {
		t.Fatal(err)
	}
	// The advisor step at Opus 5.5: 500 × $4 + 5 × $20 = 2,000,000 + 100,000.
	if got.Total != 12_100_000+2_100_000 || !reflect.DeepEqual(got.Fallback, []string{"claude-opus-9"}) ||
		got.Parts[0].PricedAs != "claude-opus-5-5" || got.Unpriced != nil {
		t.Fatalf("fallback: %+v", got)
	}

	for _, bad := range []Policy{
		{Unpriced: UnpricedFallback},
		{Unpriced: UnpricedFallback, FallbackModel: "nope"},
		{Unpriced: "ignore"},
	} {
		if err := bad.Validate(tab); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("Validate(%+v) = %v, want invalid", bad, err)
		}
	}
}

func TestFromRecordMatchesBilledUsage(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	for _, c := range golden {
		r := NewRequest(t, c.reply, c.batch)
		rec := domain.UsageRecord{Model: r.Model, Usage: domain.BilledUsage(r.Usage, r.Iterations), Iterations: r.Iterations,
			ServerTools: r.ServerTools, Batch: r.Batch, ServiceTier: r.ServiceTier, Speed: r.Speed, InferenceGeo: r.InferenceGeo}
		fromRec, err1 := tab.Price(FromRecord(rec), Policy{})
		fromReply, err2 := tab.Price(r, Policy{})
		if err1 != nil || err2 != nil || !reflect.DeepEqual(fromRec, fromReply) {
			t.Errorf("%s: from record %+v (%v), from reply %+v (%v)", c.name, fromRec, err1, fromReply, err2)
		}
		// Every token BilledUsage counts is priced exactly once.
		var sum domain.Usage
		for _, s := range r.steps(nil) {
			sum = sum.Add(s.usage)
		}
		if sum != rec.Usage {
			t.Errorf("%s: steps sum to %+v, billed %+v", c.name, sum, rec.Usage)
		}
	}
}

func TestCostJSONIsStable(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	c := golden[len(golden)-1]
	got, err := tab.Price(NewRequest(t, c.reply, false), Policy{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"price_version":"` + tab.Version + `","input":10500000,"output":8750000,"cache_write_5m":0,"cache_write_1h":0,` +
		`"cache_read":0,"web_search":0,"web_fetch":0,"total":19250000,"parts":[` +
		`{"type":"compaction","model":"claude-opus-5","priced_as":"claude-opus-5","input":10000000,"output":7500000,` +
		`"cache_write_5m":0,"cache_write_1h":0,"cache_read":0,"web_search":0,"web_fetch":0,"total":17500000},` +
		`{"type":"message","model":"claude-opus-5","priced_as":"claude-opus-5","input":500000,"output":1250000,` +
		`"cache_write_5m":0,"cache_write_1h":0,"cache_read":0,"web_search":0,"web_fetch":0,"total":1750000}]}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	var back Cost
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, got) {
		t.Fatalf("read back %+v, %v", back, err)
	}
}

// extreme is a table with prices at the edges the package promises to keep
// exact: $1000/MTok and the largest multipliers.
const extreme = `{"version":"x","models":[
 {"id":"dear","rates":{"input":"1000","output":"1000","cache_write_5m":"1000","cache_write_1h":"1000","cache_read":"1000"},
  "fast":"1000","geo":{"us":"1000"},"web_search_per_1000":"1000000"},
 {"id":"one","rates":{"input":"1","output":"1","cache_write_5m":"1","cache_write_1h":"1","cache_read":"1"}},
 {"id":"odd","rates":{"input":"0.000000001","output":"999.999999999","cache_write_5m":"0","cache_write_1h":"0","cache_read":"0"},
  "batch":"0.333333"}]}`

func TestPriceExactAtTheEdges(t *testing.T) {
	t.Parallel()
	tab := MustParse(t, extreme)
	price := func(r Request) (Cost, error) { return tab.Price(r, Policy{}) }

	// 2³¹ tokens at $1000/MTok: 2,147,483,648 × 10¹² / 10⁶ = 2,147,483,648,000,000 exactly.
	c, err := price(Request{Model: "dear", Usage: domain.Usage{InputTokens: 1 << 31}})
	if err != nil || c.Input != 2_147_483_648_000_000 {
		t.Fatalf("2^31 tokens: %d, %v", c.Input, err)
	}
	// The same with every class at 2³¹ and fast mode: 5 × 1000 × that still fits.
	u := domain.Usage{InputTokens: 1 << 31, OutputTokens: 1 << 31, CacheCreationInputTokens: 1 << 31, CacheReadInputTokens: 1 << 31}
	c, err = price(Request{Model: "dear", Usage: u, Speed: "fast"})
	if err != nil || c.Total != 4*1000*2_147_483_648_000_000 {
		t.Fatalf("fast: %d, %v", c.Total, err)
	}
	// ...but not with US-only on top: 4 × 10⁶ × 2.1×10¹⁵ passes int64.
	if _, err := price(Request{Model: "dear", Usage: u, Speed: "fast", InferenceGeo: "us"}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("fast+geo: want ErrOutOfRange, got %v", err)
	}
	// A class that alone passes int64.
	if _, err := price(Request{Model: "one", Usage: domain.Usage{InputTokens: math.MaxInt64}}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("max tokens: want ErrOutOfRange, got %v", err)
	}
	// Two classes that fit alone but not together: 9×10¹⁵ tokens × 1,000 nanodollars each.
	c, err = price(Request{Model: "one", Usage: domain.Usage{InputTokens: 9e15}})
	if err != nil || c.Total != 9e18 {
		t.Fatalf("9e15 tokens: %d, %v", c.Total, err)
	}
	if _, err := price(Request{Model: "one", Usage: domain.Usage{InputTokens: 9e15, OutputTokens: 9e15}}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("sum: want ErrOutOfRange, got %v", err)
	}
	// Server-tool fees past int64.
	if _, err := price(Request{Model: "dear", ServerTools: domain.ServerToolUse{WebSearchRequests: math.MaxInt64}}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("tools: want ErrOutOfRange, got %v", err)
	}
	// Negative counts are refused, not priced as credits.
	for _, r := range []Request{
		{Model: "one", Usage: domain.Usage{OutputTokens: -1}},
		{Model: "one", Usage: domain.Usage{CacheCreation1hTokens: -1}},
		{Model: "unknown", Usage: domain.Usage{InputTokens: -1}},
		{Model: "one", ServerTools: domain.ServerToolUse{WebFetchRequests: -1}},
	} {
		if _, err := price(r); !errors.Is(err, ErrOutOfRange) || domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: want ErrOutOfRange, got %v", r, err)
		}
	}
	// Rounding: 1 token × $0.000000001/MTok is 10⁻⁶ nanodollar: 0. 3 tokens
	// × $999.999999999 × 0.333333 = 999,998.999999… nanodollars -> 999,999.
	c, err = price(Request{Model: "odd", Usage: domain.Usage{InputTokens: 1, OutputTokens: 3}, Batch: true})
	if err != nil || c.Input != 0 || c.Output != 999_999 {
		t.Fatalf("odd: %+v, %v", c, err)
	}
}

func TestUpperBound(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	entry := func(id string) *Entry {
		m, ok := tab.Lookup(id)
		if !ok {
			t.Fatalf("no %s", id)
		}
		return m.Entry
	}
	for _, c := range []struct {
		model   string
		in, out int64
		mods    Modifiers
		want    Nanodollars
	}{
		// Over the threshold the long tier could apply: its 1h write ($12) and output ($22.50).
		// 250,000 × $12 + 4,000 × $22.50 = $3.00 + $0.09 = 3,090,000,000, + 7 slack
		{"claude-sonnet-4-5", 250_000, 4_000, Modifiers{}, 3_090_000_007},
		// Under it only the standard tier: 150,000 × $6 + 4,000 × $15 = 900,000,000 + 60,000,000
		{"claude-sonnet-4-5", 150_000, 4_000, Modifiers{}, 960_000_007},
		// Fast, batch and an unknown geo (a workspace default may pick "us": 1.1):
		// (10,000 × $8 + 1,000 × $20) × 2 × 0.5 × 1.1 = (80,000,000 + 20,000,000) × 1.1 = 110,000,000
		// plus 5 searches × $0.01 = 50,000,000
		{"claude-opus-5-5", 10_000, 1_000, Modifiers{Batch: true, Fast: true, WebSearches: 5}, 160_000_007},
		// A named geo is used as named: global is 1.
		{"claude-opus-5-5", 10_000, 1_000, Modifiers{InferenceGeo: "global"}, 100_000_007},
		// Fast asked of a model without it costs the standard price.
		{"claude-haiku-4-5", 1_000, 1_000, Modifiers{Fast: true}, 2_000_000 + 5_000_000 + 7},
		{"claude-haiku-4-5", 0, 0, Modifiers{}, 7},
	} {
		got, err := UpperBound(entry(c.model), c.in, c.out, c.mods)
		if err != nil || got != c.want {
			t.Errorf("UpperBound(%s, %d, %d, %+v) = %d, %v; want %d", c.model, c.in, c.out, c.mods, got, err, c.want)
		}
	}
	if _, err := UpperBound(entry("claude-opus-5-5"), math.MaxInt64, 0, Modifiers{}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("huge bound: %v", err)
	}
	if _, err := UpperBound(entry("claude-opus-5-5"), -1, 0, Modifiers{}); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("negative bound: %v", err)
	}
}

// TestUpperBoundHolds prices random usage within a bound, on every seed
// entry and modifier mix, and checks the price never passes the bound.
func TestUpperBoundHolds(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range tab.Models {
		e := &tab.Models[i]
		for range 100 {
			in, out := rng.Int64N(400_000), rng.Int64N(130_000)
			if rng.IntN(4) == 0 {
				in = rng.Int64N(30) // small counts stress the rounding
			}
			geos := []string{"", "global", "us"}
			mods := Modifiers{Batch: rng.IntN(2) == 0, Fast: rng.IntN(2) == 0, InferenceGeo: geos[rng.IntN(3)],
				WebSearches: rng.Int64N(4), WebFetches: rng.Int64N(4)}
			bound, err := UpperBound(e, in, out, mods)
			if err != nil {
				t.Fatal(err)
			}
			// Split the prompt at random across the four input-side classes.
			a, b, c := rng.Int64N(in+1), rng.Int64N(in+1), rng.Int64N(in+1)
			cuts := []int64{a, b, c}
			if cuts[0] > cuts[1] {
				cuts[0], cuts[1] = cuts[1], cuts[0]
			}
			if cuts[1] > cuts[2] {
				cuts[1], cuts[2] = cuts[2], cuts[1]
			}
			if cuts[0] > cuts[1] {
				cuts[0], cuts[1] = cuts[1], cuts[0]
			}
			w5, w1 := cuts[1]-cuts[0], cuts[2]-cuts[1]
			u := domain.Usage{InputTokens: cuts[0], CacheCreationInputTokens: w5 + w1, CacheCreation5mTokens: w5,
				CacheCreation1hTokens: w1, CacheReadInputTokens: in - cuts[2], OutputTokens: rng.Int64N(out + 1)}
			geo := mods.InferenceGeo
			if geo == "" {
				geo = "us"
			}
			speed := ""
			if mods.Fast {
				speed = "fast"
			}
			r := Request{Model: e.ID, Usage: u, Batch: mods.Batch, Speed: speed, InferenceGeo: geo,
				ServerTools: domain.ServerToolUse{WebSearchRequests: rng.Int64N(mods.WebSearches + 1), WebFetchRequests: rng.Int64N(mods.WebFetches + 1)}}
			c2, err := tab.Price(r, Policy{})
			if err != nil {
				t.Fatal(err)
			}
			if c2.Total > bound {
				t.Fatalf("%s: %+v costs %d, over the bound %d of (%d, %d, %+v)", e.ID, r, c2.Total, bound, in, out, mods)
			}
		}
	}
}

func TestPriceUnpricedToolsAndModels(t *testing.T) {
	t.Parallel()
	tab := MustParse(t, extreme)
	// "one" has no tool fees: the calls cost nothing here, and the record says so.
	c, err := tab.Price(Request{Model: "one", ServerTools: domain.ServerToolUse{WebSearchRequests: 2, WebFetchRequests: 1}}, Policy{})
	if err != nil || c.Total != 0 || !reflect.DeepEqual(c.UnpricedModifiers, []string{"web_fetch@one", "web_search@one"}) {
		t.Fatalf("%+v, %v", c, err)
	}
	// Two unpriced models are both named, in order.
	r := Request{Model: "zeta", Iterations: []domain.Iteration{{Type: "advisor_message", Model: "alpha"}, {Type: "message"}}}
	c, err = tab.Price(r, Policy{})
	if !errors.Is(err, ErrUnpriced) || !reflect.DeepEqual(c.Unpriced, []string{"alpha", "zeta"}) ||
		!strings.Contains(err.Error(), `["alpha" "zeta"]`) {
		t.Fatalf("%+v, %v", c, err)
	}
}

func BenchmarkPrice(b *testing.B) {
	tab := MustSeed(b)
	r := NewRequest(b, golden[len(golden)-2].reply, false) // the advisor reply: three steps
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tab.Price(r, Policy{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTokenCostFastAgreesWithBig: the 128-bit path gives exactly the
// math/big quotient, rounding included, or declines.
func TestTokenCostFastAgreesWithBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	mults := []Multiplier{One, One / 2, 1_100_000, 2 * One, 6 * One, 0, 1, MaxMultiplier}
	for i := range 200_000 {
		tokens := rng.Int64N(1 << 31)
		if i%3 == 0 {
			tokens = rng.Int64N(5000)
		}
		rate := USDPerMTok(rng.Int64N(int64(MaxRate) + 1))
		if i%2 == 0 {
			rate = USDPerMTok(rng.Int64N(100 * NanosPerUSD))
		}
		f := [3]Multiplier{mults[rng.IntN(len(mults))], mults[rng.IntN(len(mults))], mults[rng.IntN(len(mults))]}
		fast, ok := tokenCostFast(tokens, rate, f)
		num := mulBig(tokens, int64(rate))
		den := new(big.Int).Set(perMTok)
		for _, m := range f {
			num.Mul(num, big.NewInt(int64(m)))
			den.Mul(den, oneBig)
		}
		want, err := roundDiv(num, den, "x")
		if !ok {
			continue
		}
		if err != nil || fast != want {
			t.Fatalf("tokens %d rate %d f %v: fast %d, big %d (%v)", tokens, rate, f, fast, want, err)
		}
	}
	// The common cases take the fast path: up to two modifiers (three
	// would need a 10^24 denominator, past 64 bits).
	for _, f := range [][3]Multiplier{{One, One, One}, {One / 2, One, 1_100_000}, {One, 6 * One, 1_100_000}} {
		if _, ok := tokenCostFast(200_000, 15*NanosPerUSD, f); !ok {
			t.Fatalf("multipliers %v fell back to math/big", f)
		}
	}
}

// TestBoundFastAgreesWithBig: the bound's 128-bit path gives exactly the
// math/big ceiling, or declines.
func TestBoundFastAgreesWithBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	mults := []Multiplier{One, One / 2, 1_100_000, 6 * One, 0, 1, MaxMultiplier}
	fast := 0
	for range 200_000 {
		in, out := rng.Int64N(1<<31), rng.Int64N(1<<31)
		ir, or := USDPerMTok(rng.Int64N(int64(MaxRate)+1)), USDPerMTok(rng.Int64N(200*NanosPerUSD))
		f := [3]Multiplier{mults[rng.IntN(len(mults))], mults[rng.IntN(len(mults))], mults[rng.IntN(len(mults))]}
		got, ok := boundFast(in, ir, out, or, f)
		if !ok {
			continue
		}
		fast++
		num := new(big.Int).Add(mulBig(in, int64(ir)), mulBig(out, int64(or)))
		den := new(big.Int).Set(perMTok)
		for _, x := range f {
			num.Mul(num, big.NewInt(int64(x)))
			den.Mul(den, oneBig)
		}
		want, err := ceilDiv(num, den, "bound")
		if err != nil || got != want {
			t.Fatalf("in %d×%d out %d×%d f %v: fast %d, big %d (%v)", in, ir, out, or, f, got, want, err)
		}
	}
	if fast < 50_000 {
		t.Fatalf("only %d of 200,000 bounds took the fast path", fast)
	}
}

// What a record's cache reads saved, as PriceRecord stores it: each step
// at its own model's card and the request's modifiers, summed; nothing for
// a step the table cannot price.
func TestPriceRecordCacheSaved(t *testing.T) {
	t.Parallel()
	tab := MustSeed(t)
	rec := domain.UsageRecord{
		Model: "claude-sonnet-5-5",
		Iterations: []domain.Iteration{
			{Type: "advisor_message", Model: "claude-opus-5-5", Usage: domain.Usage{InputTokens: 100, CacheReadInputTokens: 10_000}},
			{Type: "advisor_message", Model: "claude-unknown-1", Usage: domain.Usage{CacheReadInputTokens: 10_000}},
			{Type: "message", Usage: domain.Usage{InputTokens: 100, CacheReadInputTokens: 20_000}},
		},
		InferenceGeo: "us",
	}
	rec.Usage = domain.BilledUsage(domain.Usage{}, rec.Iterations)
	rc, unpriced, err := tab.PriceRecord(&rec, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	// Opus 5.5, US-only (× 1.1): 10,000 × $4 × 1.1 − 10,000 × $0.20 × 1.1
	//                          = 44,000,000 − 2,200,000 = 41,800,000
	// unknown model:            nothing (unpriced)
	// Sonnet 5.5, US-only:      20,000 × $2 × 1.1 − 20,000 × $0.10 × 1.1
	//                          = 44,000,000 − 2,200,000 = 41,800,000
	// saved                                               83,600,000
	if rc.CacheSaved != 83_600_000 {
		t.Errorf("cache saved = %d, want 83,600,000", rc.CacheSaved)
	}
	if rc.CacheRead != 4_400_000 || !rc.Unpriced || len(unpriced) != 1 {
		t.Errorf("cache read %d (want 4,400,000), unpriced %v %v", rc.CacheRead, rc.Unpriced, unpriced)
	}
	if s, _ := rc.Sum(); s != rc.Total {
		t.Errorf("the classes sum to %d, the total is %d: cache saved must not be in it", s, rc.Total)
	}
}
