package anthropic

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
)

// hostileSize is the size of each hostile body: just under the proxy's
// default 32 MB cap.
const hostileSize = 30 << 20

// hostileBody wraps blocks, repeated to about size bytes, as the content
// of one user message: {"model":..,"max_tokens":..,"messages":[{"role":
// "user","content":[BLOCK,BLOCK,...,LAST]}]}. The content array is at
// nesting level 4.
func hostileBody(size int, block, last string) []byte {
	var b bytes.Buffer
	b.Grow(size + len(block) + 256)
	b.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[`)
	for b.Len() < size {
		b.WriteString(block)
		b.WriteByte(',')
	}
	b.WriteString(last)
	b.WriteString(`]}]}`)
	return b.Bytes()
}

// oneMessage is a body whose one user message holds blocks.
func oneMessage(blocks string) []byte {
	return []byte(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":[` + blocks + `]}]}`)
}

// hostileShapes are bodies built to find what is superlinear, or costly
// per byte, in ParseRequest, the file-id walk and the estimator. Each is
// valid JSON within the 1000-level nesting limit unless its name says
// otherwise.
func hostileShapes(size int) map[string][]byte {
	const deep = maxNesting - 4 // the content array is level 4
	text := `{"type":"text","text":"end"}`
	arrays := strings.Repeat("[", deep) + `"x"` + strings.Repeat("]", deep)
	objects := strings.Repeat(`{"a":`, deep) + `"x"` + strings.Repeat("}", deep)
	// Blocks nested in blocks, two levels per tool_result, around a text
	// block (one more level).
	const pairs = (deep - 1) / 2
	results := strings.Repeat(`{"type":"tool_result","content":[`, pairs) + text + strings.Repeat("]}", pairs)
	resultsTypeLast := strings.Repeat(`{"content":[`, pairs) + text + strings.Repeat(`],"type":"tool_result"}`, pairs)
	resultsTwoTypes := strings.Repeat(`{"type":"tool_result","content":[`, pairs) + text +
		strings.Repeat(`],"type":"search_result"}`, pairs)
	docs := strings.Repeat(`{"type":"document","source":{"type":"content","content":[`, (deep-1)/3) + text +
		strings.Repeat("]}}", (deep-1)/3)
	docsTypeLast := strings.Repeat(`{"source":{"content":[`, (deep-1)/3) + text +
		strings.Repeat(`],"type":"content"},"type":"document"}`, (deep-1)/3)
	serverResults := strings.Repeat(`{"type":"web_fetch_tool_result","content":`, deep-1) + text + strings.Repeat("}", deep-1)
	var keys strings.Builder
	keys.WriteString(`{"type":"text","text":"k"`)
	for i := range 200_000 {
		keys.WriteString(`,"k` + strconv.Itoa(i) + `":0`)
	}
	keys.WriteString("}")
	var nums strings.Builder
	nums.WriteString(`{"type":"tool_use","id":"t","name":"n","input":{"v":[`)
	for i := range 200_000 {
		if i > 0 {
			nums.WriteByte(',')
		}
		nums.WriteString("-1.5e+" + strconv.Itoa(i%300))
	}
	nums.WriteString("]}}")
	shapes := map[string][]byte{
		"deep_arrays":       hostileBody(size, arrays, text),
		"deep_arrays_esc":   hostileBody(size, arrays, `{"type":"text","text":"\u0041"}`),
		"deep_objects":      hostileBody(size, objects, text),
		"deep_objects_esc":  hostileBody(size, objects, `{"type":"text","text":"\u0041"}`),
		"deep_results":      hostileBody(size, results, text),
		"deep_results_esc":  hostileBody(size, results, `{"type":"text","text":"\u0041"}`),
		"deep_type_last":    hostileBody(size, resultsTypeLast, text),
		"deep_two_types":    hostileBody(size, resultsTwoTypes, text),
		"deep_server":       hostileBody(size, serverResults, text),
		"deep_documents":    hostileBody(size, docs, text),
		"deep_docs_last":    hostileBody(size, docsTypeLast, text),
		"deep_file_ids":     hostileBody(size, strings.Repeat("[", deep-1)+`{"file_id":"file_1"}`+strings.Repeat("]", deep-1), text),
		"escapes":           hostileBody(size, `{"type":"text","text":"`+strings.Repeat(`\u00e9\ud83d\ude00\n`, 4096)+`"}`, text),
		"backslashes":       hostileBody(size, `{"type":"text","text":"`+strings.Repeat(`\\\"`, 4096)+`"}`, text),
		"tiny_blocks":       hostileBody(size, `{"type":"text","text":"a"}`, text),
		"tiny_strings":      hostileBody(size, `"a"`, text),
		"tiny_block_keys":   hostileBody(size, keys.String(), text),
		"numbers":           hostileBody(size, nums.String(), text),
		"escaped_keys":      hostileBody(size, `{"\u0074ype":"text","\u0074ext":"a"}`, text),
		"too_deep":          hostileBody(size, strings.Repeat("[", maxNesting)+strings.Repeat("]", maxNesting), text),
		"top_level_keys":    topLevelKeys(size, false),
		"top_level_escaped": topLevelKeys(size, true),
	}
	// The tools walk reads the top-level keys of every element of tools
	// (and every key of a web_search tool); maxTools of them fill size.
	per := size / maxTools
	keyed := func(n int, escaped bool, last string) string {
		var b strings.Builder
		b.WriteString(`{"name":"t"`)
		for i := range n {
			b.WriteString(`,"`)
			if escaped {
				b.WriteString(`\u006b`)
			} else {
				b.WriteByte('k')
			}
			b.WriteString(strconv.Itoa(i) + `":0`)
		}
		b.WriteString(`,"type":"` + last + `"}`)
		return b.String()
	}
	nkeys := min(maxObjectKeys-2, per/10)
	const deepSchema = maxNesting - 3 // a tool's input_schema is level 4
	deepTool := `{"name":"t","input_schema":` + strings.Repeat(`{"a":`, deepSchema) + "1" + strings.Repeat("}", deepSchema) + "}"
	shapes["many_tools"] = toolsBody(100_000, `{"name":"t","input_schema":{}}`)
	shapes["max_tools"] = toolsBody(maxTools, `{"name":"t","description":"`+strings.Repeat("d", max(per-60, 1))+`","input_schema":{"type":"object"}}`)
	shapes["tool_keys"] = toolsBody(maxTools, keyed(nkeys, false, "custom"))
	shapes["deep_tools"] = toolsBody(max(1, min(maxTools, size/len(deepTool))), deepTool)
	shapes["web_search_tools"] = toolsBody(maxTools, `{"name":"web_search","allowed_domains":["`+
		strings.Repeat(`a.example.com","`, max(per/16, 1))+`z.example.com"],"max_uses":5,"type":"web_search_20250305"}`)
	// A web_search tool has at most maxToolKeys keys, name and type among them.
	shapes["web_search_keys"] = toolsBody(maxTools, keyed(min(nkeys, maxToolKeys-2), false, "web_search_20250305"))
	shapes["web_search_escaped"] = toolsBody(maxTools, keyed(min(nkeys, maxToolKeys-2), true, "web_search_20250305"))
	return shapes
}

// toolsBody is a Messages body whose tools array holds n copies of tool.
func toolsBody(n int, tool string) []byte {
	var b bytes.Buffer
	b.Grow(n*(len(tool)+1) + 256)
	b.WriteString(`{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hi"}],"tools":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(tool)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// topLevelKeys is a body of many distinct tiny top-level keys, each of
// which the duplicate-key check must remember.
func topLevelKeys(size int, escaped bool) []byte {
	var b bytes.Buffer
	b.Grow(size + 64)
	b.WriteString(`{"model":"m","max_tokens":10,"messages":[]`)
	for i := 0; b.Len() < size; i++ {
		b.WriteString(`,"`)
		if escaped {
			b.WriteString(`\u0078`)
		}
		b.WriteString(strconv.FormatInt(int64(i), 36))
		b.WriteString(`":0`)
	}
	b.WriteString("}")
	return b.Bytes()
}

// processCPU is the CPU time this process has used (user and system), from
// /proc/self/stat; ok is false where there is no /proc.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// The fields after the command name, which ends at the last ')':
	// state is field 3, utime 14 and stime 15, in USER_HZ (100) ticks.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(u+s) * (time.Second / 100), true
}

// benchCPU runs op b.N times and also reports the process CPU time per op
// (cpu-ms/op), which a machine shared with other work does not inflate
// as it does the wall time.
func benchCPU(b *testing.B, size int, op func()) {
	b.SetBytes(int64(size))
	c0, ok := processCPU()
	for b.Loop() {
		op()
	}
	if c1, ok1 := processCPU(); ok && ok1 {
		b.ReportMetric(float64(c1-c0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
	}
}

// BenchmarkHostile measures, for each hostile shape, what admission runs on
// a body: the strict parse with the file-id walk (as the RequestParser port
// runs it), the cheap InputBound, and the tokenising InputEstimate.
func BenchmarkHostile(b *testing.B) {
	e := MustEstimator(b, EstimatorConfig{})
	Warm()
	for name, body := range hostileShapes(hostileSize) {
		b.Run(name+"/parse", func(b *testing.B) {
			benchCPU(b, len(body), func() { _, _ = Parser{}.ParseRequest(body, FormatMessages) })
		})
		b.Run(name+"/bound", func(b *testing.B) {
			benchCPU(b, len(body), func() { _ = e.InputBound(body) })
		})
		b.Run(name+"/estimate", func(b *testing.B) {
			benchCPU(b, len(body), func() { _ = e.estimateNow(body) })
		})
	}
}

// TestHostileShapesParse pins which hostile shapes are requests the
// parser accepts: all but those past its limits (nesting, object keys).
func TestHostileShapesParse(t *testing.T) {
	t.Parallel()
	refused := map[string]string{
		"too_deep":          "nests deeper than 1000 levels",
		"top_level_keys":    "more than 1000 top-level keys",
		"top_level_escaped": "more than 1000 top-level keys",
		"many_tools":        "tools must hold at most 10000 tools",
	}
	for name, body := range hostileShapes(64 << 10) {
		_, err := Parser{}.ParseRequest(body, FormatMessages)
		if want, ok := refused[name]; ok {
			mustInvalid(t, err, want)
		} else if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestObjectKeysAreBounded: an object whose keys are checked for repeats
// may have at most maxObjectKeys of them.
func TestObjectKeysAreBounded(t *testing.T) {
	t.Parallel()
	obj := func(n int, prefix string) string {
		var b strings.Builder
		b.WriteString(prefix)
		for i := range n {
			if i > 0 || prefix != "{" {
				b.WriteByte(',')
			}
			b.WriteString(`"k` + strconv.Itoa(i) + `":0`)
		}
		b.WriteString("}")
		return b.String()
	}
	top := `{"model":"m","max_tokens":5`
	if _, err := ParseRequest([]byte(obj(maxObjectKeys-2, top)), FormatMessages); err != nil {
		t.Fatalf("%d top-level keys: %v", maxObjectKeys, err)
	}
	_, err := ParseRequest([]byte(obj(maxObjectKeys-1, top)), FormatMessages)
	mustInvalid(t, err, "more than 1000 top-level keys")
	_, err = ParseRequest([]byte(`{"max_tokens":5,"stream_options":`+obj(maxObjectKeys+1, "{")+`}`), FormatChat)
	mustInvalid(t, err, "stream_options has more than 1000 keys")
	_, err = ParseBatch([]byte(`{"requests":[{"custom_id":"a","params":{"max_tokens":1}` + obj(maxObjectKeys, "") + `]}`))
	mustInvalid(t, err, "requests[0] has more than 1000 keys")
	_, err = ParseBatch([]byte(obj(maxObjectKeys+1, `{"requests":[]`)))
	mustInvalid(t, err, "more than 1000 top-level keys")
}

// TestEstimatesAreBounded: at most MaxConcurrent estimates run at once; one
// that finds no slot waits for one, and gives up with ErrEstimatorBusy, of
// kind KindOverloaded, when its context ends first.
func TestEstimatesAreBounded(t *testing.T) {
	t.Parallel()
	if n := MustEstimator(t, EstimatorConfig{}).Config().MaxConcurrent; n != runtime.GOMAXPROCS(0) {
		t.Fatalf("default MaxConcurrent %d, want GOMAXPROCS", n)
	}
	if _, err := NewEstimator(EstimatorConfig{MaxConcurrent: -1}); err == nil {
		t.Fatal("a negative MaxConcurrent was accepted")
	}
	e := MustEstimator(t, EstimatorConfig{MaxConcurrent: 2})
	body := []byte(`{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hello there"}]}`)
	// Both slots taken, as by two long estimates.
	e.slots <- struct{}{}
	e.slots <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := e.InputEstimate(ctx, body); !errors.Is(err, ErrEstimatorBusy) || domain.KindOf(err) != domain.KindOverloaded ||
		!errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("all slots taken: %v", err)
	}
	// A waiting estimate runs as soon as a slot is given back.
	got := make(chan error, 1)
	go func() {
		_, err := e.InputEstimate(context.Background(), body)
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("ran without a slot: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	<-e.slots
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	<-e.slots
	if len(e.slots) != 0 {
		t.Fatalf("%d slots still held", len(e.slots))
	}
}

// TestTypeAfterContent: blocks and document sources that name their type
// after their content are sized exactly as if the type came first, up to
// maxDeferred of them inside one another; deeper ones are sized at their
// dearest, never below the exact reading.
func TestTypeAfterContent(t *testing.T) {
	t.Parallel()
	e := MustEstimator(t, EstimatorConfig{})
	text := `{"type":"text","text":"All work and no play makes Jack a dull boy."}`
	results := func(n int, last bool) []byte {
		open, close := `{"type":"tool_result","content":[`, `]}`
		if last {
			open, close = `{"content":[`, `],"type":"tool_result"}`
		}
		return oneMessage(strings.Repeat(open, n) + text + strings.Repeat(close, n))
	}
	docs := func(n int, last bool) []byte {
		open, close := `{"type":"document","source":{"type":"content","content":[`, `]}}`
		if last {
			open, close = `{"source":{"content":[`, `],"type":"content"},"type":"document"}`
		}
		return oneMessage(strings.Repeat(open, n) + text + strings.Repeat(close, n))
	}
	for _, c := range []struct {
		name   string
		body   func(int, bool) []byte
		exact  int // levels still sized exactly
		deeper int
	}{
		{"tool results", results, maxDeferred, maxDeferred + 1},
		// Each document defers twice: its source, and the source's content.
		{"documents", docs, maxDeferred / 2, maxDeferred/2 + 1},
	} {
		first, last := c.body(c.exact, false), c.body(c.exact, true)
		if a, b := e.InputBound(first), e.InputBound(last); a != b {
			t.Errorf("%s, %d levels: bound %d with the type first, %d after the content", c.name, c.exact, a, b)
		}
		if a, b := e.estimateNow(first), e.estimateNow(last); a != b {
			t.Errorf("%s, %d levels: estimate %d with the type first, %d after the content", c.name, c.exact, a, b)
		}
		first, last = c.body(c.deeper, false), c.body(c.deeper, true)
		if a, b := e.InputBound(first), e.InputBound(last); b < a+e.Config().UnsizedTokens {
			t.Errorf("%s, %d levels: bound %d after the content, %d with the type first: not the dearest", c.name, c.deeper, b, a)
		}
		if a, b := e.estimateNow(first), e.estimateNow(last); b < a {
			t.Errorf("%s, %d levels: estimate %d after the content, below %d with the type first", c.name, c.deeper, b, a)
		}
	}
	// A string before the type nests nothing, and is read exactly at any depth.
	plain := strings.Repeat(`{"type":"tool_result","content":[`, 8) + `{"text":"hello","type":"text"}` + strings.Repeat("]}", 8)
	plainFirst := strings.Repeat(`{"type":"tool_result","content":[`, 8) + `{"type":"text","text":"hello"}` + strings.Repeat("]}", 8)
	if a, b := e.InputBound(oneMessage(plainFirst)), e.InputBound(oneMessage(plain)); a != b {
		t.Errorf("text before its type: bound %d, %d with the type first", b, a)
	}
}

// TestBatchRequestsAreBounded: a batch holds at most MaxBatchRequests
// requests, the upstream's own limit.
func TestBatchRequestsAreBounded(t *testing.T) {
	t.Parallel()
	batch := func(n int) []byte {
		var b bytes.Buffer
		b.WriteString(`{"requests":[`)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(`{"custom_id":"c` + strconv.Itoa(i) + `","params":{"max_tokens":1}}`)
		}
		b.WriteString(`]}`)
		return b.Bytes()
	}
	if items, err := ParseBatch(batch(MaxBatchRequests)); err != nil || len(items) != MaxBatchRequests {
		t.Fatalf("%d requests: %d items, %v", MaxBatchRequests, len(items), err)
	}
	_, err := ParseBatch(batch(MaxBatchRequests + 1))
	mustInvalid(t, err, "at most 100000 requests")
}
