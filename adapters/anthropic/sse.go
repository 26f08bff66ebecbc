package anthropic

import (
	"bytes"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
)

// maxLine bounds a single buffered SSE line (and an event's data). A line
// longer than this is dropped rather than grown without limit; Anthropic's
// events are a few hundred bytes, so only a hostile upstream gets there.
const maxLine = 1 << 20

// textBudget bounds the streamed text kept for estimating output tokens of
// an interrupted stream; text past it is counted in bytes and extrapolated.
// It keeps memory per open stream small.
const textBudget = 4 * TokenizeBudget

// StreamParser extracts usage from a text/event-stream body as it passes
// through. Feed it every chunk in order; it copies only the bytes of a line
// that is split across chunks, and never delays or alters the stream.
//
// It follows the SSE rules: lines end in \n, \r\n or \r; "event:" names the
// event, "data:" lines are joined with \n, lines starting with ':' are
// comments, and an empty line dispatches. Event types are taken from the
// data's "type" when no event name was sent. Unknown events are ignored.
type StreamParser struct {
	line    []byte // a partial line carried over from the previous chunk
	skipLF  bool   // the previous chunk ended in \r: a leading \n is part of that line ending
	tooLong bool   // the current line overflowed maxLine and is being dropped

	event []byte
	data  []byte
	nData int

	usage        domain.Usage
	model        string
	errType      string
	sawStart     bool
	sawDelta     bool // a message_delta with usage.output_tokens
	sawStop      bool
	events       int
	text         []byte
	textOverflow int
}

// Feed consumes the next chunk of the stream.
func (p *StreamParser) Feed(b []byte) {
	if p.skipLF && len(b) > 0 {
		p.skipLF = false
		if b[0] == '\n' {
			b = b[1:]
		}
	}
	for len(b) > 0 {
		i := bytes.IndexAny(b, "\r\n")
		if i < 0 {
			p.carry(b)
			return
		}
		var line []byte
		if len(p.line) > 0 || p.tooLong {
			p.carry(b[:i])
			line = p.line
		} else {
			line = b[:i]
		}
		if !p.tooLong {
			p.processLine(line)
		}
		p.line = p.line[:0]
		p.tooLong = false
		if b[i] == '\r' {
			if i+1 < len(b) {
				if b[i+1] == '\n' {
					i++
				}
			} else {
				p.skipLF = true
			}
		}
		b = b[i+1:]
	}
}

func (p *StreamParser) carry(b []byte) {
	if p.tooLong {
		return
	}
	if len(p.line)+len(b) > maxLine {
		p.tooLong = true
		p.line = p.line[:0]
		return
	}
	p.line = append(p.line, b...)
}

func (p *StreamParser) processLine(line []byte) {
	if len(line) == 0 {
		p.dispatch()
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
		p.event = append(p.event[:0], value...)
	case "data":
		if p.nData > 0 {
			if len(p.data)+1+len(value) > maxLine {
				return
			}
			p.data = append(p.data, '\n')
		}
		p.data = append(p.data, value...)
		p.nData++
	}
}

func (p *StreamParser) dispatch() {
	defer func() {
		p.event = p.event[:0]
		p.data = p.data[:0]
		p.nData = 0
	}()
	if p.nData == 0 {
		return
	}
	p.events++
	js := b2s(p.data)
	typ := b2s(p.event)
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
			p.addText(t.Str)
		}
	case "message_start":
		p.sawStart = true
		m := gjson.Get(js, "message")
		if s := m.Get("model"); s.Type == gjson.String {
			p.model = clone(s.Str)
		}
		p.applyUsage(m.Get("usage"))
	case "message_delta":
		u := gjson.Get(js, "usage")
		if u.Get("output_tokens").Type == gjson.Number {
			p.sawDelta = true
		}
		p.applyUsage(u)
	case "message_stop":
		p.sawStop = true
	case "error":
		e := gjson.Get(js, "error.type")
		if e.Type == gjson.String && e.Str != "" {
			p.errType = clone(e.Str)
		} else {
			p.errType = "api_error"
		}
	}
}

func (p *StreamParser) addText(s string) {
	room := textBudget - len(p.text)
	if len(s) > room {
		p.textOverflow += len(s) - max(room, 0)
		if room <= 0 {
			return
		}
		s = s[:room]
	}
	p.text = append(p.text, s...)
}

// applyUsage copies every count present in u; absent or null fields keep
// their earlier value, so the last reported value wins.
func (p *StreamParser) applyUsage(u gjson.Result) {
	if !u.IsObject() {
		return
	}
	applyUsage(&p.usage, u)
}

func applyUsage(dst *domain.Usage, u gjson.Result) {
	set := func(f *int64, r gjson.Result) {
		if r.Type == gjson.Number {
			if v := r.Int(); v >= 0 {
				*f = v
			}
		}
	}
	set(&dst.InputTokens, u.Get("input_tokens"))
	set(&dst.OutputTokens, u.Get("output_tokens"))
	set(&dst.CacheCreationInputTokens, u.Get("cache_creation_input_tokens"))
	set(&dst.CacheReadInputTokens, u.Get("cache_read_input_tokens"))
	if cc := u.Get("cache_creation"); cc.IsObject() {
		set(&dst.CacheCreation5mTokens, cc.Get("ephemeral_5m_input_tokens"))
		set(&dst.CacheCreation1hTokens, cc.Get("ephemeral_1h_input_tokens"))
	}
}

// StreamResult is what a stream reported, and what had to be estimated.
type StreamResult struct {
	Usage domain.Usage
	Model string
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
// from the relayed text deltas with cl100k_base, and OutputEstimated is set
// if the estimate exceeds what the upstream had reported. Input counts are
// whatever message_start said; without it the caller estimates them from the
// request (see SawMessageStart).
func (p *StreamParser) Result() StreamResult {
	r := StreamResult{
		Usage:           p.usage,
		Model:           p.model,
		ErrorType:       p.errType,
		SawMessageStart: p.sawStart,
		Complete:        p.sawDelta,
		SawMessageStop:  p.sawStop,
		Events:          p.events,
	}
	if !p.sawDelta {
		est := countSampled(b2s(p.text), p.textOverflow)
		if est > r.Usage.OutputTokens {
			r.Usage.OutputTokens = est
			r.OutputEstimated = true
		}
	}
	return r
}

// Reset makes p ready for another stream, keeping its buffers.
func (p *StreamParser) Reset() {
	*p = StreamParser{line: p.line[:0], event: p.event[:0], data: p.data[:0], text: p.text[:0]}
}
