package anthropic

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func MustEstimator(tb testing.TB, cfg EstimatorConfig) *Estimator {
	tb.Helper()
	e, err := NewEstimator(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

// estimateNow is InputEstimate for tests, which never wait for a slot.
func (e *Estimator) estimateNow(body []byte) int64 {
	n, err := e.InputEstimate(context.Background(), body)
	if err != nil {
		panic(err)
	}
	return n
}

func mustJSON(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// cl100k counts the texts as the strictest reference can: each tokenised
// alone and summed, and all concatenated bare; the larger.
func cl100k(texts ...string) int64 {
	var sum int64
	for _, s := range texts {
		sum += CountTokensExact(s)
	}
	if len(texts) < 2 {
		return sum
	}
	return max(sum, CountTokensExact(strings.Join(texts, "")))
}

// CountTokensExact tokenises all of s, without any limit.
func CountTokensExact(s string) int64 {
	n, err := codec().Count(s)
	if err != nil {
		panic(err)
	}
	return int64(n)
}

// checkEstimates asserts InputBound >= InputEstimate >= the cl100k count of
// the texts (and that the estimate includes at least fixed).
func checkEstimates(t *testing.T, e *Estimator, body []byte, fixed int64, texts ...string) (est, bound int64) {
	t.Helper()
	est, bound = e.estimateNow(body), e.InputBound(body)
	ref := cl100k(texts...)
	if est < ref+fixed {
		t.Fatalf("InputEstimate %d < cl100k %d + fixed %d", est, ref, fixed)
	}
	if bound < est {
		t.Fatalf("InputBound %d < InputEstimate %d", bound, est)
	}
	return est, bound
}

func userText(tb testing.TB, texts ...string) []byte {
	var blocks []any
	for _, s := range texts {
		blocks = append(blocks, map[string]any{"type": "text", "text": s})
	}
	return mustJSON(tb, map[string]any{"model": "m", "max_tokens": 10,
		"messages": []any{map[string]any{"role": "user", "content": blocks}}})
}

func TestEstimatorDefaults(t *testing.T) {
	t.Parallel()
	c := MustEstimator(t, EstimatorConfig{}).Config()
	if c.Margin != DefaultMargin || c.ImageTokens != 4784 || c.PDFPageTokens != 8000 || c.MaxPDFPages != 100 ||
		c.UnsizedTokens != 200_000 || c.TokenizeLimit != 256<<10 {
		t.Fatalf("defaults %+v", c)
	}
	for _, bad := range []EstimatorConfig{{Margin: 0.5}, {ImageTokens: -1}, {TokenizeLimit: -1}, {MaxPDFPages: 1 << 40}} {
		if _, err := NewEstimator(bad); err == nil {
			t.Fatalf("accepted %+v", bad)
		}
	}
}

func TestEstimatorTextShapes(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	rng := rand.New(rand.NewPCG(7, 8))
	randBytes := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		return string(b)
	}
	randRunes := func(n int) string {
		var sb strings.Builder
		for range n {
			sb.WriteRune(rune(rng.IntN(0x10FFFF)))
		}
		return sb.String()
	}
	cjk := strings.Repeat("東京都の天気は晴れです。明日は雨が降るでしょう。", 1500)
	cases := []struct {
		name  string
		texts []string
	}{
		{"english", []string{strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2000)}},
		// A whitespace prefix made a sampled estimate read the rest as cheap.
		{"whitespace prefix", []string{strings.Repeat(" ", 240_000) + randBytes(20_000)}},
		// Line breaks in long whitespace runs make the tokenizer quadratic
		// (see breakSpaceRuns); the reference count here runs unprotected.
		{"whitespace padded", []string{strings.Repeat("\n\t  ", 4000) + "Hello" + strings.Repeat("    ", 4000) + "\n"}},
		{"random bytes", []string{randBytes(60_000)}},
		{"random runes", []string{randRunes(30_000)}},
		{"cjk", []string{cjk}},
		{"digits", []string{strings.Repeat("1234567890", 10_000)}},
		{"many small leaves", func() []string {
			var s []string
			for i := range 20_000 {
				s = append(s, fmt.Sprint(i%7, "x"))
			}
			return s
		}()},
		{"past the limit", []string{randRunes(50_000), cjk, strings.Repeat("ab ", 30_000)}},
	}
	for _, c := range cases {
		body := userText(t, c.texts...)
		est, bound := checkEstimates(t, e, body, 0, c.texts...)
		t.Logf("%s: %d bytes, cl100k %d, estimate %d, bound %d", c.name, len(body), cl100k(c.texts...), est, bound)
	}
	// Raw invalid UTF-8 in the JSON (not escaped by an encoder).
	raw := []byte(`{"messages":[{"role":"user","content":"` + strings.Map(func(r rune) rune {
		if r < 0x20 || r == '"' || r == '\\' {
			return 'x'
		}
		return r
	}, randBytes(20_000)) + `"}]}`)
	raw = bytes.ToValidUTF8(raw, nil) // the Map above replaced invalid bytes; put some back
	raw = append(raw[:len(raw)-4:len(raw)-4], append(bytes.Repeat([]byte{0xff, 0xfe, 'a'}, 5_000), []byte(`"}]}`)...)...)
	var text struct {
		Messages []struct{ Content string }
	}
	if err := json.Unmarshal(raw, &text); err != nil {
		t.Fatal(err)
	}
	checkEstimates(t, e, raw, 0, text.Messages[0].Content)
}

func TestEstimatorLargeDocumentAndTools(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	doc := strings.Repeat("Section 4.2: the lessee shall pay rent monthly, in advance. ", 6_000) // 360 KB
	schema := map[string]any{"type": "object", "properties": map[string]any{
		"location": map[string]any{"type": "string", "description": "The city and state"},
		"unit":     map[string]any{"type": "string", "enum": []string{"celsius", "fahrenheit"}}}}
	body := mustJSON(t, map[string]any{
		"system": "You are a careful lawyer.",
		"tools":  []any{map[string]any{"name": "get_weather", "description": "Weather now", "input_schema": schema}},
		"messages": []any{map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "document", "title": "Lease", "source": map[string]any{"type": "text", "media_type": "text/plain", "data": doc}},
			map[string]any{"type": "text", "text": "Summarise section 4.2"},
		}}, map[string]any{"role": "assistant", "content": []any{
			map[string]any{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": map[string]any{"location": "Paris"}},
		}}, map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "tool_result", "tool_use_id": "toolu_1", "content": []any{map[string]any{"type": "text", "text": "15 degrees"}}},
		}}},
	})
	schemaJSON := string(mustJSON(t, schema))
	checkEstimates(t, e, body, toolUseSystemTokens, "You are a careful lawyer.", doc, "Lease", "Summarise section 4.2",
		"get_weather", "Weather now", schemaJSON, `{"location":"Paris"}`, "15 degrees")
}

// fakePDF builds a PDF of n pages whose page objects are plain text, padded
// with a binary stream of pad bytes.
func fakePDF(n, pad int, rng *rand.Rand) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n")
	fmt.Fprintf(&b, "2 0 obj\n<< /Type /Pages /Kids [")
	for i := range n {
		fmt.Fprintf(&b, " %d 0 R", 10+i)
	}
	fmt.Fprintf(&b, "] /Count %d >>\nendobj\n", n)
	for i := range n {
		sep := []string{" ", "\n", "", "\r\n  "}[i%4]
		fmt.Fprintf(&b, "%d 0 obj\n<< /Type%s/Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R >>\nendobj\n", 10+i, sep)
	}
	fmt.Fprintf(&b, "3 0 obj\n<< /Length %d /Filter /FlateDecode >>\nstream\n", pad)
	junk := make([]byte, pad)
	for i := range junk {
		junk[i] = byte(rng.IntN(256))
	}
	b.Write(junk)
	b.WriteString("\nendstream\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
	return b.Bytes()
}

func pdfBody(tb testing.TB, pdfs ...[]byte) []byte {
	var blocks []any
	for _, p := range pdfs {
		blocks = append(blocks, map[string]any{"type": "document",
			"source": map[string]any{"type": "base64", "media_type": "application/pdf", "data": base64.StdEncoding.EncodeToString(p)}})
	}
	blocks = append(blocks, map[string]any{"type": "text", "text": "What do these say?"})
	return mustJSON(tb, map[string]any{"messages": []any{map[string]any{"role": "user", "content": blocks}}})
}

func TestPDFPages(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 1))
	enc := func(p []byte) []byte { return []byte(base64.StdEncoding.EncodeToString(p)) }
	for _, n := range []int{1, 3, 57} {
		got, ok := pdfPages(enc(fakePDF(n, 100_000, rng)))
		if !ok || got != int64(n) {
			t.Fatalf("%d pages: got %d, %v", n, got, ok)
		}
	}
	base := fakePDF(3, 1000, rng)
	unreliable := map[string][]byte{
		"object stream":   bytes.Replace(base, []byte("/Filter /FlateDecode"), []byte("/Type /ObjStm /N 40 /First 300 /Filter /FlateDecode"), 1),
		"escaped Type":    bytes.ReplaceAll(base, []byte("/Type"), []byte("/T#79pe")),
		"escaped Page":    bytes.Replace(base, []byte("/Type /Page "), []byte("/Type /P#61ge "), 1),
		"indirect Type":   bytes.Replace(base, []byte("/Type /Page "), []byte("/Type 12 0 R "), 1),
		"no header":       bytes.Replace(base, []byte("%PDF-"), []byte("%PDX-"), 1),
		"header too late": append(bytes.Repeat([]byte(" "), 2000), base...),
	}
	for name, p := range unreliable {
		if n, ok := pdfPages(enc(p)); ok {
			t.Fatalf("%s: trusted a count of %d", name, n)
		}
	}
	if _, ok := pdfPages([]byte("not*base64")); ok {
		t.Fatal("trusted invalid base64")
	}
	// JSON escapes, URL-safe alphabet and missing padding still decode.
	p := fakePDF(4, 3000, rng)
	s := base64.StdEncoding.EncodeToString(p)
	if n, ok := pdfPages([]byte(strings.ReplaceAll(s, "/", `\/`))); !ok || n != 4 {
		t.Fatalf("escaped slashes: %d %v", n, ok)
	}
	if n, ok := pdfPages([]byte(base64.RawURLEncoding.EncodeToString(p))); !ok || n != 4 {
		t.Fatalf("url-safe unpadded: %d %v", n, ok)
	}
	// A comment between /Type and /Page; /Pages is not a page.
	if n, ok := pdfPages(enc([]byte("%PDF-1.4\n<< /Type % c\n/Page >> << /Type /Pages /Count 1 >>"))); !ok || n != 1 {
		t.Fatalf("comment: %d %v", n, ok)
	}
	// A page tree's /Count raises the count (a page without /Type).
	if n, ok := pdfPages(enc([]byte("%PDF-1.4\n<< /Type /Pages /Count 9 >> << /Type /Page >>"))); !ok || n != 9 {
		t.Fatalf("count: %d %v", n, ok)
	}
}

func TestEstimatorDocumentsAndImages(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	rng := rand.New(rand.NewPCG(2, 2))
	cfg := e.Config()

	// A large base64 PDF: its pages, counted, not its bytes.
	big := fakePDF(12, 6<<20, rng)
	body := pdfBody(t, big)
	est, bound := checkEstimates(t, e, body, 12*cfg.PDFPageTokens, "What do these say?")
	if bound > 12*cfg.PDFPageTokens+1000 {
		t.Fatalf("bound %d counted the PDF's bytes (%d)", bound, len(body))
	}
	t.Logf("12-page %d MB PDF: estimate %d, bound %d", len(body)>>20, est, bound)

	// An object stream hides pages: MaxPDFPages.
	hidden := bytes.Replace(fakePDF(2, 1000, rng), []byte("/Filter /FlateDecode"), []byte("/Type /ObjStm /Filter /FlateDecode"), 1)
	checkEstimates(t, e, pdfBody(t, hidden), cfg.MaxPDFPages*cfg.PDFPageTokens)

	// The pages of one request count at most MaxPDFPages.
	est, _ = checkEstimates(t, e, pdfBody(t, hidden, hidden, fakePDF(3, 10, rng)), cfg.MaxPDFPages*cfg.PDFPageTokens)
	if est > cfg.MaxPDFPages*cfg.PDFPageTokens+1000 {
		t.Fatalf("pages of one request not capped: %d", est)
	}

	// Images: a fixed bound whatever the source, never the base64 length.
	img := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 1<<20))
	imgs := mustJSON(t, map[string]any{"messages": []any{
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "image", "source": map[string]any{"type": "base64", "media_type": "image/png", "data": img}},
			map[string]any{"type": "image", "source": map[string]any{"type": "url", "url": "https://example.com/a.png"}},
			map[string]any{"type": "image", "source": map[string]any{"type": "file", "file_id": "file_1"}},
			map[string]any{"type": "text", "text": "Compare them."},
		}},
		map[string]any{"role": "user", "content": []any{
			map[string]any{"type": "image_url", "image_url": map[string]any{"url": "data:image/png;base64," + img}},
		}},
	}})
	est, bound = checkEstimates(t, e, imgs, 4*cfg.ImageTokens, "Compare them.")
	if bound > 4*cfg.ImageTokens+500 {
		t.Fatalf("image bound %d", bound)
	}

	// Sources the relay cannot size.
	unsized := mustJSON(t, map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "document", "source": map[string]any{"type": "file", "file_id": "file_1"}},
		map[string]any{"type": "document", "source": map[string]any{"type": "url", "url": "https://example.com/a.pdf"}},
	}}}})
	checkEstimates(t, e, unsized, cfg.UnsizedTokens+cfg.MaxPDFPages*cfg.PDFPageTokens)

	// A document inside a tool result, and one inside a web fetch result.
	nested := mustJSON(t, map[string]any{"messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "tool_result", "tool_use_id": "t", "content": []any{
			map[string]any{"type": "document", "source": map[string]any{"type": "base64", "media_type": "application/pdf",
				"data": base64.StdEncoding.EncodeToString(fakePDF(2, 10, rng))}}}},
		map[string]any{"type": "web_fetch_tool_result", "tool_use_id": "s", "content": map[string]any{
			"type": "web_fetch_result", "url": "https://example.com", "content": map[string]any{
				"type": "document", "source": map[string]any{"type": "base64", "media_type": "application/pdf",
					"data": base64.StdEncoding.EncodeToString(fakePDF(5, 10, rng))}}}},
	}}}})
	checkEstimates(t, e, nested, 7*cfg.PDFPageTokens, "https://example.com")

	// OpenAI-format file part with a PDF data URL.
	chat := mustJSON(t, map[string]any{"model": "m", "messages": []any{map[string]any{"role": "user", "content": []any{
		map[string]any{"type": "file", "file": map[string]any{"filename": "a.pdf",
			"file_data": "data:application/pdf;base64," + base64.StdEncoding.EncodeToString(fakePDF(3, 10, rng))}},
	}}}})
	checkEstimates(t, e, chat, 3*cfg.PDFPageTokens)
}

func TestEstimatorChatFormat(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	body := []byte(`{"model":"claude-sonnet-4-5","max_completion_tokens":100,"messages":[
	  {"role":"system","content":"You are terse."},
	  {"role":"user","content":[{"type":"text","text":"What's the weather in Paris?"}]},
	  {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
	  {"role":"tool","tool_call_id":"c1","content":"15 degrees"}],
	  "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather now","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]}`)
	checkEstimates(t, e, body, toolUseSystemTokens, "You are terse.", "What's the weather in Paris?", "get_weather", `{"city":"Paris"}`,
		"15 degrees", "Weather now")
}

func TestEstimatorHostileShapes(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	deep := []byte(`{"messages":[{"role":"user","content":[` + strings.Repeat(`{"type":"tool_result","content":[`, 100) +
		`{"type":"text","text":"deep"}` + strings.Repeat(`]}`, 100) + `]}]}`)
	checkEstimates(t, e, deep, 0, "deep")
	for _, b := range []string{``, `[]`, `"x"`, `{`, `{"messages":`, `{"messages":[{"content":[{"type":"document","source":{"type":"base64","data":"%%%"}}]}]}`,
		`{"messages":[{"content":[[[[[[`, `{"messages":[{"content":"\u"}]}`} {
		if n, m := e.estimateNow([]byte(b)), e.InputBound([]byte(b)); n < 0 || m < n {
			t.Fatalf("%q: estimate %d bound %d", b, n, m)
		}
	}
	// Unknown block types count their raw bytes.
	unknown := []byte(`{"messages":[{"role":"user","content":[{"type":"hologram","payload":"` + strings.Repeat("z", 10_000) + `"}]}]}`)
	if n := e.InputBound(unknown); n < 10_000 {
		t.Fatalf("unknown block bound %d", n)
	}
}

// Benchmark bodies of 32 MB: plain text, deeply nested arrays, many tiny
// strings.
func benchBodies(b *testing.B) map[string][]byte {
	const size = 32 << 20
	text := []byte(`{"messages":[{"role":"user","content":"` + strings.Repeat("All work and no play makes Jack a dull boy. ", size/44) + `"}]}`)
	var nested bytes.Buffer
	nested.WriteString(`{"messages":[{"role":"user","content":[`)
	unit := strings.Repeat("[", 40) + `"x"` + strings.Repeat("]", 40)
	for nested.Len() < size {
		nested.WriteString(`{"type":"tool_result","content":[` + strings.Repeat(`{"type":"tool_result","content":[`, 20) +
			unit + strings.Repeat("]}", 20) + `]},`)
	}
	nested.WriteString(`{"type":"text","text":"end"}]}]}`)
	nest := func(open, close string) []byte {
		var n bytes.Buffer
		n.WriteString(`{"messages":[{"role":"user","content":[`)
		for n.Len() < size {
			n.WriteString(strings.Repeat(open, 14) + `{"type":"text","text":"x"}` + strings.Repeat(close, 14) + `,`)
		}
		n.WriteString(`{"type":"text","text":"end"}]}]}`)
		return n.Bytes()
	}
	var tiny bytes.Buffer
	tiny.WriteString(`{"messages":[{"role":"user","content":[`)
	for tiny.Len() < size {
		tiny.WriteString(`{"type":"text","text":"a"},`)
	}
	tiny.WriteString(`{"type":"text","text":"b"}]}]}`)
	return map[string][]byte{"text": text, "nested": nested.Bytes(), "tiny": tiny.Bytes(),
		// The type after the content at every level, and given twice.
		"nested_type_last": nest(`{"content":[`, `],"type":"tool_result"}`),
		"nested_two_types": nest(`{"type":"tool_result","content":[`, `],"type":"search_result"}`)}
}

func BenchmarkInputBound32MB(b *testing.B) {
	e := MustEstimator(b, EstimatorConfig{})
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = e.InputBound(body)
			}
		})
	}
}

func BenchmarkInputEstimate32MB(b *testing.B) {
	e := MustEstimator(b, EstimatorConfig{})
	Warm()
	for name, body := range benchBodies(b) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = e.estimateNow(body)
			}
		})
	}
}

func BenchmarkInputEstimate1KB(b *testing.B) {
	e := MustEstimator(b, EstimatorConfig{})
	body := []byte(`{"model":"m","max_tokens":10,"messages":[{"role":"user","content":"` + strings.Repeat("The quick brown fox. ", 50) + `"}]}`)
	Warm()
	b.ReportAllocs()
	for b.Loop() {
		_ = e.estimateNow(body)
	}
}

// TestRepeatedFieldsInSourcesAndToolsAreSizedAtWorst: a document source or
// a tool with a repeated field is read differently by first-wins and
// last-wins parsers; the bound must cover both readings.
func TestRepeatedFieldsInSourcesAndToolsAreSizedAtWorst(t *testing.T) {
	t.Parallel()
	e, err := NewEstimator(EstimatorConfig{})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(block string) []byte {
		return []byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[` + block + `]}]}`)
	}
	cases := map[string][2]string{
		"url then text":  {`{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}`, `{"type":"document","source":{"type":"url","url":"https://x/a.pdf","type":"text","data":"x"}}`},
		"file then text": {`{"type":"document","source":{"type":"file","file_id":"file_1"}}`, `{"type":"document","source":{"type":"file","file_id":"file_1","type":"text","data":"x"}}`},
		"text then url":  {`{"type":"document","source":{"type":"url","url":"https://x/a.pdf"}}`, `{"type":"document","source":{"type":"text","data":"x","type":"url","url":"https://x/a.pdf"}}`},
	}
	for name, c := range cases {
		alone, dup := e.InputBound(msg(c[0])), e.InputBound(msg(c[1]))
		if dup < alone {
			t.Errorf("%s: bound %d with a repeated field, %d for the dearer reading alone", name, dup, alone)
		}
	}
	tools := func(tool string) []byte {
		return []byte(`{"model":"m","max_tokens":5,"tools":[` + tool + `],"messages":[{"role":"user","content":"hi"}]}`)
	}
	alone := e.InputBound(tools(`{"type":"mcp_toolset","mcp_server_name":"x"}`))
	dup := e.InputBound(tools(`{"type":"custom","type":"mcp_toolset","mcp_server_name":"x"}`))
	if dup < alone {
		t.Errorf("tool with two types: bound %d, the mcp_toolset reading alone %d", dup, alone)
	}
}
