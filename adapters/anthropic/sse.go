package anthropic

import (
	"bytes"
	"unicode/utf8"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
)

// maxLine bounds a single buffered SSE line (and an event's data). A line
// longer than this is dropped rather than grown without limit; Anthropic's
// events are a few hundred bytes, so only a hostile upstream gets there.
const maxLine = 1 << 20

// textBudget bounds the streamed text kept per stream for estimating the
// output tokens of an interrupted stream. Kept text is tokenised exactly;
// text past the budget counts one token per byte (a byte-level BPE never
// makes more tokens than bytes), so the estimate never undercounts and
// memory per open stream stays small. Most replies fit whole.
const textBudget = 16 << 10

// sseLines splits a text/event-stream into events, following the SSE rules:
// lines end in \n, \r\n or \r; "event:" names the event, "data:" lines are
// joined with \n, lines starting with ':' are comments, and an empty line
// dispatches. It copies only the bytes of a line split across chunks.
type sseLines struct {
	line    []byte // a partial line carried over from the previous chunk
	skipLF  bool   // the previous chunk ended in \r: a leading \n is part of that line ending
	tooLong bool   // the current line overflowed maxLine and is being dropped

	event []byte
	data  []byte
	nData int
}

// eventSink receives each complete event.
type eventSink interface {
	onEvent(typ, data []byte)
}

func (s *sseLines) feed(b []byte, sink eventSink) {
	if s.skipLF && len(b) > 0 {
		s.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			s.carry(b)
			return
		}
		var line []byte
		if len(s.line) > 0 || s.tooLong {
			s.carry(b[:i])
			line = s.line
		} else {
			line = b[:i]
		}
		if !s.tooLong {
			s.processLine(line, sink)
		}
		s.line = s.line[:0]
		s.tooLong = false
		if b[i] == '\r' {
			if i+1 < len(b) {
				if b[i+1] == '\n' {
					i++
				}
			} else {
				s.skipLF = true
			}
		}
		b = b[i+1:]
	}
}

func (s *sseLines) carry(b []byte) {
	if s.tooLong {
		return
	}
	if len(s.line)+len(b) > maxLine {
		s.tooLong = true
		s.line = s.line[:0]
		return
	}
	s.line = append(s.line, b...)
}

func (s *sseLines) processLine(line []byte, sink eventSink) {
	if len(line) == 0 {
		if s.nData > 0 {
			sink.onEvent(s.event, s.data)
		}
		s.event = s.event[:0]
		s.data = s.data[:0]
		s.nData = 0
		return
	}
	if line[0] == ':' {
		return // comment
	}
	field, value := line, []byte(nil)
	if c := bytes.IndexByte(line, ':'); c >= 0 {
		field, value = line[:c], line[c+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(field) {
	case "event":
		s.event = append(s.event[:0], value...)
	case "data":
		if s.nData > 0 {
			if len(s.data)+1+len(value) > maxLine {
				return
			}
			s.data = append(s.data, '\n')
		}
		s.data = append(s.data, value...)
		s.nData++
	}
}

func (s *sseLines) reset() {
	*s = sseLines{line: s.line[:0], event: s.event[:0], data: s.data[:0]}
}

// outputText keeps relayed text for an output estimate, within textBudget.
type outputText struct {
	kept     []byte
	overflow int64 // bytes past the budget
}

func (t *outputText) add(s string) {
	room := textBudget - len(t.kept)
	if len(s) > room {
		cut := max(room, 0)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		t.overflow += int64(len(s) - cut)
		s = s[:cut]
	}
	t.kept = append(t.kept, s...)
}

// estimate is the exact cl100k_base count of the kept text plus one token
// per byte of the rest: no extrapolation from a sample, so the shape of the
// text cannot make it undercount.
func (t *outputText) estimate() int64 {
	return countText(t.kept) + t.overflow
}

func (t *outputText) reset() { *t = outputText{kept: t.kept[:0]} }

// StreamParser extracts usage from a Messages text/event-stream body as it
// passes through. Feed it every chunk in order; it never delays or alters
// the stream. Event types are taken from the data's "type" when no event
// name was sent; unknown events are ignored.
type StreamParser struct {
	sse sseLines

	fields   usageFields
	model    string
	errType  string
	sawStart bool
	sawDelta bool // a message_delta with usage.output_tokens
	sawStop  bool
	events   int
	text     outputText
}

// Feed consumes the next chunk of the stream.
func (p *StreamParser) Feed(b []byte) { p.sse.feed(b, p) }

func (p *StreamParser) onEvent(event, data []byte) {
	p.events++
	js := b2s(data)
	typ := b2s(event)
	if typ == "" {
		typ = gjson.Get(js, "type").Str
	}
	switch typ {
	case "content_block_delta":
		d := gjson.Get(js, "delta")
		var t gjson.Result
		switch d.Get("type").Str {
		case "text_delta":
			t = d.Get("text")
		case "input_json_delta":
			t = d.Get("partial_json")
		case "thinking_delta":
			t = d.Get("thinking")
		default:
			return
		}
		if t.Type == gjson.String {
			p.text.add(t.Str)
		}
	case "message_start":
		p.sawStart = true
		m := gjson.Get(js, "message")
		if s := m.Get("model"); s.Type == gjson.String {
			p.model = clone(cut(s.Str, maxLabel))
		}
		p.fields.apply(s2b(m.Get("usage").Raw))
	case "message_delta":
		u := gjson.Get(js, "usage")
		if u.Get("output_tokens").Type == gjson.Number {
			p.sawDelta = true
		}
		p.fields.apply(s2b(u.Raw))
	case "message_stop":
		p.sawStop = true
	case "error":
		e := gjson.Get(js, "error.type")
		if e.Type == gjson.String && e.Str != "" {
			p.errType = clone(cut(e.Str, maxLabel))
		} else {
			p.errType = "api_error"
		}
	}
}

// StreamResult is what a stream reported, and what had to be estimated.
type StreamResult struct {
	// Usage is the stream's top-level counts; with Iterations the caller
	// bills domain.BilledUsage(Usage, Iterations).
	Usage        domain.Usage
	Iterations   []domain.Iteration
	ServerTools  domain.ServerToolUse
	ServiceTier  string
	Speed        string
	InferenceGeo string
	Model        string
	// ErrorType is the error.type of an error event, "" if none.
	ErrorType string
	// SawMessageStart: the input and cache counts came from the upstream.
	SawMessageStart bool
	// Complete: a message_delta with output_tokens arrived, so the output
	// count is the upstream's own.
	Complete bool
	// SawMessageStop: the stream ended normally.
	SawMessageStop bool
	// OutputEstimated: the output count was estimated from relayed text.
	OutputEstimated bool
	Events          int
}

// Result reports the usage seen so far. When no final message_delta arrived
// (the client hung up, the upstream dropped), output tokens are estimated
// from the relayed text deltas (see outputText.estimate), and
// OutputEstimated is set if the estimate exceeds what the upstream had
// reported. Input counts are whatever message_start said; without it the
// caller estimates them from the request (see SawMessageStart).
func (p *StreamParser) Result() StreamResult {
	f := p.fields
	r := StreamResult{
		Usage:           f.Usage,
		Iterations:      f.Iterations,
		ServerTools:     f.ServerTools,
		ServiceTier:     f.ServiceTier,
		Speed:           f.Speed,
		InferenceGeo:    f.InferenceGeo,
		Model:           p.model,
		ErrorType:       p.errType,
		SawMessageStart: p.sawStart,
		Complete:        p.sawDelta,
		SawMessageStop:  p.sawStop,
		Events:          p.events,
	}
	if !p.sawDelta {
		if est := p.text.estimate(); est > r.Usage.OutputTokens {
			r.Usage.OutputTokens = est
			r.OutputEstimated = true
		}
	}
	return r
}

// Reset makes p ready for another stream, keeping its buffers.
func (p *StreamParser) Reset() {
	sse, text := p.sse, p.text
	sse.reset()
	text.reset()
	*p = StreamParser{sse: sse, text: text}
}

// ChatStreamParser extracts usage from an OpenAI-format chat.completions
// stream (Anthropic's OpenAI SDK compatibility layer): "data: {...}" chunks
// ending with "data: [DONE]". Usage arrives in a final chunk with empty
// choices when the request set stream_options.include_usage; the model is
// named by every chunk. Relayed text (choices[].delta.content and tool-call
// arguments) is kept as StreamParser keeps it, for an estimate when no usage
// arrived. Feed it every chunk in order.
type ChatStreamParser struct {
	sse sseLines

	counts  chatCounts
	model   string
	errType string
	sawDone bool
	events  int
	text    outputText
}

// ChatStreamResult is what an OpenAI-format stream reported.
type ChatStreamResult struct {
	// Usage maps the chunk's usage as chatCounts describes; without a
	// usage chunk, OutputTokens is the estimate and InputTokens 0 (the
	// caller estimates input from the request).
	Usage     domain.Usage
	Model     string
	ErrorType string
	// HasUsage: a chunk carried usage, so every count is the upstream's.
	HasUsage bool
	// SawDone: "data: [DONE]" arrived; the stream ended normally.
	SawDone bool
	// OutputEstimated: no usage arrived, and the output count was estimated
	// from the relayed text.
	OutputEstimated bool
	Events          int
}

// Feed consumes the next chunk of the stream.
func (p *ChatStreamParser) Feed(b []byte) { p.sse.feed(b, p) }

func (p *ChatStreamParser) onEvent(_, data []byte) {
	p.events++
	if string(bytes.TrimSpace(data)) == "[DONE]" {
		p.sawDone = true
		return
	}
	js := b2s(data)
	root := gjson.Parse(js)
	if !root.IsObject() {
		return
	}
	root.ForEach(func(key, v gjson.Result) bool {
		switch key.Str {
		case "model":
			if v.Type == gjson.String {
				p.model = clone(cut(v.Str, maxLabel))
			}
		case "usage":
			p.counts.apply(s2b(v.Raw))
		case "choices":
			v.ForEach(func(_, c gjson.Result) bool {
				d := c.Get("delta")
				if t := d.Get("content"); t.Type == gjson.String {
					p.text.add(t.Str)
				}
				if t := d.Get("reasoning_content"); t.Type == gjson.String {
					p.text.add(t.Str)
				}
				if t := d.Get("function_call.arguments"); t.Type == gjson.String {
					p.text.add(t.Str)
				}
				d.Get("tool_calls").ForEach(func(_, tc gjson.Result) bool {
					if t := tc.Get("function.name"); t.Type == gjson.String {
						p.text.add(t.Str)
					}
					if t := tc.Get("function.arguments"); t.Type == gjson.String {
						p.text.add(t.Str)
					}
					return true
				})
				return true
			})
		case "error":
			if !v.IsObject() {
				return true
			}
			p.errType = "api_error"
			if t := v.Get("type"); t.Type == gjson.String && t.Str != "" {
				p.errType = clone(cut(t.Str, maxLabel))
			} else if c := v.Get("code"); c.Type == gjson.String && c.Str != "" {
				p.errType = clone(cut(c.Str, maxLabel))
			}
		}
		return true
	})
}

// Result reports the usage seen so far; without a usage chunk the output is
// estimated from the relayed text (see outputText.estimate).
func (p *ChatStreamParser) Result() ChatStreamResult {
	r := ChatStreamResult{
		Model:     p.model,
		ErrorType: p.errType,
		HasUsage:  p.counts.seen,
		SawDone:   p.sawDone,
		Events:    p.events,
	}
	if p.counts.seen {
		r.Usage = p.counts.usage()
		return r
	}
	if est := p.text.estimate(); est > 0 {
		r.Usage.OutputTokens = est
		r.OutputEstimated = true
	}
	return r
}

// Reset makes p ready for another stream, keeping its buffers.
func (p *ChatStreamParser) Reset() {
	sse, text := p.sse, p.text
	sse.reset()
	text.reset()
	*p = ChatStreamParser{sse: sse, text: text}
}
