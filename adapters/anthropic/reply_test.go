package anthropic

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

// iterJSON is a reply whose request ran an advisor and a compaction step.
const iterJSON = `{"id":"msg_1","type":"message","role":"assistant","model":"claude-opus-4-7",
 "content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{"usage":{"input_tokens":999999},"model":"fake","type":"error","error":{"type":"x"}}},
            {"type":"text","text":"done \"usage\": {\"input_tokens\": 5}"}],
 "usage":{"input_tokens":100,"output_tokens":50,"cache_read_input_tokens":7,
   "server_tool_use":{"web_search_requests":3,"web_fetch_requests":1},
   "service_tier":"priority","speed":"fast","inference_geo":"us",
   "iterations":[
     {"type":"compaction","input_tokens":2000,"output_tokens":300},
     {"type":"advisor_message","model":"claude-opus-4-8","input_tokens":400,"output_tokens":60,"cache_creation_input_tokens":10,
      "cache_creation":{"ephemeral_5m_input_tokens":10}},
     {"type":"message","input_tokens":100,"output_tokens":50,"cache_read_input_tokens":7}]}}`

var iterWant = JSONResult{
	Usage: domain.Usage{InputTokens: 100, OutputTokens: 50, CacheReadInputTokens: 7},
	Iterations: []domain.Iteration{
		{Type: "compaction", Usage: domain.Usage{InputTokens: 2000, OutputTokens: 300}},
		{Type: "advisor_message", Model: "claude-opus-4-8", Usage: domain.Usage{InputTokens: 400, OutputTokens: 60,
			CacheCreationInputTokens: 10, CacheCreation5mTokens: 10}},
		{Type: "message", Usage: domain.Usage{InputTokens: 100, OutputTokens: 50, CacheReadInputTokens: 7}},
	},
	ServerTools: domain.ServerToolUse{WebSearchRequests: 3, WebFetchRequests: 1},
	ServiceTier: "priority", Speed: "fast", InferenceGeo: "us",
	Model: "claude-opus-4-7", HasUsage: true,
}

func scanChunks(f Format, body []byte, step func() int) JSONResult {
	s := JSONScanner{Format: f}
	for rest := body; len(rest) > 0; {
		n := min(step(), len(rest))
		s.Feed(rest[:n])
		rest = rest[n:]
	}
	return s.Result()
}

func TestUsageFromJSONExtras(t *testing.T) {
	t.Parallel()
	if r := UsageFromJSON([]byte(iterJSON)); !reflect.DeepEqual(r, iterWant) {
		t.Fatalf("got %+v\nwant %+v", r, iterWant)
	}
	if b := domain.BilledUsage(iterWant.Usage, iterWant.Iterations); b.InputTokens != 2500 || b.OutputTokens != 410 {
		t.Fatalf("billed %+v", b)
	}
}

func TestJSONScannerMatchesWholeBody(t *testing.T) {
	t.Parallel()
	bodies := []string{realJSON, iterJSON,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"input_tokens":14}`,
		` {"usage" : {"input_tokens" : 1} , "usage":{"output_tokens":2}, "model":null, "model":"m", "type":"message"} `,
		`{"\u0075sage":{"input_tokens":3},"mod\u0065l":"m\u00e9"}`,
		`{"a":"\\","usage":{"input_tokens":4},"b":"\"usage\"","c":[{"usage":{"input_tokens":9}}]}`,
		`{"type":"error","error":{"code":"x"}}`,
		`[{"usage":{"input_tokens":1}}]`,
		`{}`,
	}
	rng := rand.New(rand.NewPCG(3, 3))
	for _, b := range bodies {
		want := UsageFromJSON([]byte(b))
		for _, step := range []func() int{func() int { return 1 }, func() int { return 1 << 20 }, func() int { return 1 + rng.IntN(7) }} {
			if got := scanChunks(FormatMessages, []byte(b), step); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s\nscanner %+v\nwhole   %+v", b, got, want)
			}
		}
	}
	// A nested "usage" is never taken, however the body is split.
	r := scanChunks(FormatMessages, []byte(iterJSON), func() int { return 1 })
	if r.Usage.InputTokens != 100 || r.Model != "claude-opus-4-7" || r.ErrorType != "" {
		t.Fatalf("took a nested value: %+v", r)
	}
}

func TestJSONScannerCapsValues(t *testing.T) {
	t.Parallel()
	huge := `{"model":"m","usage":{"input_tokens":5,"pad":"` + strings.Repeat("x", maxCapture) + `"},"content":"` +
		strings.Repeat("y", 5<<20) + `","type":"message"}`
	var s JSONScanner
	for rest := []byte(huge); len(rest) > 0; {
		n := min(4096, len(rest))
		s.Feed(rest[:n])
		rest = rest[n:]
	}
	r := s.Result()
	if r.HasUsage || r.Model != "m" {
		t.Fatalf("a capped usage was read: %+v", r)
	}
	if cap(s.capBuf) > 2*maxCapture {
		t.Fatalf("capture buffer grew to %d", cap(s.capBuf))
	}
}

func TestChatReplyUsage(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"claude-sonnet-4-5","choices":[{"index":0,
	  "message":{"role":"assistant","content":"{\"usage\":1}"},"finish_reason":"stop"}],
	  "usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,"prompt_tokens_details":{"cached_tokens":100}}}`)
	want := JSONResult{Usage: domain.Usage{InputTokens: 20, OutputTokens: 30, CacheReadInputTokens: 100},
		Model: "claude-sonnet-4-5", HasUsage: true}
	if r := UsageFromChatJSON(body); !reflect.DeepEqual(r, want) {
		t.Fatalf("whole %+v", r)
	}
	if r := scanChunks(FormatChat, body, func() int { return 3 }); !reflect.DeepEqual(r, want) {
		t.Fatalf("scanner %+v", r)
	}
	if r := UsageFromChatJSON([]byte(`{"usage":{"prompt_tokens":12,"completion_tokens":3}}`)); r.Usage != (domain.Usage{InputTokens: 12, OutputTokens: 3}) {
		t.Fatalf("uncached %+v", r.Usage)
	}
	// Nothing is dropped when cached exceeds prompt.
	if r := UsageFromChatJSON([]byte(`{"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}}`)); r.Usage.Total() != 9 {
		t.Fatalf("odd counts %+v", r.Usage)
	}
	e := UsageFromChatJSON([]byte(`{"error":{"message":"bad","type":"invalid_request_error"}}`))
	if e.ErrorType != "invalid_request_error" || e.HasUsage {
		t.Fatalf("error %+v", e)
	}
}

func TestStreamParserExtrasLastWins(t *testing.T) {
	t.Parallel()
	s := `event: message_start
data: {"type":"message_start","message":{"model":"claude-opus-4-7","usage":{"input_tokens":10,"output_tokens":1,"service_tier":"standard","inference_geo":"global","speed":"standard"}}}

event: message_delta
data: {"type":"message_delta","delta":{},"usage":{"output_tokens":5,"server_tool_use":{"web_search_requests":1},"iterations":[{"type":"message","input_tokens":10,"output_tokens":5}]}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":9,"speed":"fast","server_tool_use":{"web_fetch_requests":2},"iterations":[{"type":"compaction","input_tokens":70,"output_tokens":7},{"type":"message","input_tokens":10,"output_tokens":9}]}}

`
	r := feedAll([]byte(s))
	if r.Usage != (domain.Usage{InputTokens: 10, OutputTokens: 9}) || r.ServiceTier != "standard" || r.InferenceGeo != "global" ||
		r.Speed != "fast" || r.ServerTools != (domain.ServerToolUse{WebSearchRequests: 1, WebFetchRequests: 2}) ||
		len(r.Iterations) != 2 || r.Iterations[0].Type != "compaction" || r.Iterations[1].Usage.OutputTokens != 9 {
		t.Fatalf("result %+v", r)
	}
}

func TestStreamParserEstimateNoSampling(t *testing.T) {
	t.Parallel()
	// The old estimate tokenised a sample and extrapolated its ratio: a
	// whitespace head made a dense tail look cheap.
	var p StreamParser
	p.Feed([]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"))
	head := strings.Repeat(" ", 3000)
	tail := strings.Repeat("词", 30_000)
	for _, part := range []string{head, tail} {
		for len(part) > 0 {
			n := min(len(part), 999)
			p.Feed([]byte(fmt.Sprintf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", part[:n])))
			part = part[n:]
		}
	}
	r := p.Result()
	if ref := CountTokensExact(head + tail); !r.OutputEstimated || r.Usage.OutputTokens < ref {
		t.Fatalf("estimate %d below cl100k %d", r.Usage.OutputTokens, ref)
	}
	if len(p.text.kept) > textBudget {
		t.Fatalf("kept %d bytes", len(p.text.kept))
	}
}

const chatStream = `data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"content":"Hello there, "}}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","type":"function","function":{"name":"get_weather","arguments":"{\"city\":"}}]}}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":"tool_calls"}]}

data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[],"usage":{"prompt_tokens":40,"completion_tokens":12,"total_tokens":52}}

data: [DONE]

`

func TestChatStreamParser(t *testing.T) {
	t.Parallel()
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		s := []byte(strings.ReplaceAll(chatStream, "\n", eol))
		for i := 0; i <= len(s); i += 7 {
			var p ChatStreamParser
			p.Feed(s[:i])
			p.Feed(s[i:])
			r := p.Result()
			if r.Usage != (domain.Usage{InputTokens: 40, OutputTokens: 12}) || !r.HasUsage || !r.SawDone ||
				r.Model != "claude-sonnet-4-5" || r.OutputEstimated || r.Events != 6 {
				t.Fatalf("eol %q split %d: %+v", eol, i, r)
			}
		}
	}
	// Cut before the usage chunk: the output is estimated from the text.
	cut := strings.Index(chatStream, `data: {"id":"c1","object":"chat.completion.chunk","model":"claude-sonnet-4-5","choices":[],"usage"`)
	var p ChatStreamParser
	p.Feed([]byte(chatStream[:cut]))
	r := p.Result()
	want := CountTokensExact("Hello there, " + "get_weather" + `{"city":` + `"Paris"}`)
	if r.HasUsage || !r.OutputEstimated || r.Usage.OutputTokens < want || r.Usage.OutputTokens > 3*want {
		t.Fatalf("estimate %+v (cl100k %d)", r, want)
	}
	var e ChatStreamParser
	e.Feed([]byte(`data: {"error":{"type":"overloaded_error","message":"Overloaded"}}` + "\n\n"))
	if e.Result().ErrorType != "overloaded_error" {
		t.Fatalf("error %+v", e.Result())
	}
}

func TestScanBatchResults(t *testing.T) {
	t.Parallel()
	in := `{"custom_id":"a","result":{"type":"succeeded","message":{"id":"m","type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"hi"}],"usage":{"input_tokens":10,"output_tokens":2,"service_tier":"batch","server_tool_use":{"web_search_requests":2}}}}}
{"custom_id":"b","result":{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}}}` + "\r\n\n" +
		`{"custom_id":"c\u0031","result":{"type":"expired"}}
`
	var got []BatchResult
	if err := ScanBatchResults(strings.NewReader(in), func(r BatchResult) error { got = append(got, r); return nil }); err != nil {
		t.Fatal(err)
	}
	want := []BatchResult{
		{CustomID: "a", Type: "succeeded", Model: "claude-haiku-4-5", Usage: domain.Usage{InputTokens: 10, OutputTokens: 2},
			ServiceTier: "batch", ServerTools: domain.ServerToolUse{WebSearchRequests: 2}},
		{CustomID: "b", Type: "errored"},
		{CustomID: "c1", Type: "expired"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	stop := errors.New("stop")
	if err := ScanBatchResults(strings.NewReader(in), func(BatchResult) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("fn's error: %v", err)
	}
	for _, bad := range []string{`{"custom_id":"a","result":{"type":"succeeded"}`, `{"result":{"type":"succeeded"}}`, `{"custom_id":"a"}`, `[1]`} {
		if err := ScanBatchResults(strings.NewReader(bad+"\n"), func(BatchResult) error { return nil }); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Fatalf("%s: %v", bad, err)
		}
	}
}

func TestScanBatchResultsLineBound(t *testing.T) {
	t.Parallel()
	// A line longer than MaxBatchResultLine is an error, read with bounded memory.
	long := io.MultiReader(strings.NewReader(`{"custom_id":"a","result":{"type":"succeeded","message":{"content":"`),
		io.LimitReader(repeatReader('x'), MaxBatchResultLine+10), strings.NewReader("\"}}}\n"))
	err := ScanBatchResults(long, func(BatchResult) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("long line: %v", err)
	}
	// Just under the bound is fine.
	pre := `{"custom_id":"a","result":{"type":"succeeded","message":{"usage":{"input_tokens":1},"content":"`
	body := pre + strings.Repeat("x", 1<<20) + "\"}}}\n"
	var n int
	if err := ScanBatchResults(bytes.NewReader([]byte(body)), func(r BatchResult) error { n += int(r.Usage.InputTokens); return nil }); err != nil || n != 1 {
		t.Fatalf("1 MB line: %v %d", err, n)
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

func BenchmarkJSONScanner1KB(b *testing.B) {
	body := []byte(`{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"` +
		strings.Repeat("Claude is a helpful assistant. ", 24) + `"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":2051,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":51,"ephemeral_1h_input_tokens":2000},"output_tokens":503,"service_tier":"standard"}}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	var s JSONScanner
	for b.Loop() {
		s.Reset()
		s.Feed(body)
		_ = s.Result()
	}
	b.ReportMetric(float64(len(body)), "bytes/reply")
}

func BenchmarkJSONScanner5MB(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"id":"msg_1","type":"message","model":"claude-sonnet-4-5","content":[`)
	for sb.Len() < 5<<20 {
		sb.WriteString(`{"type":"text","text":"Some \"quoted\" text with a \\ backslash and more words to skip."},{"type":"tool_use","id":"t","name":"f","input":{"a":[1,2,3],"b":{"c":null}}},`)
	}
	sb.WriteString(`{"type":"text","text":"end"}],"usage":{"input_tokens":1,"output_tokens":2}}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	var s JSONScanner
	for b.Loop() {
		s.Reset()
		for rest := body; len(rest) > 0; {
			n := min(32<<10, len(rest))
			s.Feed(rest[:n])
			rest = rest[n:]
		}
		if s.Result().Usage.OutputTokens != 2 {
			b.Fatal("lost usage")
		}
	}
}
