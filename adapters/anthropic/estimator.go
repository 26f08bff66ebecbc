package anthropic

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Estimator defaults, each with its source.
const (
	// DefaultMargin covers the newer Claude tokenizer: with Claude Opus 4.7
	// Anthropic put it at 1.0 to 1.35 times the tokens of earlier models
	// for the same text, and cl100k_base counts about what the earlier
	// Claude tokenizer did.
	DefaultMargin = 1.35
	// DefaultImageTokens bounds one image: Claude sees an image as 28x28
	// pixel patches, ⌈w/28⌉·⌈h/28⌉ tokens, after resizing it to at most its
	// native resolution (platform.claude.com, "Images and vision"); the
	// largest native resolution of current models (Opus 4.7: 2576 px long
	// edge, about 3.75 megapixels) is 92x52 patches, 4,784 tokens.
	DefaultImageTokens = 4784
	// DefaultPDFPageTokens bounds one PDF page, which Claude reads as the
	// page's text plus an image of the page (platform.claude.com, "PDF
	// support": "each page typically uses 1,500-3,000 tokens per page" of
	// text, plus image costs): a full-resolution page image (4,784) and
	// 3,000 text tokens, rounded up.
	DefaultPDFPageTokens = 8000
	// DefaultMaxPDFPages is the page limit of one request ("Maximum pages
	// per request: 100", PDF support; the limit is on the whole request).
	DefaultMaxPDFPages = 100
	// DefaultUnsizedTokens is assumed for a block the relay cannot size at
	// all (a document by file_id, an MCP server's tool list): the standard
	// 200K-token context window. It is not a bound on 1M-context models;
	// raise it there if a strict bound matters more than admitting such
	// requests.
	DefaultUnsizedTokens = 200_000
	// DefaultTokenizeLimit is how many bytes of text InputEstimate
	// tokenises: about 30 ms of CPU for prose, up to about 100 ms for the
	// costliest text the tokenizer meets (see breakSpaceRuns); the rest
	// counts one token per byte.
	DefaultTokenizeLimit = 256 << 10
)

// Framing that the text leaves alone do not show.
const (
	perRequestTokens = 16 // system prompt wrapper, turn markers
	perMessageTokens = 4  // a message's role and separators
	perBlockTokens   = 3  // a content block's separators
	perToolTokens    = 8  // a tool definition's wrapper
	// toolUseSystemTokens: with tools, Anthropic adds a tool-use system
	// prompt of up to 530 tokens (Claude 3 Opus, tool_choice auto; "Tool
	// use pricing and tokens"), rounded up.
	toolUseSystemTokens = 600
	// definedToolTokens: an Anthropic-defined tool (bash, text editor,
	// computer use, web search, ...) is sent by type alone, its definition
	// added upstream: the pricing page lists hundreds of tokens each.
	definedToolTokens = 2048
	// maxWalkDepth: content nested deeper counts its raw bytes.
	maxWalkDepth = 32
	// maxDeferred bounds how many values that were skipped over before
	// being read (a block's content before its type, a document source's
	// content) may enclose one another: each is read once more, so this
	// bounds the walk's cost to a few reads of each byte. Blocks SDKs and
	// people write defer one or two levels; a block or source that would
	// defer deeper is sized at its dearest instead (see walker.dearest).
	maxDeferred = 4
)

// separator joins text leaves for tokenising. Its NUL keeps the tokenizer's
// pieces (and merges) from spanning two leaves, and its newlines keep a
// leaf's trailing whitespace from merging with the next leaf's start. In a
// search over 200,000 random sequences of leaves (whitespace, contractions,
// digits, punctuation, CJK, emoji, invalid bytes) the joined count was never
// below the leaves tokenised one by one, nor below them concatenated bare;
// plain "\n" or " " fall short by up to one token per boundary.
const separator = "\n\x00\n"

// EstimatorConfig configures an Estimator. A zero field takes its default.
type EstimatorConfig struct {
	// Margin multiplies the cl100k_base count of tokenised text (>= 1;
	// DefaultMargin).
	Margin float64
	// ImageTokens bounds one image block, whatever its source
	// (DefaultImageTokens).
	ImageTokens int64
	// PDFPageTokens bounds one PDF page: page image plus page text
	// (DefaultPDFPageTokens).
	PDFPageTokens int64
	// MaxPDFPages bounds the pages of a PDF whose page count cannot be read
	// (a URL or file source, an object stream), and the PDF pages of one
	// request (DefaultMaxPDFPages).
	MaxPDFPages int64
	// UnsizedTokens is assumed for a block the relay cannot size at all
	// (DefaultUnsizedTokens).
	UnsizedTokens int64
	// TokenizeLimit is the bytes of text InputEstimate tokenises exactly
	// (DefaultTokenizeLimit).
	TokenizeLimit int
	// MaxConcurrent bounds the InputEstimate calls that run at once, in
	// the whole process (default GOMAXPROCS): a flood of large bodies
	// whose cheap bound does not fit gets no more of the CPU than that,
	// and queues (see InputEstimate) instead of slowing every estimate
	// down together.
	MaxConcurrent int
}

// Estimator bounds and estimates the input tokens of a request body:
// Messages or OpenAI chat format, a batch request's params, or a legacy
// Text Completions body. It walks the JSON once, counting the text of
// system, messages, tools, tool_choice (and their OpenAI-format kin), a
// fixed framing per message, block and tool, and fixed bounds for what it
// cannot tokenise:
//   - an image block (type image, or an OpenAI image_url part): ImageTokens;
//   - a document whose source is text: its data; content: its blocks;
//     base64 PDF: its pages (see pdfPages) times PDFPageTokens, MaxPDFPages
//     when they cannot be counted; url (always a PDF): MaxPDFPages pages;
//     file: UnsizedTokens. The PDF pages of one request count at most
//     MaxPDFPages, the upstream's limit for a request.
//   - an Anthropic-defined tool: a fixed allowance for its hidden
//     definition; an MCP server or toolset: UnsizedTokens;
//   - thinking signatures, redacted thinking, unknown block types, and
//     content nested deeper than 32 levels of JSON: their raw bytes;
//   - a block whose type is given twice with different values (parsers
//     that keep the first or the last key disagree on what it is): its raw
//     bytes, UnsizedTokens and MaxPDFPages pages.
//
// Tool definitions and tool inputs count as their raw JSON, property names
// included. Tool results, search results and server tool results are
// walked for the text, images and documents inside. The walk reads each
// byte once when blocks name their type first (as SDKs write them); a
// block whose type comes after its content is read once more per level,
// for at most 4 such levels: one nested deeper is sized as a block of two
// types. Keys are matched ignoring case at the top level (counting a case
// variant twice is safe), exactly below.
type Estimator struct {
	cfg  EstimatorConfig
	bufs sync.Pool
	// slots holds a token per InputEstimate running.
	slots chan struct{}
}

var _ ports.TokenEstimator = (*Estimator)(nil)

// NewEstimator returns an Estimator; a zero field of cfg takes its default.
func NewEstimator(cfg EstimatorConfig) (*Estimator, error) {
	if cfg.Margin == 0 {
		cfg.Margin = DefaultMargin
	}
	if math.IsNaN(cfg.Margin) || cfg.Margin < 1 || cfg.Margin > 100 {
		return nil, fmt.Errorf("anthropic: estimator margin %v is not between 1 and 100", cfg.Margin)
	}
	for _, f := range []struct {
		name string
		v    *int64
		def  int64
	}{
		{"image_tokens", &cfg.ImageTokens, DefaultImageTokens},
		{"pdf_page_tokens", &cfg.PDFPageTokens, DefaultPDFPageTokens},
		{"max_pdf_pages", &cfg.MaxPDFPages, DefaultMaxPDFPages},
		{"unsized_tokens", &cfg.UnsizedTokens, DefaultUnsizedTokens},
	} {
		if *f.v == 0 {
			*f.v = f.def
		}
		if *f.v < 0 || *f.v > 1<<30 {
			return nil, fmt.Errorf("anthropic: estimator %s %d is not between 1 and 2^30", f.name, *f.v)
		}
	}
	if cfg.TokenizeLimit == 0 {
		cfg.TokenizeLimit = DefaultTokenizeLimit
	}
	if cfg.TokenizeLimit < 0 || cfg.TokenizeLimit > 64<<20 {
		return nil, fmt.Errorf("anthropic: estimator tokenize limit %d is not between 1 and 64 MiB", cfg.TokenizeLimit)
	}
	if cfg.MaxConcurrent == 0 {
		cfg.MaxConcurrent = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxConcurrent < 0 || cfg.MaxConcurrent > 1<<16 {
		return nil, fmt.Errorf("anthropic: estimator max concurrent %d is not between 1 and 65536", cfg.MaxConcurrent)
	}
	return &Estimator{cfg: cfg, slots: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// Config reports the configuration in effect, defaults filled in.
func (e *Estimator) Config() EstimatorConfig { return e.cfg }

// InputBound implements ports.TokenEstimator: every byte of text is a token
// (a byte-level BPE never makes more tokens than bytes; an invalid UTF-8
// byte, which tokenizers read as U+FFFD, counts three), plus the framing
// and the fixed bounds. It tokenises nothing: one linear walk.
func (e *Estimator) InputBound(body []byte) int64 {
	w := walker{cfg: &e.cfg}
	w.walk(body)
	return w.bound()
}

// InputEstimate implements ports.TokenEstimator: the same walk, but the
// first TokenizeLimit bytes of text are tokenised exactly with cl100k_base
// in one call, and that count is multiplied by Margin (rounded up); text
// past the limit counts one token per byte, as in InputBound (bytes already
// bound any tokenizer, so they take no margin). Framing and fixed bounds
// are added as they are, and the result never exceeds InputBound.
//
// At most MaxConcurrent estimates run at once. A call that finds them all
// taken waits for one to finish, for as long as ctx allows (the caller
// decides how long a request may queue), and then returns ErrEstimatorBusy
// wrapping ctx's error.
func (e *Estimator) InputEstimate(ctx context.Context, body []byte) (int64, error) {
	select {
	case e.slots <- struct{}{}:
	default:
		select {
		case e.slots <- struct{}{}:
		case <-ctx.Done():
			return 0, fmt.Errorf("%w: %w", ErrEstimatorBusy, context.Cause(ctx))
		}
	}
	defer func() { <-e.slots }()
	return e.estimate(body), nil
}

// ErrEstimatorBusy: every estimate slot stayed taken for as long as the
// caller could wait.
var ErrEstimatorBusy = &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonEstimator,
	Message: "every input-token estimate slot is busy"}

// estimate is InputEstimate once it holds a slot.
func (e *Estimator) estimate(body []byte) int64 {
	w := walker{cfg: &e.cfg, exact: true, limit: e.cfg.TokenizeLimit}
	if p, ok := e.bufs.Get().(*[]byte); ok {
		w.buf = (*p)[:0]
	}
	w.walk(body)
	tok := countText(w.buf)
	if cap(w.buf) <= 2*e.cfg.TokenizeLimit {
		b := w.buf[:0]
		e.bufs.Put(&b)
	}
	est := int64(math.Ceil(float64(tok)*e.cfg.Margin)) + w.over + w.common()
	return min(est, w.bound())
}

// walker is one pass over a body.
type walker struct {
	cfg   *EstimatorConfig
	b     []byte // the body
	exact bool
	limit int
	buf   []byte // exact: text to tokenise, leaves joined by separator

	text     int64 // text bytes, bounded as in InputBound
	over     int64 // exact: the part of text past the limit
	raw      int64 // bytes counted one per token, never tokenised
	fixed    int64 // framing and fixed bounds
	pdfPages int64
	// deferred is how many values skipped over before being read enclose
	// the one being read (see maxDeferred).
	deferred int

	scratch [maxKeyRaw * 2]byte
}

func (w *walker) common() int64 {
	return w.raw + w.fixed + min(w.pdfPages, w.cfg.MaxPDFPages)*w.cfg.PDFPageTokens
}

func (w *walker) bound() int64 { return w.text + w.common() }

// boundBytes bounds the tokens of raw JSON string content (or any raw
// JSON): escapes only shrink text, and an invalid UTF-8 byte becomes the
// three bytes of U+FFFD.
func boundBytes(b []byte) int64 {
	if utf8.Valid(b) {
		return int64(len(b))
	}
	return 3 * int64(len(b))
}

// leaf counts a JSON string of text; any other value counts its raw bytes.
func (w *walker) leaf(v []byte) {
	c := strContent(v)
	if c == nil {
		if kind(v) != 'n' {
			w.rawBytes(v)
		}
		return
	}
	n := boundBytes(c)
	w.text += n
	if !w.exact {
		return
	}
	if len(w.buf) >= w.limit {
		w.over += n
		return
	}
	var used int
	w.buf, used = appendUnescaped(w.buf, c, w.limit)
	if used < len(c) {
		w.over += boundBytes(c[used:])
	}
	w.buf = append(w.buf, separator...)
}

// rawText counts raw JSON as text (a tool definition, a tool input): the
// model reads it much as it is written.
func (w *walker) rawText(v []byte) {
	n := boundBytes(v)
	w.text += n
	if !w.exact {
		return
	}
	room := w.limit - len(w.buf)
	if room <= 0 {
		w.over += n
		return
	}
	take := min(room, len(v))
	for take > 0 && take < len(v) && !utf8.RuneStart(v[take]) {
		take--
	}
	w.buf = append(w.buf, v[:take]...)
	if take < len(v) {
		w.over += boundBytes(v[take:])
	}
	w.buf = append(w.buf, separator...)
}

// rawBytes counts v one token per byte, without tokenising.
func (w *walker) rawBytes(v []byte) { w.raw += boundBytes(v) }

// dearest sizes the value b[x:end] as nothing in particular, the dearest
// of what it could be: its raw bytes, UnsizedTokens, and the most PDF
// pages a request may carry.
func (w *walker) dearest(x, end int) {
	w.fixed += w.cfg.UnsizedTokens
	w.pdfPages += w.cfg.MaxPDFPages
	w.rawBytes(w.b[x:end])
}

func (w *walker) name(key []byte) string { return b2s(keyName(key, w.scratch[:])) }

// is compares a key with a field name ignoring case: a key that differs
// only in case may still be read by some parser, and counting it is safe.
func is(name, field string) bool { return strings.EqualFold(name, field) }

// skip returns the end of the value at v without counting it.
func (w *walker) skip(v int) int { return valueEnd(w.b, v) }

// rawAt counts the value at v as raw bytes and returns its end.
func (w *walker) rawAt(v int) int {
	e := valueEnd(w.b, v)
	w.rawBytes(w.b[v:e])
	return e
}

// leafAt counts the value at v as a text leaf and returns its end.
func (w *walker) leafAt(v int) int {
	e := valueEnd(w.b, v)
	w.leaf(w.b[v:e])
	return e
}

// rawTextAt counts the value at v as raw JSON text and returns its end.
func (w *walker) rawTextAt(v int) int {
	e := valueEnd(w.b, v)
	w.rawText(w.b[v:e])
	return e
}

// str is the unescaped text of a short JSON string value (a type, a media
// type) at v, "" for anything else, and the value's end; the text may
// point into w.scratch.
func (w *walker) str(v int) (string, int) {
	e := valueEnd(w.b, v)
	if w.b[v] != '"' || e-v > maxKeyRaw {
		return "", e
	}
	return b2s(keyName(w.b[v:e], w.scratch[:])), e
}

// The walk is a recursive descent over the body, each function taking the
// index of a value's first byte and its JSON nesting depth and returning
// the index just past the value. A block's members are counted as they are
// read once its type is known; members before the type are put off. A
// block whose type is repeated with another value (parsers that keep the
// first and the last key disagree on it) is recounted from a snapshot as
// unsized. Content deeper than maxWalkDepth counts its raw bytes.

// walk counts a body; one that is not a well-formed object counts all its
// bytes (on top of whatever was read before the walk stopped).
func (w *walker) walk(body []byte) {
	w.b = body
	w.fixed += perRequestTokens
	i := skipWS(body, 0)
	end := members(body, i, func(key []byte, v int) int {
		switch n := w.name(key); {
		case is(n, "system"), is(n, "prompt"):
			return w.content(v, 2)
		case is(n, "messages"):
			return w.messages(v, 2)
		case is(n, "tools"), is(n, "functions"):
			return w.tools(v)
		case is(n, "tool_choice"), is(n, "function_call"), is(n, "output_format"),
			is(n, "output_config"), is(n, "response_format"):
			return w.rawTextAt(v)
		case is(n, "mcp_servers"):
			return w.unsizedEach(v)
		}
		return w.skip(v)
	})
	if end < 0 {
		w.rawBytes(body)
	}
}

// fail ends a malformed container: the rest of the body is unreadable, and
// the top level then counts the whole body raw.
func (w *walker) fail(end int) int {
	if end < 0 {
		return len(w.b)
	}
	return end
}

func (w *walker) messages(v, depth int) int {
	if w.b[v] != '[' {
		return w.rawAt(v)
	}
	return w.fail(elems(w.b, v, func(m int) int {
		w.fixed += perMessageTokens
		if w.b[m] != '{' || depth+1 > maxWalkDepth {
			return w.rawAt(m)
		}
		return w.fail(members(w.b, m, func(key []byte, val int) int {
			switch w.name(key) {
			case "content":
				return w.content(val, depth+2)
			case "name":
				return w.leafAt(val)
			case "tool_calls", "function_call":
				return w.rawTextAt(val)
			case "role", "tool_call_id", "cache_control", "id", "type":
				return w.skip(val)
			}
			return w.rawAt(val)
		}))
	}))
}

func (w *walker) tools(v int) int {
	if w.b[v] != '[' {
		return w.rawTextAt(v)
	}
	any := false
	end := elems(w.b, v, func(t int) int {
		any = true
		w.fixed += perToolTokens
		e := valueEnd(w.b, t)
		typ, types := "", 0
		forEachMember(w.b[t:e], func(key, val []byte) bool {
			if w.name(key) == "type" {
				types++
				if types == 1 {
					typ = b2s(keyName(val, w.scratch[:]))
				}
			}
			return true
		})
		if types > 1 {
			// Parsers disagree on which tool this is: the dearest reading.
			typ = "mcp_toolset"
			w.fixed += definedToolTokens
		}
		switch typ {
		case "", "custom", "function":
		case "mcp_toolset":
			w.fixed += w.cfg.UnsizedTokens
		default:
			w.fixed += definedToolTokens
		}
		w.rawText(w.b[t:e])
		return e
	})
	if any {
		w.fixed += toolUseSystemTokens
	}
	return w.fail(end)
}

func (w *walker) unsizedEach(v int) int {
	if w.b[v] != '[' {
		return w.rawAt(v)
	}
	return w.fail(elems(w.b, v, func(x int) int {
		w.fixed += w.cfg.UnsizedTokens
		return w.skip(x)
	}))
}

// content is a message's (or a tool result's, a system prompt's) content
// at depth: a string, or an array of blocks.
func (w *walker) content(v, depth int) int {
	if depth > maxWalkDepth {
		return w.rawAt(v)
	}
	switch w.b[v] {
	case '"':
		return w.leafAt(v)
	case '[':
		return w.fail(elems(w.b, v, func(x int) int { return w.block(x, depth+1, false) }))
	case 'n':
		return w.skip(v)
	}
	return w.rawAt(v)
}

// snapshot is the walker's counts, to count a block again.
type snapshot struct {
	text, over, raw, fixed, pdfPages int64
	buf                              int
}

func (w *walker) snap() snapshot {
	return snapshot{w.text, w.over, w.raw, w.fixed, w.pdfPages, len(w.buf)}
}

func (w *walker) restore(s snapshot) {
	w.text, w.over, w.raw, w.fixed, w.pdfPages, w.buf = s.text, s.over, s.raw, s.fixed, s.pdfPages, w.buf[:s.buf]
}

// internType returns the block types the walk knows as constants, so that
// a type read from scratch space survives further reading.
func internType(s string) string {
	for _, t := range knownTypes {
		if s == t {
			return t
		}
	}
	return strings.Clone(s)
}

var knownTypes = [...]string{"text", "image", "image_url", "input_audio", "document", "file", "tool_use",
	"server_tool_use", "mcp_tool_use", "tool_result", "mcp_tool_result", "search_result", "thinking",
	"redacted_thinking"}

// putOff is a block member read before the block's type.
type putOff struct {
	key  []byte
	v, e int
}

// block counts one content block at depth. In a generic walk (inside a
// server tool result) a block of unknown type is walked member by member
// instead of counted raw, so the documents and images inside are found.
func (w *walker) block(x, depth int, generic bool) int {
	if depth > maxWalkDepth {
		return w.rawAt(x)
	}
	switch w.b[x] {
	case '{':
	case '"':
		w.fixed += perBlockTokens
		return w.leafAt(x)
	case '[':
		if generic {
			return w.fail(elems(w.b, x, func(y int) int { return w.block(y, depth+1, true) }))
		}
		return w.rawAt(x)
	case 'n':
		return w.skip(x)
	default:
		return w.rawAt(x)
	}
	start := w.snap()
	w.fixed += perBlockTokens
	var (
		typ      string
		sawType  bool
		conflict bool
		small    [4]putOff
		later    = small[:0]
		nested   bool // a container is among the members put off
	)
	end := members(w.b, x, func(key []byte, v int) int {
		name := w.name(key)
		if name == "type" {
			t, e := w.str(v)
			if !sawType {
				typ, sawType = internType(t), true
			} else if t != typ {
				conflict = true
			}
			return e
		}
		if !sawType {
			e := valueEnd(w.b, v)
			later = append(later, putOff{key, v, e})
			nested = nested || w.b[v] == '{' || w.b[v] == '['
			return e
		}
		return w.member(typ, name, v, depth, generic)
	})
	if end < 0 {
		return len(w.b)
	}
	if conflict || nested && w.deferred >= maxDeferred {
		// Two types: parsers disagree on what the block is. Or content
		// before the type, inside too many others like it to be read
		// once more. Either way it is sized as nothing in particular.
		w.restore(start)
		w.fixed += perBlockTokens
		w.dearest(x, end)
		return end
	}
	w.deferred++
	for _, p := range later {
		w.member(typ, w.name(p.key), p.v, depth, generic)
	}
	w.deferred--
	w.finish(typ, x, end, generic)
	return end
}

// finish adds what a block of type typ counts as a whole.
func (w *walker) finish(typ string, x, end int, generic bool) {
	switch {
	case typ == "image", typ == "image_url":
		w.fixed += w.cfg.ImageTokens
	case w.knownType(typ), generic, strings.HasSuffix(typ, "_tool_result"):
	default:
		w.rawBytes(w.b[x:end]) // an unknown block type
	}
}

func (w *walker) knownType(typ string) bool {
	for _, t := range knownTypes {
		if typ == t {
			return true
		}
	}
	return false
}

// member counts the member name (value at v) of a block of type typ at
// depth, and returns the value's end.
func (w *walker) member(typ, name string, v, depth int, generic bool) int {
	switch name {
	case "cache_control", "id", "tool_use_id", "is_error":
		return w.skip(v)
	}
	switch typ {
	case "text":
		if name == "text" {
			return w.leafAt(v)
		}
	case "image", "image_url", "input_audio":
		// A fixed bound (images), or nothing: Anthropic's OpenAI
		// compatibility layer strips audio input.
		return w.skip(v)
	case "document":
		switch name {
		case "source":
			return w.document(v, depth+1)
		case "title", "context":
			return w.leafAt(v)
		}
	case "file":
		if name == "file" {
			return w.chatFile(v)
		}
		return w.skip(v)
	case "tool_use", "server_tool_use", "mcp_tool_use":
		switch name {
		case "name", "server_name":
			return w.leafAt(v)
		case "input":
			return w.rawTextAt(v)
		}
	case "tool_result", "mcp_tool_result":
		if name == "content" {
			return w.content(v, depth+1)
		}
	case "search_result":
		switch name {
		case "source", "title":
			return w.leafAt(v)
		case "content":
			return w.content(v, depth+1)
		}
	case "thinking":
		if name == "thinking" {
			return w.leafAt(v)
		}
	case "redacted_thinking":
	default:
		if !generic && !strings.HasSuffix(typ, "_tool_result") {
			return w.skip(v) // counted raw as a whole
		}
		// A server tool's result (web search, web fetch, code execution)
		// or something inside one: walked for text, documents, images.
		switch w.b[v] {
		case '"':
			return w.leafAt(v)
		case '{', '[':
			return w.block(v, depth+1, true)
		}
	}
	return w.rawAt(v)
}

// document counts a document block's source at v.
func (w *walker) document(v, depth int) int {
	if w.b[v] != '{' {
		if w.b[v] != 'n' {
			w.fixed += w.cfg.UnsizedTokens
		}
		return w.skip(v)
	}
	var typ, mediaType string
	var data []byte
	content := -1
	var seen [4]bool // type, media_type, data, content
	dup := false
	mark := func(i int) {
		dup = dup || seen[i]
		seen[i] = true
	}
	// Content after the type "content" is read in place; content before
	// any type is skipped over, and read once the type is known.
	start, inPlace := w.snap(), false
	end := members(w.b, v, func(key []byte, val int) int {
		switch w.name(key) {
		case "type":
			mark(0)
			t, e := w.str(val)
			typ = strings.Clone(t)
			return e
		case "media_type":
			mark(1)
			t, e := w.str(val)
			mediaType = strings.Clone(t)
			return e
		case "data":
			mark(2)
			e := valueEnd(w.b, val)
			data = w.b[val:e]
			return e
		case "content":
			mark(3)
			content = val
			if typ == "content" && !dup {
				inPlace = true
				return w.content(val, depth+1)
			}
		}
		return valueEnd(w.b, val)
	})
	if end < 0 {
		return len(w.b)
	}
	if dup || typ == "content" && !inPlace && content >= 0 && w.b[content] == '[' && w.deferred >= maxDeferred {
		// A source with a repeated field means different things to a
		// first-wins and a last-wins parser; content too deep among
		// others read twice is not read a third time. Either way the
		// source is sized at its dearest.
		w.restore(start)
		w.dearest(v, end)
		return end
	}
	switch typ {
	case "text":
		w.leaf(data)
	case "content":
		if content >= 0 && !inPlace {
			w.deferred++
			w.content(content, depth+1)
			w.deferred--
		}
	case "base64":
		if strings.HasPrefix(mediaType, "text/") {
			w.raw += decodedLen(strContent(data))
		} else {
			w.pdf(strContent(data))
		}
	case "url":
		w.pdfPages += w.cfg.MaxPDFPages
	default: // "file", or a source the relay does not know
		w.fixed += w.cfg.UnsizedTokens
	}
	return end
}

// pdf counts the pages of base64 PDF data (raw JSON string content).
func (w *walker) pdf(data []byte) {
	n, ok := pdfPages(data)
	if !ok {
		n = w.cfg.MaxPDFPages
	}
	w.pdfPages += min(n, w.cfg.MaxPDFPages)
}

// chatFile counts an OpenAI-format file part's file at v: {"file_data":
// "data:application/pdf;base64,...", "file_id", "filename"}.
func (w *walker) chatFile(v int) int {
	e := valueEnd(w.b, v)
	var fileData []byte
	forEachMember(w.b[v:e], func(key, val []byte) bool {
		if w.name(key) == "file_data" {
			fileData = strContent(val)
		}
		return true
	})
	header, payload, found := bytes.Cut(fileData, []byte(","))
	switch {
	case fileData == nil, !found, !bytes.HasSuffix(header, []byte(";base64")):
		w.fixed += w.cfg.UnsizedTokens
	case bytes.HasPrefix(header, []byte("data:application/pdf")):
		w.pdf(payload)
	case bytes.HasPrefix(header, []byte("data:text/")):
		w.raw += decodedLen(payload)
	default:
		w.fixed += w.cfg.UnsizedTokens
	}
	return e
}

// decodedLen bounds the bytes base64 of this raw length decodes to.
func decodedLen(b []byte) int64 { return (int64(len(b))*3 + 3) / 4 }
