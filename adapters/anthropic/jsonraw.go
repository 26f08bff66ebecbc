package anthropic

import (
	"bytes"
	"encoding/binary"
	"unicode/utf16"
	"unicode/utf8"
)

// The readers here walk JSON in place with a few small primitives instead of
// gjson's Result values: gjson unescapes every string it passes (allocating a
// copy of a multi-megabyte prompt just to skip it) and its validator recurses
// once per nesting level. These primitives never allocate, never recurse, and
// on malformed input stop early without panicking; callers that need a
// verdict on validity use checkBody first.

// maxNesting bounds the container nesting of a body the relay accepts: far
// deeper than any real request (tool schemas nest a few dozen levels). No
// reader here recurses per level of JSON, but the other parsers a body
// meets (the upstream's, a client's) may.
const maxNesting = 1000

// isWS reports JSON insignificant whitespace.
func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// skipWS returns the index of the first non-whitespace byte at or after i.
func skipWS(b []byte, i int) int {
	for i < len(b) && isWS(b[i]) {
		i++
	}
	return i
}

// plainLen returns the length of the longest prefix of b with no '"', no
// '\\' and no byte of a multi-byte character, reading 8 bytes at a time:
// most JSON strings (keys, labels, English text) are such runs.
func plainLen(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(0x22*ones), x^(0x5C*ones)
		if ((q-ones)&^q|(bs-ones)&^bs|x)&highs != 0 {
			break
		}
	}
	for i < len(b) {
		if c := b[i]; c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
		i++
	}
	return i
}

// stringEnd returns the index just past the closing quote of the string
// whose opening quote is b[i], or len(b) if it never closes.
func stringEnd(b []byte, i int) int {
	e, _ := stringEndPlain(b, i)
	return e
}

// stringEndPlain is stringEnd that also reports whether the string is
// plain: ASCII without escapes, so its content is its text.
func stringEndPlain(b []byte, i int) (int, bool) {
	j := i + 1
	// Most strings (keys, types, labels) are a few bytes: a plain loop
	// finds their end before a wider read would start.
	for n := min(len(b), j+8); j < n; j++ {
		switch c := b[j]; {
		case c == '"':
			return j + 1, true
		case c == '\\' || c >= utf8.RuneSelf:
			return stringEndSlow(b, i, j)
		}
	}
	j += plainLen(b[j:min(len(b), j+64)])
	if j < len(b) && b[j] == '"' {
		return j + 1, true
	}
	return stringEndSlow(b, i, j)
}

// stringEndSlow is stringEndPlain from j, the first byte of the string
// opened at b[i] that is not known to be plain.
func stringEndSlow(b []byte, i, j int) (int, bool) {
	for j < len(b) {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b), false
		}
		q += j
		// The quote is escaped iff an odd number of backslashes precede it.
		n := 0
		for k := q - 1; k > i && b[k] == '\\'; k-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, false
		}
		j = q + 1
	}
	return len(b), false
}

// valueEnd returns the index just past the JSON value starting at b[i]
// (which must not be whitespace). Linear in the value's size; for malformed
// input it returns some index in (i, len(b)].
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); {
			switch b[j] {
			case '"':
				j = stringEnd(b, j)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
			j++
		}
		return len(b)
	default:
		j := i + 1
		for j < len(b) {
			switch b[j] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return j
			}
			j++
		}
		return j
	}
}

// forEachMember calls fn with the raw key (quotes included) and raw value of
// each member of the object in obj (leading whitespace allowed), in order,
// until fn returns false. It reports false if obj is not an object or is
// malformed where the walk stopped.
func forEachMember(obj []byte, fn func(key, val []byte) bool) bool {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return true
	}
	for i < len(obj) {
		if obj[i] != '"' {
			return false
		}
		ke := stringEnd(obj, i)
		key := obj[i:ke]
		i = skipWS(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return false
		}
		i = skipWS(obj, i+1)
		if i >= len(obj) {
			return false
		}
		ve := valueEnd(obj, i)
		if !fn(key, obj[i:ve]) {
			return true
		}
		i = skipWS(obj, ve)
		if i >= len(obj) {
			return false
		}
		switch obj[i] {
		case ',':
			i = skipWS(obj, i+1)
		case '}':
			return true
		default:
			return false
		}
	}
	return false
}

// forEachElem calls fn with each raw element of the array in arr, in order,
// until fn returns false. It reports false if arr is not an array or is
// malformed where the walk stopped.
func forEachElem(arr []byte, fn func(val []byte) bool) bool {
	i := skipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return false
	}
	i = skipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return true
	}
	for i < len(arr) {
		ve := valueEnd(arr, i)
		if !fn(arr[i:ve]) {
			return true
		}
		i = skipWS(arr, ve)
		if i >= len(arr) {
			return false
		}
		switch arr[i] {
		case ',':
			i = skipWS(arr, i+1)
		case ']':
			return true
		default:
			return false
		}
	}
	return false
}

// kind is the first byte of a raw value: '{', '[', '"', 't', 'f', 'n', or a
// number's first byte; 0 for an empty value.
func kind(v []byte) byte {
	if len(v) == 0 {
		return 0
	}
	return v[0]
}

// strContent is the raw content of a JSON string token (between the
// quotes, escapes untouched); nil if v is not a string.
func strContent(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil
	}
	return v[1 : len(v)-1]
}

// maxKeyRaw bounds the raw length of a key that is unescaped for comparison
// with a field name: the longest name compared is 21 bytes, at most 6 raw
// bytes per escaped character.
const maxKeyRaw = 6*24 + 2

// keyName returns the unescaped text of a raw key token, using scratch when
// it has escapes; keys too long to be any field name come back as nil.
func keyName(key []byte, scratch []byte) []byte {
	c := strContent(key)
	if c == nil || len(key) > maxKeyRaw {
		return nil
	}
	if plainLen(c) == len(c) || bytes.IndexByte(c, '\\') < 0 && utf8.Valid(c) {
		return c
	}
	out, _ := appendUnescaped(scratch[:0], c, -1)
	return out
}

// keyString is keyName without scratch space: it points into the token
// unless the key has escapes (rare), which it unescapes into a new string.
func keyString(key []byte) string {
	c := strContent(key)
	if plainLen(c) == len(c) || bytes.IndexByte(c, '\\') < 0 && utf8.Valid(c) {
		return b2s(c)
	}
	if len(key) > maxKeyRaw {
		return ""
	}
	out, _ := appendUnescaped(nil, c, -1)
	return string(out)
}

// appendUnescaped appends the text of the raw string content s to dst as
// encoding/json decodes it: escapes resolved, a surrogate pair combined, a
// lone surrogate or an invalid UTF-8 byte replaced by U+FFFD. With limit >= 0
// it stops before dst would grow past limit bytes, at a character boundary.
// It returns dst and how many bytes of s it consumed.
func appendUnescaped(dst, s []byte, limit int) ([]byte, int) {
	i := 0
	for i < len(s) {
		// Copy the run of plain ASCII up to the next escape or non-ASCII byte.
		j := i
		for j < len(s) && s[j] != '\\' && s[j] < utf8.RuneSelf {
			j++
		}
		if j > i {
			if limit >= 0 && len(dst)+(j-i) > limit {
				j = i + max(limit-len(dst), 0)
				dst = append(dst, s[i:j]...)
				return dst, j
			}
			dst = append(dst, s[i:j]...)
			i = j
			continue
		}
		var r rune
		n := 1
		if s[i] == '\\' {
			if i+1 >= len(s) {
				return dst, len(s)
			}
			n = 2
			switch s[i+1] {
			case '"', '\\', '/':
				r = rune(s[i+1])
			case 'b':
				r = '\b'
			case 'f':
				r = '\f'
			case 'n':
				r = '\n'
			case 'r':
				r = '\r'
			case 't':
				r = '\t'
			case 'u':
				r = hex4(s[i+2:])
				if r < 0 {
					return dst, len(s)
				}
				n = 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if i+7 < len(s) && s[i+6] == '\\' && s[i+7] == 'u' {
						r2 = hex4(s[i+8:])
					}
					if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
						r, n = d, 12
					} else {
						r = utf8.RuneError
					}
				}
			default:
				return dst, len(s)
			}
		} else {
			r, n = utf8.DecodeRune(s[i:])
		}
		if limit >= 0 && len(dst)+utf8.RuneLen(r) > limit {
			return dst, i
		}
		dst = utf8.AppendRune(dst, r)
		i += n
	}
	return dst, i
}

// hex4 decodes four hex digits, -1 if they are not.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// jsonVerdict is what checkJSON found.
type jsonVerdict uint8

const (
	jsonValid jsonVerdict = iota
	jsonInvalid
	jsonTooDeep // valid up to a container nested deeper than maxNesting
)

// checkJSON reports whether b is exactly one JSON value, with optional
// whitespace around it, as RFC 8259 and encoding/json.Valid read it (a
// string may hold any byte but '"', '\\' and the controls below 0x20,
// so invalid UTF-8 is valid JSON, as there), with no container nested
// deeper than maxNesting. It stops at the first error, which is either
// the nesting or the syntax. One pass, without recursion or allocation:
// each byte is read once, runs of plain string bytes eight at a time.
func checkJSON(b []byte) jsonVerdict {
	// objs has bit d set while the container at depth d is an object.
	var objs [maxNesting/64 + 1]uint64
	depth := 0
	i := 0
	for {
		// A value starts at i.
		i = skipWS(b, i)
		if i >= len(b) {
			return jsonInvalid
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth == maxNesting {
				return jsonTooDeep
			}
			w, bit := depth>>6, uint64(1)<<(depth&63)
			closer := byte(']')
			if c == '{' {
				objs[w] |= bit
				closer = '}'
			} else {
				objs[w] &^= bit
			}
			depth++
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == closer {
				i++
				depth--
				break // an empty container: a value ended
			}
			if c == '{' {
				if i = validKey(b, i); i < 0 {
					return jsonInvalid
				}
			}
			continue
		case '"':
			i = validString(b, i)
		case 't':
			i = validLiteral(b, i, "true")
		case 'f':
			i = validLiteral(b, i, "false")
		case 'n':
			i = validLiteral(b, i, "null")
		default:
			i = validNumber(b, i)
		}
		if i < 0 {
			return jsonInvalid
		}
		// A value ended at i: close containers up to the next member.
		for {
			i = skipWS(b, i)
			if depth == 0 {
				if i == len(b) {
					return jsonValid
				}
				return jsonInvalid
			}
			if i >= len(b) {
				return jsonInvalid
			}
			d := depth - 1
			obj := objs[d>>6]>>(d&63)&1 == 1
			if b[i] == ',' {
				i++
				if obj {
					if i = validKey(b, skipWS(b, i)); i < 0 {
						return jsonInvalid
					}
				}
				break
			}
			if obj && b[i] == '}' || !obj && b[i] == ']' {
				i++
				depth--
				continue
			}
			return jsonInvalid
		}
	}
}

// validKey reads an object key and its colon at b[i]: the index after the
// colon, -1 if they are not there.
func validKey(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	if i = validString(b, i); i < 0 {
		return -1
	}
	i = skipWS(b, i)
	if i >= len(b) || b[i] != ':' {
		return -1
	}
	return i + 1
}

// validString reads the string whose opening quote is b[i]: the index past
// its closing quote, -1 if it is not a valid JSON string.
func validString(b []byte, i int) int {
	j := i + 1
	for {
		j += stringRunLen(b[j:])
		if j >= len(b) {
			return -1
		}
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			if j+1 >= len(b) {
				return -1
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if hex4(b[j+2:]) < 0 {
					return -1
				}
				j += 6
			default:
				return -1
			}
		default: // a control character
			return -1
		}
	}
}

// stringRunLen is the length of the longest prefix of b with no '"', no
// '\\' and no control character (below 0x20), read 8 bytes at a time.
func stringRunLen(b []byte) int {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q, bs := x^(0x22*ones), x^(0x5C*ones)
		if ((q-ones)&^q|(bs-ones)&^bs|(x-0x20*ones)&^x)&highs != 0 {
			break
		}
	}
	for i < len(b) {
		if c := b[i]; c == '"' || c == '\\' || c < 0x20 {
			break
		}
		i++
	}
	return i
}

// validLiteral reads lit at b[i]: the index past it, -1 if it is not there.
func validLiteral(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// validNumber reads a JSON number at b[i]: -?(0|[1-9][0-9]*)(.[0-9]+)?
// ([eE][+-]?[0-9]+)?; the index past it, -1 if there is none.
func validNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return -1
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

// digits returns the index of the first byte at or after i that is not a
// decimal digit.
func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// members walks the object whose '{' is b[i], calling fn with each raw key
// and the index of its value's first byte; fn returns the index just past
// the value (it may parse the value itself, so nothing is scanned twice).
// members returns the index just past the closing '}', or -1 if the object
// is malformed.
func members(b []byte, i int, fn func(key []byte, v int) int) int {
	if i >= len(b) || b[i] != '{' {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) {
		if b[i] != '"' {
			return -1
		}
		ke := stringEnd(b, i)
		key := b[i:ke]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return -1
		}
		v := skipWS(b, i+1)
		if v >= len(b) {
			return -1
		}
		e := fn(key, v)
		if e <= v || e > len(b) {
			e = valueEnd(b, v)
		}
		i = skipWS(b, e)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			return i + 1
		default:
			return -1
		}
	}
	return -1
}

// elems is members for the array whose '[' is b[i].
func elems(b []byte, i int, fn func(v int) int) int {
	if i >= len(b) || b[i] != '[' {
		return -1
	}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for i < len(b) {
		e := fn(i)
		if e <= i || e > len(b) {
			e = valueEnd(b, i)
		}
		i = skipWS(b, e)
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case ']':
			return i + 1
		default:
			return -1
		}
	}
	return -1
}
