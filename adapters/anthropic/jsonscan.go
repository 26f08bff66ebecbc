package anthropic

import (
	"bytes"
)

// maxCapture bounds each captured top-level value; a larger one is skipped.
const maxCapture = 64 << 10

// structural marks the bytes that change the scanner's state inside a
// nested value.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// JSONScanner reads usage from a JSON reply of any size as it passes
// through, without keeping the body: Feed it every chunk in order, then
// call Result. It tracks nesting and string state byte by byte (skipping
// string bodies with IndexByte) and captures only the values of the
// top-level keys usage, model, type and error, each up to 64 KB (a larger
// value is skipped), reading each as it completes. A "usage"
// nested anywhere below the top level (inside a tool_use input, say) is
// never taken. For a reply whose captured values are under the cap, the
// result is UsageFromJSON's (UsageFromChatJSON's for FormatChat) on the
// whole body. The zero value reads a Messages reply.
type JSONScanner struct {
	// Format is FormatChat for an OpenAI-format chat.completions reply;
	// set it before the first Feed.
	Format Format

	started bool
	done    bool // the root closed, or the body is not an object
	state   uint8
	depth   int
	inStr   bool
	esc     bool // the previous string byte was a backslash
	inKey   bool

	key     [maxKeyRaw]byte
	keyLen  int
	keyLong bool
	target  string // the key whose value is being captured, "" if none
	capOver bool
	capBuf  []byte

	rs replyState
}

const (
	jsBegin   uint8 = iota // before the root
	jsKey                  // expecting a key or the root's end
	jsColon                // after a key
	jsValue                // expecting a value
	jsLiteral              // inside a top-level number or literal
	jsAfter                // after a top-level value
	jsNested               // inside a top-level object or array value
)

// Feed consumes the next chunk of the body.
func (s *JSONScanner) Feed(p []byte) {
	if !s.started {
		s.started = true
		s.rs.chat = s.Format == FormatChat
	}
	capStart := -1 // where the captured value's bytes begin in p
	if s.capturing() {
		capStart = 0
	}
	i := 0
	for i < len(p) && !s.done {
		if s.inStr {
			end, closed := s.scanString(p, i)
			if s.inKey {
				s.addKey(p[i:end], closed)
			}
			i = end
			if !closed {
				break
			}
			s.inStr = false
			if s.inKey {
				s.inKey = false
				s.keyDone()
				continue
			}
			if s.depth == 1 { // a top-level string value ended
				s.valueDone(p, capStart, i)
				capStart = -1
			}
			continue
		}
		c := p[i]
		switch s.state {
		case jsBegin:
			switch {
			case isWS(c):
			case c == '{':
				s.depth, s.state = 1, jsKey
			default:
				s.done = true
			}
		case jsKey:
			switch c {
			case '"':
				s.inStr, s.inKey, s.keyLen, s.keyLong = true, true, 0, false
			case '}':
				s.done = true
			}
		case jsColon:
			if c == ':' {
				s.state = jsValue
			}
		case jsValue:
			if isWS(c) {
				break
			}
			if s.target != "" {
				capStart, s.capOver = i, false
				s.capBuf = s.capBuf[:0]
			}
			switch c {
			case '"':
				s.inStr = true
				s.state = jsAfter // where the string's end leaves us
			case '{', '[':
				s.depth, s.state = 2, jsNested
			default:
				s.state = jsLiteral
			}
		case jsLiteral:
			if c == ',' || c == '}' || isWS(c) {
				s.valueDone(p, capStart, i)
				capStart = -1
				continue // the terminator is read in jsAfter
			}
		case jsAfter:
			switch c {
			case ',':
				s.state = jsKey
			case '}':
				s.done = true
			}
		case jsNested:
			switch c {
			case '"':
				s.inStr = true
			case '{', '[':
				s.depth++
			case '}', ']':
				s.depth--
				if s.depth == 1 {
					s.valueDone(p, capStart, i+1)
					capStart = -1
				}
			default:
				// Numbers, literals, separators, whitespace: skip to the
				// next byte that matters.
				i++
				for i < len(p) && !structural[p[i]] {
					i++
				}
				continue
			}
		}
		i++
	}
	if capStart >= 0 && s.capturing() {
		s.capture(p[capStart:])
	}
}

// capturing reports whether a wanted top-level value is being read.
func (s *JSONScanner) capturing() bool {
	if s.target == "" || s.capOver || s.done {
		return false
	}
	return s.state == jsLiteral || s.state == jsNested || s.inStr && !s.inKey
}

// scanString finds the end of the string that p[i:] continues: the index
// past its closing quote and true, or len(p) and false. Each byte is
// searched at most once for a quote and once for a backslash.
func (s *JSONScanner) scanString(p []byte, i int) (int, bool) {
	if !s.esc {
		// Most strings (keys, labels) are short: a plain loop beats two
		// IndexByte calls.
		i += plainLen(p[i:min(len(p), i+64)])
		if i < len(p) && p[i] == '"' {
			return i + 1, true
		}
	}
	q := -1 // the next quote at or after i, once found
	for i < len(p) {
		if s.esc {
			s.esc = false
			i++
			continue
		}
		if q < i {
			q = bytes.IndexByte(p[i:], '"')
			if q < 0 {
				q = len(p)
			} else {
				q += i
			}
		}
		b := bytes.IndexByte(p[i:q], '\\')
		if b < 0 {
			if q == len(p) {
				return len(p), false
			}
			return q + 1, true
		}
		i += b + 1
		s.esc = true
	}
	return len(p), false
}

func (s *JSONScanner) addKey(b []byte, closed bool) {
	if closed { // the closing quote is not part of the key
		b = b[:len(b)-1]
	}
	if s.keyLen+len(b) > len(s.key) {
		s.keyLong = true
		return
	}
	s.keyLen += copy(s.key[s.keyLen:], b)
}

func (s *JSONScanner) keyDone() {
	s.state, s.target = jsColon, ""
	if s.keyLong {
		return
	}
	var scratch [maxKeyRaw * 2]byte
	raw := s.key[:s.keyLen]
	name := raw
	if bytes.IndexByte(raw, '\\') >= 0 {
		name, _ = appendUnescaped(scratch[:0], raw, -1)
	}
	switch string(name) {
	case "usage":
		s.target = "usage"
	case "model":
		s.target = "model"
	case "type":
		s.target = "type"
	case "error":
		s.target = "error"
	}
}

func (s *JSONScanner) capture(b []byte) {
	if len(s.capBuf)+len(b) > maxCapture {
		s.capOver = true
		s.capBuf = s.capBuf[:0]
		return
	}
	s.capBuf = append(s.capBuf, b...)
}

// valueDone ends a top-level value at p[end]; capStart is where its bytes
// in p began (-1 if they all came in earlier chunks or are not captured).
func (s *JSONScanner) valueDone(p []byte, capStart, end int) {
	s.state = jsAfter
	if s.target == "" {
		return
	}
	if !s.capOver {
		if capStart >= 0 {
			s.capture(p[capStart:end])
		}
		if !s.capOver {
			s.rs.member(s.target, s.capBuf)
		}
	}
	s.target, s.capOver = "", false
	s.capBuf = s.capBuf[:0]
}

// Result reports what the reply said so far.
func (s *JSONScanner) Result() JSONResult {
	if s.state == jsBegin {
		return JSONResult{}
	}
	return s.rs.result()
}

// Reset makes s ready for another reply of the same Format, keeping its
// buffer.
func (s *JSONScanner) Reset() {
	*s = JSONScanner{Format: s.Format, capBuf: s.capBuf[:0]}
}
