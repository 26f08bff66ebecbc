package anthropic

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
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
		if !reflect.DeepEqual(a, b) {
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
		_, _ = ParseRequest(body, FormatMessages)
		if n := fuzzEstimator.estimateNow(body); n < 0 {
			t.Fatalf("negative estimate %d", n)
		}
	})
}

// lastWins is what a last-key-wins decoder (Go's encoding/json) reads from
// a request body: the upstream, or any client, must see what ParseRequest saw.
type lastWins struct {
	Model               json.RawMessage `json:"model"`
	Stream              json.RawMessage `json:"stream"`
	MaxTokens           json.RawMessage `json:"max_tokens"`
	MaxCompletionTokens json.RawMessage `json:"max_completion_tokens"`
	MaxTokensToSample   json.RawMessage `json:"max_tokens_to_sample"`
	Speed               json.RawMessage `json:"speed"`
	InferenceGeo        json.RawMessage `json:"inference_geo"`
	Tools               json.RawMessage `json:"tools"`
	Metadata            json.RawMessage `json:"metadata"`
}

// lastWinsTools is what a last-wins decoder reads as the web_search tools
// of a Messages body's tools.
func lastWinsTools(t *testing.T, raw json.RawMessage) domain.ToolBound {
	var b domain.ToolBound
	var elems []json.RawMessage
	if len(raw) == 0 || json.Unmarshal(raw, &elems) != nil {
		return b
	}
	for _, e := range elems {
		var tool struct {
			Type    json.RawMessage `json:"type"`
			MaxUses json.RawMessage `json:"max_uses"`
		}
		var typ string
		if e[0] != '{' || json.Unmarshal(e, &tool) != nil || json.Unmarshal(tool.Type, &typ) != nil ||
			!strings.HasPrefix(typ, "web_search_") {
			continue
		}
		b.Tools++
		if len(tool.MaxUses) == 0 {
			b.Unbounded++
			continue
		}
		n := rawInt(t, tool.MaxUses)
		if n < 0 || n > MaxTokensBound || string(tool.MaxUses) == "null" {
			t.Fatalf("accepted max_uses %s", tool.MaxUses)
		}
		b.MaxUses += n
	}
	return b
}

func rawInt(t *testing.T, raw json.RawMessage) int64 {
	if len(raw) == 0 || string(raw) == "null" {
		return 0
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		t.Fatalf("accepted an output bound %s that is no integer", raw)
	}
	return n
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"hi"}]}`,
		`{"max_tokens":5,"max_tokens":50000}`,
		`{"max_tokens":5,"max\u005ftokens":50000}`,
		`{"max_tokens":5,"MAX_TOKENS":50000}`,
		`{"max_to\u212aens":5}`,
		`{"stream":false,"Stream":true}`,
		`{"max_tokens":1e3}`, `{"max_tokens":"5"}`, `{"max_tokens":-0}`, `{"max_tokens":01}`,
		`{"max_tokens":1073741824}`, `{"max_tokens":1073741825}`,
		`{"model":"m","max_tokens":100,"max_completion_tokens":300,"stream_options":{"include_usage":true}}`,
		`{"stream":null,"max_tokens":null}`,
		`{"max_tokens_to_sample":7,"prompt":"\n\nHuman: hi\n\nAssistant:"}`,
		`{"a":{"max_tokens":1,"max_tokens":2}}`,
		`{"\ud800":1,"\ufffd":2}`, "{\"a\xff\":1,\"a\xfe\":2}",
		`{"speed":"fast","inference_geo":"us","tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5},{"type":"web_search_20260209"}]}`,
		`{"speed":"fast","sp\u0065ed":"standard"}`, `{"Speed":"fast"}`, `{"inference_geo":null}`, `{"speed":"\u00e9\ud83d\ude00"}`,
		`{"tools":[{"type":"custom","type":"web_search_20250305"}]}`, `{"tools":[{"type":"web_search_1","Type":"custom"}]}`,
		`{"tools":[{"type":"web\u005fsearch_2","max_uses":1,"max\u005fuses":9}]}`, `{"tools":[{"max_uses":0,"type":"web_search_x"}]}`,
		`{"tools":[{"type":"web_search_x","max_uses":"5"}]}`, `{"tools":[{"type":"web_search_x","max_u\u017fe\u017f":5}]}`,
		`{"tools":[7,null,[],{"name":"a","name":"b","max_uses":"x"}]}`, `{"tools":null}`, `{"TOOLS":[]}`,
		` {"max_tokens" : 3 } `, `[]`, `{`, `{"x":[[[[[[[[]]]]]]]]}`,
		`{"metadata":{"user_id":"u"}}`, `{"metadata":{"user_id":"a","user\u005fid":"b"}}`, `{"metadata":{"User_Id":"a"}}`,
		`{"metadata":{"user_id":null,"x":[1]}}`, `{"metadata":null}`, `{"metadata":"u"}`, `{"metadata":{"user_id":"\u00e9"}}`,
	} {
		for fm := range 3 {
			f.Add([]byte(s), uint8(fm))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, fm uint8) {
		format := Format(fm % 3)
		r, err := ParseRequest(body, format)
		if err != nil {
			if de := domain.AsError(err); de == nil || de.Kind != domain.KindInvalid || de.Reason != "body" || de.Message == "" {
				t.Fatalf("error %#v is not an invalid-body domain error", err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("accepted a body encoding/json finds invalid: %q", body)
		}
		var lw lastWins
		if err := json.Unmarshal(body, &lw); err != nil {
			t.Fatalf("accepted a body encoding/json cannot decode: %v", err)
		}
		want := Request{Valid: true, Stream: string(lw.Stream) == "true", IncludeUsage: r.IncludeUsage, MaxTokensSet: r.MaxTokensSet}
		named := func(raw json.RawMessage) bool { return len(raw) > 0 && string(raw) != "null" }
		set := false
		switch format {
		case FormatMessages:
			set = named(lw.MaxTokens)
		case FormatChat:
			set = named(lw.MaxTokens) || named(lw.MaxCompletionTokens)
		case FormatComplete:
			set = named(lw.MaxTokensToSample)
		}
		if r.MaxTokensSet != set {
			t.Fatalf("MaxTokensSet %v disagrees with the body %q", r.MaxTokensSet, body)
		}
		switch format {
		case FormatMessages:
			want.MaxTokens = rawInt(t, lw.MaxTokens)
		case FormatChat:
			want.MaxTokens = max(rawInt(t, lw.MaxTokens), rawInt(t, lw.MaxCompletionTokens))
		case FormatComplete:
			want.MaxTokens = rawInt(t, lw.MaxTokensToSample)
		}
		if len(lw.Model) > 0 {
			if err := json.Unmarshal(lw.Model, &want.Model); err != nil {
				t.Fatalf("accepted model %s: %v", lw.Model, err)
			}
		}
		if format == FormatMessages {
			for _, f := range []struct {
				raw json.RawMessage
				dst *string
			}{{lw.Speed, &want.Speed}, {lw.InferenceGeo, &want.InferenceGeo}} {
				if len(f.raw) > 0 && (json.Unmarshal(f.raw, f.dst) != nil || string(f.raw) == "null" || len(*f.dst) > maxLabelLen) {
					t.Fatalf("accepted speed or inference_geo %s", f.raw)
				}
			}
			if string(lw.Tools) == "null" {
				t.Fatalf("accepted tools null")
			}
			want.WebSearch = lastWinsTools(t, lw.Tools)
			if len(lw.Metadata) > 0 {
				var md struct {
					UserID json.RawMessage `json:"user_id"`
				}
				if lw.Metadata[0] != '{' || json.Unmarshal(lw.Metadata, &md) != nil {
					t.Fatalf("accepted metadata %s", lw.Metadata)
				}
				if len(md.UserID) > 0 && string(md.UserID) != "null" &&
					(json.Unmarshal(md.UserID, &want.UserID) != nil || len(want.UserID) > maxUserIDLen) {
					t.Fatalf("accepted metadata.user_id %s", md.UserID)
				}
			}
		}
		if r != want {
			t.Fatalf("ParseRequest read %+v, a last-wins decoder %+v, from %q", r, want, body)
		}
		if r.MaxTokens < 0 || r.MaxTokens > MaxTokensBound {
			t.Fatalf("max tokens %d", r.MaxTokens)
		}
	})
}

func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{
		`{"requests":[{"custom_id":"a","params":{"model":"m","max_tokens":10,"messages":[]}},{"custom_id":"b","params":{"max_tokens":20}}]}`,
		`{"requests":[{"custom_id":"a","params":{"max_tokens":1}},{"custom_id":"\u0061","params":{"max_tokens":1}}]}`,
		`{"requests":[{"custom_id":"a","params":{"max_tokens":1,"max_tokens":2}}]}`,
		`{"requests":[]}`, `{"requests":[1]}`, `{"Requests":[]}`,
		`{"requests":[{"custom_id":"a","params":{"speed":"fast","tools":[{"type":"web_search_20250305","max_uses":3},{"type":"web_search_20260209"}]}}]}`,
		`{"requests":[{"custom_id":"a","params":{"tools":[{"type":"web_search_20250305","max_uses":3,"max\u005fuses":30}]}}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		items, err := ParseBatch(body)
		if err != nil {
			if de := domain.AsError(err); de == nil || de.Kind != domain.KindInvalid {
				t.Fatalf("error %#v", err)
			}
			return
		}
		if len(items) == 0 || !json.Valid(body) {
			t.Fatalf("accepted %q", body)
		}
		ids := map[string]bool{}
		for _, it := range items {
			if ids[it.CustomID] {
				t.Fatalf("custom_id %q twice", it.CustomID)
			}
			ids[it.CustomID] = true
			if !bytes.Contains(body, it.Params) || len(it.Params) == 0 || it.Params[0] != '{' {
				t.Fatalf("params %q", it.Params)
			}
			r, err := ParseRequest(it.Params, FormatMessages)
			if err != nil || r != it.Request {
				t.Fatalf("params %q read %+v alone, %+v in the batch (%v)", it.Params, r, it.Request, err)
			}
		}
	})
}

// textLeaves is the text a last-wins decoder finds in a body's system
// prompt and messages: string contents and the text of text blocks.
func textLeaves(body []byte) []string {
	var v struct {
		System   json.RawMessage `json:"system"`
		Prompt   json.RawMessage `json:"prompt"`
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	var out []string
	content := func(raw json.RawMessage) {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, s)
			return
		}
		var blocks []struct {
			Type string          `json:"type"`
			Text json.RawMessage `json:"text"`
		}
		if json.Unmarshal(raw, &blocks) != nil {
			return
		}
		for _, b := range blocks {
			if b.Type == "text" && json.Unmarshal(b.Text, &s) == nil {
				out = append(out, s)
			}
		}
	}
	content(v.System)
	content(v.Prompt)
	for _, m := range v.Messages {
		content(m.Content)
	}
	return out
}

func FuzzEstimator(f *testing.F) {
	for _, s := range []string{
		`{"system":"be brief","messages":[{"role":"user","content":"hello   world"},{"role":"user","content":[{"type":"text","text":"\n\n \n \t x"}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"image","source":{"type":"base64","data":"AAAA"}},{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBERi0xLjQKPDwgL1R5cGUgL1BhZ2UgPj4="}}]}]}`,
		`{"messages":[{"role":"user","content":[{"type":"tool_result","content":[{"type":"text","text":"r"}]},{"type":"web_fetch_tool_result","content":{"type":"document","source":{"type":"url","url":"u"}}}]}]}`,
		`{"tools":[{"name":"t","input_schema":{"type":"object"}},{"type":"bash_20250124","name":"bash"}],"mcp_servers":[{}],"messages":[]}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}},{"type":"file","file":{"file_data":"data:application/pdf;base64,JVBERi0="}}]}]}`,
		`{"prompt":"\n\nHuman: hi\n\nAssistant:"}`,
		"{\"messages\":[{\"content\":\"\xff\xfe\"}]}", `[]`, `{"messages":[{"content":[[[[`,
	} {
		f.Add([]byte(s))
	}
	e, err := NewEstimator(EstimatorConfig{TokenizeLimit: 4 << 10})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		est, bound := e.estimateNow(body), e.InputBound(body)
		if est < 0 || bound < est {
			t.Fatalf("estimate %d, bound %d", est, bound)
		}
		var ref int64
		for _, s := range textLeaves(body) {
			ref += CountTokensExact(s)
		}
		if est < ref {
			t.Fatalf("estimate %d below the cl100k count %d of the text of %q", est, ref, body)
		}
	})
}

func FuzzJSONScanner(f *testing.F) {
	for _, s := range []string{realJSON, iterJSON,
		`{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`,
		`{"usage":{"prompt_tokens":120,"completion_tokens":30,"prompt_tokens_details":{"cached_tokens":100}},"model":"m"}`,
		`{"\u0075sage":{"input_tokens":3},"usage":{"output_tokens":1},"a":"\\\"","b":{"usage":{"input_tokens":9}}}`,
		`{"error":{"code":"c"},"type":"error"}`,
	} {
		f.Add([]byte(s), uint64(1), false)
		f.Add([]byte(s), uint64(7), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64, chat bool) {
		if len(body) > maxCapture || !json.Valid(body) || kind(body[skipWS(body, 0):]) != '{' {
			return
		}
		want, fm := UsageFromJSON(body), FormatMessages
		if chat {
			want, fm = UsageFromChatJSON(body), FormatChat
		}
		rng := rand.New(rand.NewPCG(seed, seed>>7))
		got := scanChunks(fm, body, func() int { return 1 + rng.IntN(int(seed%64)+1) })
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("scanner %+v, whole body %+v, for %q", got, want, body)
		}
	})
}

func FuzzChatStreamParser(f *testing.F) {
	f.Add([]byte(chatStream), uint16(5))
	f.Add([]byte(strings.ReplaceAll(chatStream, "\n", "\r\n")), uint16(1))
	f.Add([]byte("data: {\"error\":{\"type\":\"x\"}}\n\ndata: [DONE]\n\n"), uint16(3))
	f.Fuzz(func(t *testing.T, stream []byte, split uint16) {
		var whole, parts ChatStreamParser
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
		if a.Usage.InputTokens < 0 || a.Usage.OutputTokens < 0 || a.Usage.CacheReadInputTokens < 0 {
			t.Fatalf("negative usage %+v", a.Usage)
		}
	})
}

func FuzzScanBatchResults(f *testing.F) {
	f.Add([]byte(`{"custom_id":"a","result":{"type":"succeeded","message":{"model":"m","usage":{"input_tokens":1,"iterations":[{"type":"message","input_tokens":1}]}}}}` + "\n" +
		`{"custom_id":"b","result":{"type":"errored"}}`))
	f.Add([]byte("\n\n{\"custom_id\":\"a\"}\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		n := 0
		_ = ScanBatchResults(bytes.NewReader(data), func(r BatchResult) error {
			n++
			if r.Usage.InputTokens < 0 || r.Usage.OutputTokens < 0 {
				t.Fatalf("negative usage %+v", r.Usage)
			}
			return nil
		})
		if n > lines {
			t.Fatalf("%d results from %d lines", n, lines)
		}
	})
}

func FuzzAppendUnescaped(f *testing.F) {
	for _, s := range []string{`plain`, `a\"b\\c\/d\b\f\n\r\t`, `\u00e9\ud83d\ude00`, `\ud83d`, `\ud83d\u0041`, "a\xffb", `\uDFFF\uD800`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q := []byte(`"` + s + `"`)
		var want string
		if !json.Valid(q) || json.Unmarshal(q, &want) != nil {
			return
		}
		got, n := appendUnescaped(nil, []byte(s), -1)
		if string(got) != want || n != len(s) {
			t.Fatalf("%q: got %q, encoding/json %q", s, got, want)
		}
		// A limited unescape is a prefix, at a character boundary.
		lim := len(want) / 2
		part, used := appendUnescaped(nil, []byte(s), lim)
		if len(part) > lim || !strings.HasPrefix(want, string(part)) || used > len(s) {
			t.Fatalf("%q limited to %d: %q (used %d)", s, lim, part, used)
		}
	})
}

func FuzzPDFPages(f *testing.F) {
	f.Add([]byte("%PDF-1.7\n1 0 obj << /Type /Page >> endobj 2 0 obj << /Type /Pages /Count 3 >>"))
	f.Add([]byte("%PDF-1.5\n<< /Type /ObjStm >> << /Type%x\n/Page >> /T#79pe /Type 1 0 R"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, raw := range [][]byte{data, []byte(base64.StdEncoding.EncodeToString(data))} {
			if n, ok := pdfPages(raw); ok && n <= 0 || n < 0 {
				t.Fatalf("pages %d, %v", n, ok)
			}
		}
	})
}

var fuzzEstimator = func() *Estimator {
	e, err := NewEstimator(EstimatorConfig{})
	if err != nil {
		panic(err)
	}
	return e
}()

// jsonDepth is the container nesting of valid JSON, read by encoding/json.
func jsonDepth(b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

// FuzzCheckJSON: checkJSON agrees with encoding/json.Valid, and with
// gjson.Valid (the check it replaced) within the nesting limit.
func FuzzCheckJSON(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, ` {"a" : [1, -0.5e+3, true, false, null, "x\u00e9\"\\\/\b\f\n\r\t"]} `, `"\ud800"`, "\"\xff\xfe\"",
		`01`, `-`, `1.`, `.5`, `1e`, `1e+`, `+1`, `[1,]`, `{"a":1,}`, `{"a"}`, `{"a":}`, `{,}`, `[,1]`, `{"a":1 "b":2}`,
		`tru`, `nul`, `truex`, `[1 2]`, `"a` + "\x1f" + `"`, `"\x"`, `"\u12G4"`, `"\u12"`, `{"a":1}}`, `[[]]]`, `[[]`,
		strings.Repeat("[", 1000) + strings.Repeat("]", 1000), strings.Repeat("[", 1001) + strings.Repeat("]", 1001),
		`{"a":` + strings.Repeat(`{"b":`, 999) + `1` + strings.Repeat("}", 1000), "", " ", "\t\n\r 7 \n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, want := checkJSON(b), json.Valid(b)
		switch got {
		case jsonValid:
			if !want || jsonDepth(b) > maxNesting || !gjson.Valid(string(b)) {
				t.Fatalf("checkJSON accepts %q; encoding/json.Valid %v", b, want)
			}
		case jsonInvalid:
			if want {
				t.Fatalf("checkJSON refuses %q, which encoding/json accepts", b)
			}
		case jsonTooDeep:
			if want && jsonDepth(b) <= maxNesting {
				t.Fatalf("checkJSON finds %q too deep, at depth %d", b, jsonDepth(b))
			}
		}
		if want && got != jsonValid && jsonDepth(b) <= maxNesting {
			t.Fatalf("checkJSON %d on valid %q", got, b)
		}
	})
}

// gjsonFileIDs is the recursive gjson walk fileIDs replaced, kept as its
// reference (values unescaped as fileIDs does).
func gjsonFileIDs(obj []byte) []string {
	var ids []string
	var walk func(v gjson.Result)
	walk = func(v gjson.Result) {
		v.ForEach(func(k, val gjson.Result) bool {
			if k.Str == "file_id" && val.Type == gjson.String {
				id, _ := appendUnescaped(nil, strContent([]byte(val.Raw)), -1)
				ids = append(ids, string(id))
			}
			if val.IsObject() || val.IsArray() {
				walk(val)
			}
			return true
		})
	}
	walk(gjson.ParseBytes(obj))
	return ids
}

// FuzzFileIDs: the one-pass scan finds exactly the file ids the recursive
// walk did, in the same order.
func FuzzFileIDs(f *testing.F) {
	for _, s := range []string{
		`{"a":[{"file_id":"f1"},{"b":{"file\u005fid":"f2","file_id":3}}],"file_id":"f3"}`,
		`{"x":"\"file_id\":\"no\"","y":["file_id",":"],"z":{"file_id" : "\u0066ile"}}`,
		`{"file_id":{"file_id":"inner"},"\\":"file_id","k":"\\\"file_id\":"}`,
		`[{"file_id":"a"},"file_id",{"\u0066\u0069\u006c\u0065\u005f\u0069\u0064":"b"}]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkJSON(b) != jsonValid {
			return
		}
		if got, want := fileIDs(b), gjsonFileIDs(b); !slices.Equal(got, want) {
			t.Fatalf("%q: scan %q, walk %q", b, got, want)
		}
	})
}
