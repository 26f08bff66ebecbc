package anthropic

import (
	"strings"
	"testing"
)

func FuzzSSEParser(f *testing.F) {
	f.Add([]byte(realStream), uint16(7))
	f.Add([]byte(strings.ReplaceAll(realStream, "\n", "\r\n")), uint16(1))
	f.Add([]byte(strings.ReplaceAll(realStream, "\n", "\r")), uint16(3))
	f.Add([]byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"), uint16(0))
	f.Add([]byte(": comment\ndata: {\"type\":\"message_delta\",\n data: \"usage\":{\"output_tokens\":5}}\n\n"), uint16(11))
	f.Add([]byte("data:{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":\"x\",\"cache_creation\":[]}}}\n\n"), uint16(5))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		// The same stream fed whole and split must give the same result.
		var whole, parts StreamParser
		whole.Feed(stream)
		step := int(split%97) + 1
		for c := stream; len(c) > 0; {
			n := min(step, len(c))
			parts.Feed(c[:n])
			c = c[n:]
		}
		a, b := whole.Result(), parts.Result()
		if a != b {
			t.Fatalf("whole %+v != split(%d) %+v", a, step, b)
		}
		if a.Usage.InputTokens < 0 || a.Usage.OutputTokens < 0 {
			t.Fatalf("negative usage %+v", a.Usage)
		}
	})
}

func FuzzUsageFromJSON(f *testing.F) {
	f.Add([]byte(realJSON))
	f.Add([]byte(`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`))
	f.Add([]byte(`{"input_tokens":14}`))
	f.Add([]byte(`{"usage":{"input_tokens":1e30,"output_tokens":-1,"cache_creation":{"ephemeral_1h_input_tokens":"7"}}}`))
	f.Add([]byte(`{"model":"m","max_tokens":5,"stream":true,"messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}]}`))
	f.Add([]byte(`[{"usage":`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := UsageFromJSON(body)
		if r.Usage.InputTokens < 0 || r.Usage.OutputTokens < 0 {
			t.Fatalf("negative usage %+v", r.Usage)
		}
		// The request-side readers see the same untrusted bytes.
		_ = Sniff(body)
		if n := EstimateInputTokens(body); n < 0 {
			t.Fatalf("negative estimate %d", n)
		}
	})
}
