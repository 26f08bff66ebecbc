// Package anthropic knows the shapes of Anthropic's wire formats (the
// Messages API, its OpenAI-compatible chat.completions layer, Message
// Batches) that the relay must read without re-encoding: the request fields
// that decide a reservation (read strictly by ParseRequest and ParseBatch),
// bounds and estimates of a request's input tokens (Estimator), and the
// usage in a JSON reply (JSONScanner, UsageFromJSON), in an event stream
// (StreamParser, ChatStreamParser) and in batch results (ScanBatchResults).
//
// Every reader here decides money and faces hostile bytes: it reads in
// place (no unmarshalling of a large prompt into maps), never panics, is
// linear in its input and keeps bounded memory. The fuzz targets in this
// package pin that.
package anthropic

import (
	"unsafe"

	"github.com/relaystation/relay/domain"
)

// Request is what the relay learns from a request body.
type Request struct {
	Model string
	// Stream is the body's "stream": true.
	Stream bool
	// MaxTokens is the body's output bound (max_tokens, or for FormatChat
	// the larger of max_tokens and max_completion_tokens), 0 when absent.
	MaxTokens int64
	// MaxTokensSet: the body named an output bound (ParseRequest only);
	// with MaxTokens 0 it is max_tokens: 0, a cache pre-warm.
	MaxTokensSet bool
	// IncludeUsage: a FormatChat body's stream_options.include_usage is true.
	IncludeUsage bool
	// Speed and InferenceGeo are a FormatMessages body's speed and
	// inference_geo, unescaped; "" when absent.
	Speed        string
	InferenceGeo string
	// WebSearch counts a FormatMessages body's web_search server tools
	// (tools whose type starts with "web_search_") and sums their max_uses.
	WebSearch domain.ToolBound
	// UserID is a FormatMessages body's metadata.user_id, unescaped; ""
	// when absent or null.
	UserID string
	// Valid is set on every Request ParseRequest returns.
	Valid bool
}

// b2s views b as a string without copying. The result must not outlive b
// or be retained after b changes; callers clone what they keep.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// s2b views s as bytes without copying; the result must never be written.
func s2b(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func clone(s string) string {
	if s == "" {
		return ""
	}
	return string([]byte(s))
}
