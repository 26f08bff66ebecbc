package anthropic

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/relaystation/relay/domain"
)

func mustInvalid(t *testing.T, err error, want string) {
	t.Helper()
	var de *domain.Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v is not a *domain.Error", err)
	}
	if de.Kind != domain.KindInvalid || de.Reason != "body" {
		t.Fatalf("error %+v: want kind invalid, reason body", de)
	}
	if !strings.Contains(de.Message, want) {
		t.Fatalf("message %q does not say %q", de.Message, want)
	}
}

func TestParseRequestAccepts(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		f    Format
		body string
		want Request
	}{
		{"messages", FormatMessages,
			`{"model":"claude-sonnet-4-5","max_tokens":1024,"stream":true,"messages":[{"role":"user","content":"max_tokens: 9"}]}`,
			Request{Model: "claude-sonnet-4-5", Stream: true, MaxTokens: 1024, MaxTokensSet: true, Valid: true}},
		{"absent fields", FormatMessages, `{"messages":[]}`, Request{Valid: true}},
		{"escaped model", FormatMessages, `{"model":"claude\u002dhaiku","max_tokens":1}`, Request{Model: "claude-haiku", MaxTokens: 1, MaxTokensSet: true, Valid: true}},
		{"bound", FormatMessages, `{"max_tokens":1073741824}`, Request{MaxTokens: MaxTokensBound, MaxTokensSet: true, Valid: true}},
		{"nested keys are not top-level", FormatMessages,
			`{"max_tokens":5,"metadata":{"max_tokens":"x","stream":3},"tools":[{"max_tokens":1,"max_tokens":2}]}`,
			Request{MaxTokens: 5, MaxTokensSet: true, Valid: true}},
		{"chat larger bound", FormatChat, `{"model":"m","max_tokens":100,"max_completion_tokens":300}`,
			Request{Model: "m", MaxTokens: 300, MaxTokensSet: true, Valid: true}},
		{"chat larger bound first", FormatChat, `{"max_completion_tokens":300,"max_tokens":100}`,
			Request{MaxTokens: 300, MaxTokensSet: true, Valid: true}},
		{"chat nulls", FormatChat, `{"model":"m","stream":null,"max_tokens":null,"max_completion_tokens":7,"stream_options":null}`,
			Request{Model: "m", MaxTokens: 7, MaxTokensSet: true, Valid: true}},
		{"chat include_usage", FormatChat, `{"stream":true,"stream_options":{"include_usage":true}}`,
			Request{Stream: true, IncludeUsage: true, Valid: true}},
		{"chat include_usage false", FormatChat, `{"stream":true,"stream_options":{"include_usage":false,"other":1}}`,
			Request{Stream: true, Valid: true}},
		{"messages ignores chat fields", FormatMessages, `{"max_tokens":5,"max_completion_tokens":"x","stream_options":7}`,
			Request{MaxTokens: 5, MaxTokensSet: true, Valid: true}},
		{"complete", FormatComplete, `{"model":"claude-2.1","max_tokens_to_sample":256,"prompt":"\n\nHuman: hi\n\nAssistant:"}`,
			Request{Model: "claude-2.1", MaxTokens: 256, MaxTokensSet: true, Valid: true}},
		{"whitespace", FormatMessages, " \t\r\n{ \"max_tokens\" : 3 , \"stream\" : false } \n", Request{MaxTokens: 3, MaxTokensSet: true, Valid: true}},
		{"user_id", FormatMessages, `{"max_tokens":5,"metadata":{"user_id":"user-42"}}`,
			Request{MaxTokens: 5, MaxTokensSet: true, UserID: "user-42", Valid: true}},
		{"escaped user_id", FormatMessages, `{"metadata":{"user\u005fid":"u\u00e9\n"}}`, Request{UserID: "u\u00e9\n", Valid: true}},
		{"null user_id", FormatMessages, `{"metadata":{"user_id":null}}`, Request{Valid: true}},
		{"empty metadata", FormatMessages, `{"metadata":{}}`, Request{Valid: true}},
		{"other metadata keys skipped", FormatMessages, `{"metadata":{"trace":{"user_id":7},"user_id":"u"},"max_tokens":1}`,
			Request{MaxTokens: 1, MaxTokensSet: true, UserID: "u", Valid: true}},
		{"longest user_id", FormatMessages, `{"metadata":{"user_id":"` + strings.Repeat("u", 1024) + `"}}`,
			Request{UserID: strings.Repeat("u", 1024), Valid: true}},
		{"chat metadata is not read", FormatChat, `{"metadata":{"user_id":7,"user_id":8},"max_tokens":2}`,
			Request{MaxTokens: 2, MaxTokensSet: true, Valid: true}},
	}
	for _, c := range cases {
		r, err := ParseRequest([]byte(c.body), c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r != c.want {
			t.Fatalf("%s: got %+v, want %+v", c.name, r, c.want)
		}
	}
}

func TestParseRequestRefuses(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		f    Format
		body string
		want string
	}{
		{"not json", FormatMessages, `{"max_tokens":5`, "not valid JSON"},
		{"trailing garbage", FormatMessages, `{"max_tokens":5} x`, "not valid JSON"},
		{"empty", FormatMessages, ``, "not valid JSON"},
		{"array", FormatMessages, `[{"max_tokens":5}]`, "must be a JSON object"},
		{"string", FormatMessages, `"x"`, "must be a JSON object"},
		{"duplicate", FormatMessages, `{"max_tokens":5,"max_tokens":50000}`, `"max_tokens" appears more than once`},
		{"escaped duplicate", FormatMessages, `{"max_tokens":5,"max\u005ftokens":50000}`, `"max_tokens" appears more than once`},
		{"duplicate unread key", FormatMessages, `{"messages":[],"messages":[]}`, `"messages" appears more than once`},
		{"duplicate stream", FormatMessages, `{"stream":false,"stream":true}`, `"stream" appears more than once`},
		{"case variant", FormatMessages, `{"max_tokens":5,"MAX_TOKENS":50000}`, `differs from "max_tokens" only in letter case`},
		{"kelvin variant", FormatMessages, `{"max_to\u212aens":50000}`, `only in letter case`},
		{"model variant", FormatMessages, `{"Model":"x"}`, `differs from "model"`},
		{"string tokens", FormatMessages, `{"max_tokens":"1024"}`, "max_tokens must be an integer from 1 to 1073741824 written as plain digits, not a string"},
		{"fraction", FormatMessages, `{"max_tokens":1024.0}`, "not 1024.0"},
		{"exponent", FormatMessages, `{"max_tokens":1e3}`, "not 1e3"},
		{"negative", FormatMessages, `{"max_tokens":-1}`, "not -1"},
		{"zero chat", FormatChat, `{"max_tokens":0}`, "not 0"},
		{"zero complete", FormatComplete, `{"max_tokens_to_sample":0}`, "not 0"},
		{"too large", FormatMessages, `{"max_tokens":1073741825}`, "not 1073741825"},
		{"huge", FormatMessages, `{"max_tokens":99999999999999999999999}`, "not 99999999999999999999999"},
		{"null tokens messages", FormatMessages, `{"max_tokens":null}`, "not null"},
		{"bool tokens", FormatMessages, `{"max_tokens":true}`, "not true"},
		{"stream string", FormatMessages, `{"stream":"true"}`, "stream must be true or false, not a string"},
		{"stream number", FormatMessages, `{"stream":1}`, "stream must be true or false, not 1"},
		{"stream null messages", FormatMessages, `{"stream":null}`, "not null"},
		{"model number", FormatMessages, `{"model":7}`, "model must be a string, not 7"},
		{"model null", FormatMessages, `{"model":null}`, "model must be a string, not null"},
		{"model long", FormatMessages, `{"model":"` + strings.Repeat("m", 300) + `"}`, "model is longer than 256 bytes"},
		{"chat completion tokens", FormatChat, `{"max_tokens":5,"max_completion_tokens":1e9}`, "max_completion_tokens must be"},
		{"chat duplicate completion", FormatChat, `{"max_completion_tokens":5,"max_completion_tokens":9}`, "appears more than once"},
		{"chat stream_options type", FormatChat, `{"stream_options":true}`, "stream_options must be an object, not true"},
		{"chat include_usage type", FormatChat, `{"stream_options":{"include_usage":"yes"}}`, "include_usage must be true or false"},
		{"chat include_usage duplicate", FormatChat, `{"stream_options":{"include_usage":false,"include_usage":true}}`, "stream_options.\"include_usage\" appears more than once"},
		{"chat include_usage variant", FormatChat, `{"stream_options":{"Include_Usage":true}}`, "only in letter case"},
		{"complete string", FormatComplete, `{"max_tokens_to_sample":"5"}`, "max_tokens_to_sample must be"},
		{"metadata string", FormatMessages, `{"metadata":"user-42"}`, "metadata must be an object, not a string"},
		{"metadata null", FormatMessages, `{"metadata":null}`, "metadata must be an object, not null"},
		{"metadata array", FormatMessages, `{"metadata":[{"user_id":"u"}]}`, "metadata must be an object, not an array"},
		{"metadata twice", FormatMessages, `{"metadata":{},"metadata":{"user_id":"u"}}`, `"metadata" appears more than once`},
		{"metadata variant", FormatMessages, `{"Metadata":{"user_id":"u"}}`, `differs from "metadata" only in letter case`},
		{"user_id number", FormatMessages, `{"metadata":{"user_id":42}}`, "metadata.user_id must be a string, not 42"},
		{"user_id object", FormatMessages, `{"metadata":{"user_id":{"id":"u"}}}`, "metadata.user_id must be a string, not an object"},
		{"user_id twice", FormatMessages, `{"metadata":{"user_id":"a","user_id":"b"}}`, `metadata."user_id" appears more than once`},
		{"user_id escaped twice", FormatMessages, `{"metadata":{"user_id":"a","user\u005fid":"b"}}`, `metadata."user_id" appears more than once`},
		{"user_id variant", FormatMessages, `{"metadata":{"User_ID":"a"}}`, `differs from "user_id" only in letter case`},
		{"user_id variant first", FormatMessages, `{"metadata":{"USER_ID":"a","user_id":"b"}}`, "only in letter case"},
		{"other metadata key twice", FormatMessages, `{"metadata":{"x":1,"x":2}}`, `metadata."x" appears more than once`},
		{"user_id long", FormatMessages, `{"metadata":{"user_id":"` + strings.Repeat("u", 1025) + `"}}`, "metadata.user_id is longer than 1024 bytes"},
		{"user_id bool", FormatMessages, `{"metadata":{"user_id":true}}`, "not true"},
		{"deep", FormatMessages, `{"x":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `}`, "nests deeper than 1000"},
		{"deep invalid", FormatMessages, strings.Repeat("[", 1<<20), "nests deeper than 1000"},
	}
	for _, c := range cases {
		_, err := ParseRequest([]byte(c.body), c.f)
		if err == nil {
			t.Fatalf("%s: accepted %s", c.name, c.body)
		}
		mustInvalid(t, err, c.want)
	}
}

func TestParseBatch(t *testing.T) {
	t.Parallel()
	body := []byte(`{"requests":[
	  {"custom_id":"a","params":{"model":"m","max_tokens":10,"messages":[]}},
	  {"params":{"max_tokens":20,"stream":false},"custom_id":"b\u0031"}]}`)
	items, err := ParseBatch(body)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].CustomID != "a" || items[1].CustomID != "b1" ||
		items[0].Request != (Request{Model: "m", MaxTokens: 10, MaxTokensSet: true, Valid: true}) || items[1].Request.MaxTokens != 20 {
		t.Fatalf("items %+v", items)
	}
	for _, it := range items {
		// Params is a sub-slice of body, not a copy.
		start := uintptr(unsafe.Pointer(unsafe.SliceData(it.Params))) - uintptr(unsafe.Pointer(unsafe.SliceData(body)))
		if start >= uintptr(len(body)) || string(body[start:start+uintptr(len(it.Params))]) != string(it.Params) {
			t.Fatalf("params %q is not a sub-slice of the body", it.Params)
		}
		if _, err := ParseRequest(it.Params, FormatMessages); err != nil {
			t.Fatalf("params %q: %v", it.Params, err)
		}
	}

	refused := []struct{ body, want string }{
		{`{"requests":[]}`, "requests must not be empty"},
		{`{}`, "requests is required"},
		{`{"requests":{}}`, "requests must be an array, not an object"},
		{`{"requests":[],"requests":[]}`, "appears more than once"},
		{`{"Requests":[{"custom_id":"a","params":{"max_tokens":1}}]}`, "only in letter case"},
		{`{"requests":[7]}`, "requests[0] must be an object"},
		{`{"requests":[{"params":{"max_tokens":1}}]}`, "requests[0].custom_id is required"},
		{`{"requests":[{"custom_id":1,"params":{"max_tokens":1}}]}`, "requests[0].custom_id must be a string"},
		{`{"requests":[{"custom_id":"a"}]}`, "requests[0].params is required"},
		{`{"requests":[{"custom_id":"a","params":[]}]}`, "requests[0].params must be an object"},
		{`{"requests":[{"custom_id":"a","custom_id":"b","params":{}}]}`, `requests[0]: the key "custom_id" appears more than once`},
		{`{"requests":[{"custom_id":"a","params":{},"Params":{}}]}`, `only in letter case`},
		{`{"requests":[{"custom_id":"a","params":{"metadata":{"user_id":1}}}]}`, "requests[0].params: metadata.user_id must be a string, not 1"},
		{`{"requests":[{"custom_id":"a","params":{"max_tokens":1}},{"custom_id":"\u0061","params":{"max_tokens":1}}]}`,
			`requests[1].custom_id "a" repeats that of requests[0]`},
		{`{"requests":[{"custom_id":"a","params":{"max_tokens":1}},{"custom_id":"b","params":{"max_tokens":1e3}}]}`,
			"requests[1].params: max_tokens must be"},
		{`{"requests":[{"custom_id":"a","params":{"max_tokens":1,"max_tokens":2}}]}`,
			`requests[0].params: the key "max_tokens" appears more than once`},
		{`{"requests":[{"custom_id":"a","params":{"max_tokens":1}}]`, "not valid JSON"},
	}
	for _, c := range refused {
		_, err := ParseBatch([]byte(c.body))
		if err == nil {
			t.Fatalf("accepted %s", c.body)
		}
		mustInvalid(t, err, c.want)
	}
}

func TestParserPort(t *testing.T) {
	t.Parallel()
	var p Parser
	r, err := p.ParseRequest([]byte(`{"model":"m","max_tokens":3,"stream":true,"stream_options":{"include_usage":true}}`), domain.FormatChat)
	if err != nil || !reflect.DeepEqual(r, domain.CallRequest{Model: "m", MaxTokens: 3, MaxTokensSet: true, Stream: true, IncludeUsage: true}) {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = p.ParseRequest([]byte(`{"model":"m","max_tokens":3,"speed":"fast","inference_geo":"us","tools":[{"type":"web_search_20250305","name":"web_search","max_uses":5}],"metadata":{"user_id":"u-1"}}`), domain.FormatMessages)
	if err != nil || !reflect.DeepEqual(r, domain.CallRequest{Model: "m", MaxTokens: 3, MaxTokensSet: true, Speed: "fast", InferenceGeo: "us",
		WebSearch: domain.ToolBound{Tools: 1, MaxUses: 5}, UserID: "u-1"}) {
		t.Fatalf("%+v %v", r, err)
	}
	items, err := p.ParseBatch([]byte(`{"requests":[{"custom_id":"x","params":{"max_tokens":4}}]}`))
	if err != nil || len(items) != 1 || items[0].CustomID != "x" || items[0].Request.MaxTokens != 4 || string(items[0].Params) != `{"max_tokens":4}` {
		t.Fatalf("%+v %v", items, err)
	}
}

func TestAppendUnescaped(t *testing.T) {
	t.Parallel()
	cases := []struct{ in, want string }{
		{`plain`, "plain"},
		{`a\"b\\c\/d\b\f\n\r\t`, "a\"b\\c/d\b\f\n\r\t"},
		{`\u00e9\u4e2d`, "é中"},
		{`\ud83d\ude00`, "😀"},
		{`\ud83d`, "\uFFFD"},
		{`\ud83dx`, "\uFFFDx"},
		{`\ud83d\u0041`, "\uFFFDA"},
		{`\ude00\ud83d`, "\uFFFD\uFFFD"},
		{"a\xffb", "a\uFFFDb"},
	}
	for _, c := range cases {
		got, n := appendUnescaped(nil, []byte(c.in), -1)
		if string(got) != c.want || n != len(c.in) {
			t.Fatalf("%q: got %q (%d), want %q", c.in, got, n, c.want)
		}
	}
	got, n := appendUnescaped(nil, []byte(`abc\u00e9def`), 4)
	if string(got) != "abc" || n != 3 {
		t.Fatalf("limited: %q %d", got, n)
	}
}

func TestStringEnd(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 100)
	cases := []struct {
		s     string
		end   int // -1: never closes
		plain bool
	}{
		{`"abc"x`, 5, true},
		{`""`, 2, true},
		{`"a\"b"x`, 6, false},
		{`"a\\"x`, 5, false},
		{`"a\\\"b"x`, 8, false},
		{`"é"x`, 4, false},
		{`"` + long + `"x`, 102, false}, // past the plain window: still found
		{`"` + long + `\"` + `"x`, 104, false},
		{`"abc`, -1, false},
		{`"abc\"`, -1, false},
	}
	for _, c := range cases {
		want := c.end
		if want < 0 {
			want = len(c.s)
		}
		e, plain := stringEndPlain([]byte(c.s), 0)
		if e != want || plain != c.plain || stringEnd([]byte(c.s), 0) != want {
			t.Fatalf("%q: end %d plain %v, want %d %v", c.s, e, plain, want, c.plain)
		}
	}
	for _, s := range []string{"abc", "a\"b", "a\\b", "é", strings.Repeat("x", 20) + "\"", strings.Repeat("y", 9) + "é"} {
		n := plainLen([]byte(s))
		want := len(s)
		for k := 0; k < len(s); k++ {
			if s[k] == '"' || s[k] == '\\' || s[k] >= 0x80 {
				want = k
				break
			}
		}
		if n != want {
			t.Fatalf("plainLen(%q) = %d, want %d", s, n, want)
		}
	}
}

// TestZeroMaxTokensIsACacheWarm: max_tokens 0 on the Messages API fills the
// prompt cache without generating; it is a real output bound of zero.
func TestZeroMaxTokensIsACacheWarm(t *testing.T) {
	r, err := ParseRequest([]byte(`{"model":"m","max_tokens":0,"messages":[]}`), FormatMessages)
	if err != nil || r.MaxTokens != 0 || !r.MaxTokensSet {
		t.Fatalf("%+v %v", r, err)
	}
	r, err = ParseRequest([]byte(`{"model":"m","messages":[]}`), FormatMessages)
	if err != nil || r.MaxTokensSet {
		t.Fatalf("absent: %+v %v", r, err)
	}
}

// TestParserFindsFileIDs: every file_id a body names, at any depth and in
// any spelling of the key, is reported for the ownership check.
func TestParserFindsFileIDs(t *testing.T) {
	t.Parallel()
	var p Parser
	body := `{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
	  {"type":"document","source":{"type":"file","file_id":"file_a"}},
	  {"type":"tool_result","content":[{"type":"image","source":{"type":"file","file\u005fid":"file_b"}}]},
	  {"type":"document","source":{"type":"file","file_id":"file_c","file_id":"file_d"}}]}]}`
	r, err := p.ParseRequest([]byte(body), domain.FormatMessages)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.FileIDs, ","); got != "file_a,file_b,file_c,file_d" {
		t.Fatalf("file ids %q", got)
	}
	if r, _ := p.ParseRequest([]byte(`{"model":"m","max_tokens":5,"messages":[]}`), domain.FormatMessages); r.FileIDs != nil {
		t.Fatalf("file ids in a body without any: %v", r.FileIDs)
	}
	items, err := p.ParseBatch([]byte(`{"requests":[{"custom_id":"x","params":{"max_tokens":4,"messages":[{"role":"user","content":[{"type":"document","source":{"type":"file","file_id":"file_z"}}]}]}}]}`))
	if err != nil || len(items) != 1 || len(items[0].Request.FileIDs) != 1 || items[0].Request.FileIDs[0] != "file_z" {
		t.Fatalf("batch items %+v %v", items, err)
	}
}

// TestParsePriceFields: a Messages body's speed, inference_geo and
// web_search tools, which change its price, are read as strictly as its
// output bound.
func TestParsePriceFields(t *testing.T) {
	t.Parallel()
	const ws = `"type":"web_search_20250305","name":"web_search"`
	label64 := strings.Repeat("s", maxLabelLen)
	accepted := []struct {
		name string
		f    Format
		body string
		want Request
	}{
		{"speed", FormatMessages, `{"speed":"fast"}`, Request{Speed: "fast", Valid: true}},
		{"escaped speed", FormatMessages, `{"speed":"f\u0061st"}`, Request{Speed: "fast", Valid: true}},
		{"escaped speed key", FormatMessages, `{"sp\u0065ed":"fast"}`, Request{Speed: "fast", Valid: true}},
		{"inference_geo", FormatMessages, `{"inference_geo":"us","speed":"standard"}`, Request{InferenceGeo: "us", Speed: "standard", Valid: true}},
		{"labels at the bound", FormatMessages, `{"speed":"` + label64 + `","inference_geo":"` + strings.Repeat(`\u00e9`, maxLabelLen/2) + `"}`,
			Request{Speed: label64, InferenceGeo: strings.Repeat("é", maxLabelLen/2), Valid: true}},
		{"absent", FormatMessages, `{"model":"m","max_tokens":5}`, Request{Model: "m", MaxTokens: 5, MaxTokensSet: true, Valid: true}},
		{"empty tools", FormatMessages, `{"tools":[]}`, Request{Valid: true}},
		{"custom tools", FormatMessages,
			`{"tools":[{"name":"a","input_schema":{"type":"object"}},{"type":"custom","name":"b","name":"c","max_uses":"x","input_schema":{"type":"web_search_20250305","max_uses":1}},{"type":"bash_20250124","name":"bash"}]}`,
			Request{Valid: true}},
		{"bounded", FormatMessages, `{"tools":[{` + ws + `,"max_uses":5}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 1, MaxUses: 5}, Valid: true}},
		{"unbounded", FormatMessages, `{"tools":[{` + ws + `}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 1, Unbounded: 1}, Valid: true}},
		{"max_uses zero", FormatMessages, `{"tools":[{` + ws + `,"max_uses":0}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 1}, Valid: true}},
		{"max_uses at the bound", FormatMessages, `{"tools":[{` + ws + `,"max_uses":1073741824}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 1, MaxUses: MaxTokensBound}, Valid: true}},
		{"versions and other tools", FormatMessages,
			`{"tools":[{"name":"a","input_schema":{}},{"type":"web_search_20260209","name":"s1","max_uses":3},{"type":"web_fetch_20250910","name":"f","max_uses":9},{` + ws + `},{"max_uses":4,"name":"s2","type":"web_search_20250305"}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 3, Unbounded: 1, MaxUses: 7}, Valid: true}},
		{"escaped type and key", FormatMessages, `{"tools":[{"type":"web\u005fsearch_20250305","max\u005fuses":2}]}`,
			Request{WebSearch: domain.ToolBound{Tools: 1, MaxUses: 2}, Valid: true}},
		{"not web_search types", FormatMessages, `{"tools":[{"type":"web_search"},{"type":"Web_search_20250305"},{"type":7,"max_uses":"x"},{"type":null}]}`,
			Request{Valid: true}},
		{"elements that are not objects", FormatMessages, `{"tools":[7,"web_search_20250305",null,[{` + ws + `}]]}`, Request{Valid: true}},
		{"nested tools are not tools", FormatMessages, `{"metadata":{"tools":[{` + ws + `,"max_uses":"x"}]},"messages":[{"role":"user","content":[{"type":"text","text":"x","tools":null}]}]}`,
			Request{Valid: true}},
		{"chat ignores them", FormatChat, `{"speed":7,"inference_geo":null,"tools":null,"Speed":1}`, Request{Valid: true}},
		{"chat tools", FormatChat, `{"tools":[{"type":"web_search_20250305","max_uses":"x","type":1}]}`, Request{Valid: true}},
		{"complete ignores them", FormatComplete, `{"speed":[],"tools":{},"INFERENCE_GEO":1}`, Request{Valid: true}},
	}
	for _, c := range accepted {
		r, err := ParseRequest([]byte(c.body), c.f)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if r != c.want {
			t.Fatalf("%s: got %+v, want %+v", c.name, r, c.want)
		}
	}

	badUses := "tools[0].max_uses must be an integer from 0 to 1073741824 written as plain digits, not "
	refused := []struct{ name, body, want string }{
		{"speed number", `{"speed":7}`, "speed must be a string, not 7"},
		{"speed null", `{"speed":null}`, "speed must be a string, not null"},
		{"speed object", `{"speed":{"mode":"fast"}}`, "speed must be a string, not an object"},
		{"speed long", `{"speed":"` + label64 + `s"}`, "speed is longer than 64 bytes"},
		{"speed long escaped", `{"speed":"` + strings.Repeat(`\u00e9`, maxLabelLen/2+1) + `"}`, "speed is longer than 64 bytes"},
		{"speed duplicate", `{"speed":"standard","speed":"fast"}`, `the key "speed" appears more than once`},
		{"speed escaped duplicate", `{"speed":"standard","sp\u0065ed":"fast"}`, `the key "speed" appears more than once`},
		{"speed variant", `{"Speed":"fast"}`, `differs from "speed" only in letter case`},
		{"geo bool", `{"inference_geo":true}`, "inference_geo must be a string, not true"},
		{"geo null", `{"inference_geo":null}`, "inference_geo must be a string, not null"},
		{"geo long", `{"inference_geo":"` + label64 + `g"}`, "inference_geo is longer than 64 bytes"},
		{"geo duplicate", `{"inference_geo":"us","inference\u005fgeo":"eu"}`, `the key "inference_geo" appears more than once`},
		{"geo variant", `{"Inference_Geo":"us"}`, `differs from "inference_geo" only in letter case`},
		{"tools null", `{"tools":null}`, "tools must be an array, not null"},
		{"tools object", `{"tools":{"type":"web_search_20250305"}}`, "tools must be an array, not an object"},
		{"tools string", `{"tools":"web_search_20250305"}`, "tools must be an array, not a string"},
		{"tools duplicate", `{"tools":[],"tools":[{` + ws + `}]}`, `the key "tools" appears more than once`},
		{"tools escaped duplicate", `{"tools":[],"tool\u0073":[]}`, `the key "tools" appears more than once`},
		{"tools variant", `{"TOOLS":[{` + ws + `}]}`, `differs from "tools" only in letter case`},
		{"type duplicate", `{"tools":[{"type":"custom","name":"s","type":"web_search_20250305"}]}`, `tools[0]: the key "type" appears more than once`},
		{"type escaped duplicate", `{"tools":[{"type":"web_search_20250305","typ\u0065":"custom"}]}`, `tools[0]: the key "type" appears more than once`},
		{"type variant", `{"tools":[{"type":"custom","Type":"web_search_20250305"}]}`, `tools[0]: the key "Type" differs from "type" only in letter case`},
		{"type variant second tool", `{"tools":[{"name":"a"},{"TYPE":"web_search_20250305"}]}`, `tools[1]: the key "TYPE" differs from "type"`},
		{"max_uses duplicate", `{"tools":[{` + ws + `,"max_uses":1,"max_uses":50}]}`, `tools[0]: the key "max_uses" appears more than once`},
		{"max_uses escaped duplicate", `{"tools":[{` + ws + `,"max_uses":1,"max\u005fuses":50}]}`, `tools[0]: the key "max_uses" appears more than once`},
		{"max_uses duplicate in another tool", `{"tools":[{"name":"a","max_uses":1,"max_uses":2}]}`, `tools[0]: the key "max_uses" appears more than once`},
		{"max_uses variant", `{"tools":[{` + ws + `,"max_uses":1,"Max_Uses":50}]}`, `differs from "max_uses" only in letter case`},
		{"max_uses long-s variant", `{"tools":[{` + ws + `,"max_u\u017fe\u017f":50}]}`, `differs from "max_uses" only in letter case`},
		{"web_search key duplicate", `{"tools":[{` + ws + `,"name":"again"}]}`, `tools[0]: the key "name" appears more than once`},
		{"web_search escaped key duplicate", `{"tools":[{` + ws + `,"n\u0061me":"again"}]}`, `tools[0]: the key "name" appears more than once`},
		{"max_uses string", `{"tools":[{` + ws + `,"max_uses":"5"}]}`, badUses + "a string"},
		{"max_uses fraction", `{"tools":[{` + ws + `,"max_uses":5.0}]}`, badUses + "5.0"},
		{"max_uses exponent", `{"tools":[{` + ws + `,"max_uses":5e0}]}`, badUses + "5e0"},
		{"max_uses negative", `{"tools":[{` + ws + `,"max_uses":-1}]}`, badUses + "-1"},
		{"max_uses negative zero", `{"tools":[{` + ws + `,"max_uses":-0}]}`, badUses + "-0"},
		{"max_uses null", `{"tools":[{` + ws + `,"max_uses":null}]}`, badUses + "null"},
		{"max_uses bool", `{"tools":[{` + ws + `,"max_uses":true}]}`, badUses + "true"},
		{"max_uses array", `{"tools":[{` + ws + `,"max_uses":[5]}]}`, badUses + "an array"},
		{"max_uses too large", `{"tools":[{` + ws + `,"max_uses":1073741825}]}`, badUses + "1073741825"},
		{"max_uses huge", `{"tools":[{` + ws + `,"max_uses":99999999999999999999}]}`, badUses + "99999999999999999999"},
		{"max_uses before type", `{"tools":[{"max_uses":1e3,"type":"web_search_20260209"}]}`, badUses + "1e3"},
		{"second tool", `{"tools":[{` + ws + `},{"max_uses":"x","type":"web\u005fsearch_20250305"}]}`, "tools[1].max_uses must be"},
	}
	for _, c := range refused {
		_, err := ParseRequest([]byte(c.body), FormatMessages)
		if err == nil {
			t.Fatalf("%s: accepted %s", c.name, c.body)
		}
		mustInvalid(t, err, c.want)
	}
}

// TestToolsAreBounded: tools holds at most maxTools elements, of any kind.
func TestToolsAreBounded(t *testing.T) {
	t.Parallel()
	tools := func(n int, tool string) []byte {
		var b strings.Builder
		b.WriteString(`{"model":"m","max_tokens":5,"tools":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(tool)
		}
		b.WriteString(`]}`)
		return []byte(b.String())
	}
	r, err := ParseRequest(tools(maxTools, `{"type":"web_search_20250305","name":"s","max_uses":1073741824}`), FormatMessages)
	if err != nil || r.WebSearch != (domain.ToolBound{Tools: maxTools, MaxUses: maxTools * MaxTokensBound}) {
		t.Fatalf("%d web_search tools: %+v %v", maxTools, r.WebSearch, err)
	}
	keyed := func(n int, typ string) string {
		var b strings.Builder
		b.WriteString(`{"type":"` + typ + `"`)
		for i := 1; i < n; i++ {
			b.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
		}
		b.WriteString("}")
		return b.String()
	}
	if r, err := ParseRequest(tools(2, keyed(maxToolKeys, "web_search_20250305")), FormatMessages); err != nil || r.WebSearch.Unbounded != 2 {
		t.Fatalf("web_search tools of %d keys: %+v %v", maxToolKeys, r.WebSearch, err)
	}
	_, err = ParseRequest(tools(2, keyed(maxToolKeys+1, "web_search_20250305")), FormatMessages)
	mustInvalid(t, err, "tools[0] has more than 64 keys")
	if _, err := ParseRequest(tools(2, keyed(2*maxObjectKeys, "custom")), FormatMessages); err != nil {
		t.Fatalf("custom tools of %d keys: %v", 2*maxObjectKeys, err)
	}
	_, err = ParseRequest(tools(maxTools+1, `7`), FormatMessages)
	mustInvalid(t, err, "tools must hold at most 10000 tools")
	_, err = ParseBatch([]byte(`{"requests":[{"custom_id":"a","params":` + string(tools(maxTools+1, `{}`)) + `}]}`))
	mustInvalid(t, err, "requests[0].params: tools must hold at most 10000 tools")
}

// TestBatchPriceFields: each batch request's params are read by the same
// rules, and the port hands what they say to the domain.
func TestBatchPriceFields(t *testing.T) {
	t.Parallel()
	body := `{"requests":[
	  {"custom_id":"a","params":{"model":"m","max_tokens":10,"speed":"fast","inference_geo":"us","tools":[{"type":"web_search_20250305","name":"web_search","max_uses":4},{"type":"web_search_20260209","name":"s2"}]}},
	  {"custom_id":"b","params":{"max_tokens":20,"tools":[{"name":"t","input_schema":{"type":"object"}}]}}]}`
	want := domain.CallRequest{Model: "m", MaxTokens: 10, MaxTokensSet: true, Speed: "fast", InferenceGeo: "us",
		WebSearch: domain.ToolBound{Tools: 2, Unbounded: 1, MaxUses: 4}}
	items, err := Parser{}.ParseBatch([]byte(body))
	if err != nil || len(items) != 2 {
		t.Fatalf("%+v %v", items, err)
	}
	if !reflect.DeepEqual(items[0].Request, want) {
		t.Fatalf("requests[0]: %+v, want %+v", items[0].Request, want)
	}
	if items[1].Request.WebSearch != (domain.ToolBound{}) || items[1].Request.Speed != "" {
		t.Fatalf("requests[1]: %+v", items[1].Request)
	}
	refused := []struct{ body, want string }{
		{`{"requests":[{"custom_id":"a","params":{"tools":[{"type":"web_search_20250305","max_uses":"9"}]}}]}`,
			"requests[0].params: tools[0].max_uses must be an integer"},
		{`{"requests":[{"custom_id":"a","params":{}},{"custom_id":"b","params":{"tools":[{},{"type":"web_search_20250305","max_uses":1,"max\u005fuses":90}]}}]}`,
			`requests[1].params: tools[1]: the key "max_uses" appears more than once`},
		{`{"requests":[{"custom_id":"a","params":{"speed":"fast","Speed":"standard"}}]}`,
			`requests[0].params: the key "Speed" differs from "speed" only in letter case`},
		{`{"requests":[{"custom_id":"a","params":{"inference_geo":7}}]}`, "requests[0].params: inference_geo must be a string"},
		{`{"requests":[{"custom_id":"a","params":{"tools":null}}]}`, "requests[0].params: tools must be an array, not null"},
	}
	for _, c := range refused {
		_, err := ParseBatch([]byte(c.body))
		if err == nil {
			t.Fatalf("accepted %s", c.body)
		}
		mustInvalid(t, err, c.want)
	}
}
