package anthropic

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

// realStream is a stream as Anthropic sends it (prompt caching on, 1h TTL
// split reported), with a text block, a tool_use block and a thinking block.
const realStream = `event: message_start
data: {"type":"message_start","message":{"id":"msg_01XFDUDYJgAACzvnptvVoYEL","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":472,"cache_creation_input_tokens":1200,"cache_read_input_tokens":3000,"cache_creation":{"ephemeral_5m_input_tokens":200,"ephemeral_1h_input_tokens":1000},"output_tokens":2,"service_tier":"standard"}}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think about the weather."}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"! I'll check \"San Francisco\"\n"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: content_block_start
data: {"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"location\": \"San Fra"}}

event: content_block_delta
data: {"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"ncisco, CA\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":2}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

`

var realUsage = domain.Usage{InputTokens: 472, OutputTokens: 89, CacheCreationInputTokens: 1200,
	CacheReadInputTokens: 3000, CacheCreation5mTokens: 200, CacheCreation1hTokens: 1000}

func feedAll(chunks ...[]byte) StreamResult {
	var p StreamParser
	for _, c := range chunks {
		p.Feed(c)
	}
	return p.Result()
}

func TestStreamParserWholeStream(t *testing.T) {
	r := feedAll([]byte(realStream))
	if r.Usage != realUsage {
		t.Fatalf("usage = %+v, want %+v", r.Usage, realUsage)
	}
	if r.Model != "claude-sonnet-4-5-20250929" || !r.Complete || !r.SawMessageStart || !r.SawMessageStop || r.OutputEstimated {
		t.Fatalf("result = %+v", r)
	}
	if r.Events != 17 {
		t.Fatalf("events = %d, want 17", r.Events)
	}
}

func TestStreamParserSplitAtEveryByte(t *testing.T) {
	for _, eol := range []string{"\n", "\r\n", "\r"} {
		s := []byte(strings.ReplaceAll(realStream, "\n", eol))
		// Every single split point.
		for i := 0; i <= len(s); i++ {
			r := feedAll(s[:i], s[i:])
			if r.Usage != realUsage || !r.Complete {
				t.Fatalf("eol %q split at %d: usage %+v", eol, i, r.Usage)
			}
		}
		// One byte at a time.
		chunks := make([][]byte, len(s))
		for i := range s {
			chunks[i] = s[i : i+1]
		}
		if r := feedAll(chunks...); r.Usage != realUsage || r.Events != 17 {
			t.Fatalf("eol %q byte-by-byte: %+v", eol, r)
		}
		// Random chunkings.
		rng := rand.New(rand.NewPCG(1, 2))
		for range 200 {
			var cs [][]byte
			for rest := s; len(rest) > 0; {
				n := min(len(rest), 1+rng.IntN(64))
				cs = append(cs, rest[:n])
				rest = rest[n:]
			}
			if r := feedAll(cs...); r.Usage != realUsage || r.Events != 17 {
				t.Fatalf("eol %q random chunks: %+v", eol, r)
			}
		}
	}
}

func TestStreamParserDeltaRepeatsCountsLastWins(t *testing.T) {
	s := `event: message_start
data: {"type":"message_start","message":{"model":"claude-opus-4-1","usage":{"input_tokens":10,"cache_read_input_tokens":5,"output_tokens":1}}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"input_tokens":12,"cache_creation_input_tokens":7,"cache_read_input_tokens":null,"output_tokens":40}}

event: message_delta
data: {"type":"message_delta","delta":{},"usage":{"output_tokens":42}}

`
	r := feedAll([]byte(s))
	want := domain.Usage{InputTokens: 12, OutputTokens: 42, CacheCreationInputTokens: 7, CacheReadInputTokens: 5}
	if r.Usage != want {
		t.Fatalf("usage %+v, want %+v", r.Usage, want)
	}
}

func TestStreamParserMultiLineDataCommentsNoEventName(t *testing.T) {
	s := ": this is a comment\n" +
		"data: {\"type\":\"message_start\",\n" +
		"data: \"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n" +
		"event: something_new\ndata: {\"whatever\":1}\n\n" +
		"id: 7\nretry: 100\n\n" +
		"event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
	r := feedAll([]byte(s))
	if r.Usage.InputTokens != 3 || r.ErrorType != "overloaded_error" || r.Complete {
		t.Fatalf("result %+v", r)
	}
}

func TestStreamParserInterruptedEstimatesOutput(t *testing.T) {
	cut := strings.Index(realStream, "event: message_delta")
	r := feedAll([]byte(realStream[:cut]))
	if r.Complete || !r.OutputEstimated || !r.SawMessageStart {
		t.Fatalf("result %+v", r)
	}
	if r.Usage.InputTokens != 472 || r.Usage.CacheReadInputTokens != 3000 {
		t.Fatalf("input counts lost: %+v", r.Usage)
	}
	// "Let me think about the weather." + "Hello! I'll check ..." + the JSON.
	if r.Usage.OutputTokens < 15 || r.Usage.OutputTokens > 40 {
		t.Fatalf("estimated output %d out of range", r.Usage.OutputTokens)
	}
}

func TestStreamParserBoundsLongLines(t *testing.T) {
	var p StreamParser
	junk := bytes.Repeat([]byte("x"), 64<<10)
	for range 40 { // 2.5 MB with no newline
		p.Feed(junk)
	}
	p.Feed([]byte("\n\n"))
	p.Feed([]byte(realStream))
	if r := p.Result(); r.Usage != realUsage {
		t.Fatalf("after a long line: %+v", r.Usage)
	}
	if cap(p.sse.line) > 2*maxLine {
		t.Fatalf("line buffer grew to %d", cap(p.sse.line))
	}
}

const realJSON = `{"id":"msg_013Zva2CMHLNnXjNJJKqJ2EF","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"text","text":"Hi! My name is Claude."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":2095,"cache_creation_input_tokens":2051,"cache_read_input_tokens":0,"cache_creation":{"ephemeral_5m_input_tokens":51,"ephemeral_1h_input_tokens":2000},"output_tokens":503,"service_tier":"standard"}}`

func TestUsageFromJSON(t *testing.T) {
	r := UsageFromJSON([]byte(realJSON))
	want := domain.Usage{InputTokens: 2095, OutputTokens: 503, CacheCreationInputTokens: 2051,
		CacheCreation5mTokens: 51, CacheCreation1hTokens: 2000}
	if !r.HasUsage || r.Usage != want || r.Model != "claude-sonnet-4-5-20250929" || r.ErrorType != "" {
		t.Fatalf("result %+v", r)
	}
	e := UsageFromJSON([]byte(`{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"},"request_id":"req_1"}`))
	if e.ErrorType != "invalid_request_error" || e.HasUsage {
		t.Fatalf("error body: %+v", e)
	}
	if c := UsageFromJSON([]byte(`{"input_tokens":14}`)); c.HasUsage {
		t.Fatalf("count_tokens body has no usage: %+v", c)
	}
}

func TestEstimateInputTokens(t *testing.T) {
	body := []byte(`{"model":"m","max_tokens":10,
	  "system":[{"type":"text","text":"You are a helpful assistant.","cache_control":{"type":"ephemeral"}}],
	  "tools":[{"name":"get_weather","description":"Get the current weather in a given location","input_schema":{"type":"object","properties":{"location":{"type":"string","description":"The city and state"}}}}],
	  "messages":[{"role":"user","content":"What is the weather like in San Francisco today?"},
	              {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"location":"San Francisco, CA"}}]},
	              {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"15 degrees"},
	                                        {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo` + strings.Repeat("A", 50000) + `"}}]}]}`)
	est, err := NewEstimator(EstimatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	n := est.estimateNow(body)
	// ~100 text tokens with the tool schema as JSON, framing, the tool-use
	// system prompt and one image.
	if n < DefaultImageTokens+toolUseSystemTokens+100 || n > DefaultImageTokens+toolUseSystemTokens+600 {
		t.Fatalf("estimate %d out of range", n)
	}
	big := []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat("word ", 200_000) + `"}]}`)
	if n := est.estimateNow(big); n < 200_000 || n > int64(len(big)) {
		t.Fatalf("big estimate %d out of range", n)
	}
}

func BenchmarkStreamParser(b *testing.B) {
	s := []byte(realStream)
	b.ReportAllocs()
	b.SetBytes(int64(len(s)))
	var p StreamParser
	for b.Loop() {
		p.Reset()
		for c := s; len(c) > 0; {
			n := min(len(c), 512)
			p.Feed(c[:n])
			c = c[n:]
		}
	}
}
