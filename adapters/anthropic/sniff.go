// Package anthropic knows the shapes of Anthropic's Messages API that the
// relay must read without re-encoding: the request fields that admission
// needs (model, stream, max_tokens and an input-token estimate), the usage in
// a JSON response, and the usage carried by a server-sent event stream.
//
// Everything here reads bytes in place with gjson (no unmarshalling of a
// large prompt into maps) and never panics on malformed input: the fuzz
// targets in this package pin that.
package anthropic

import (
	"unsafe"

	"github.com/tidwall/gjson"
)

// Request is what the relay learns from a request body.
type Request struct {
	Model string
	// Stream is the body's "stream": true.
	Stream bool
	// MaxTokens is the body's max_tokens, 0 when absent or not a number.
	MaxTokens int64
	// Valid is false when the body is not a JSON object; the relay still
	// forwards it and lets the upstream answer.
	Valid bool
}

// b2s views b as a string without copying. The result must not outlive b
// or be retained after b changes; callers clone what they keep.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// Sniff reads model, stream and max_tokens from the top level of body in
// one pass that skips over values it does not need (messages are never
// decoded). It allocates only the model string.
func Sniff(body []byte) Request {
	var r Request
	root := gjson.Parse(b2s(body))
	if !root.IsObject() {
		return r
	}
	r.Valid = true
	found := 0
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "model":
			if value.Type == gjson.String {
				r.Model = clone(value.Str)
			}
			found++
		case "stream":
			r.Stream = value.Type == gjson.True
			found++
		case "max_tokens":
			if value.Type == gjson.Number {
				r.MaxTokens = value.Int()
				if r.MaxTokens < 0 {
					r.MaxTokens = 0
				}
			}
			found++
		}
		return found < 3
	})
	return r
}

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}
