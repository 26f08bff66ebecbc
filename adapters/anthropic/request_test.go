package anthropic

import (
	"errors"
	"reflect"
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
