package anthropic

import (
	"errors"
	"strconv"

	"github.com/relaystation/relay/domain"
)

// The usage object of a Messages reply, as the API reference and the Go
// SDK (anthropic-sdk-go, type Usage) define it: input_tokens, output_tokens,
// cache_creation_input_tokens, cache_read_input_tokens, cache_creation
// {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}, server_tool_use
// {web_search_requests, web_fetch_requests}, service_tier ("standard",
// "priority", "batch"), speed ("standard", "fast") and inference_geo
// (where inference ran: "us", "global", ...; platform.claude.com, "Data
// residency": "The response usage object includes an inference_geo
// field"). A reply that ran several sampling steps (server-side tool loops,
// compaction, an advisor) also lists usage.iterations, one entry per step
// with its own counts, a "type" ("message", "compaction",
// "advisor_message", ...) and, for a step run by another model, "model"
// (SDK: BetaIterationsUsageItemUnion); the caller bills them with
// domain.BilledUsage. A message_delta event's usage carries the same
// cumulative fields (SDK: MessageDeltaUsage, BetaMessageDeltaUsage).

// maxLabel bounds a label read from a reply (a tier, a geography, an
// iteration type, a model): the relay records them.
const maxLabel = 128

// maxCount bounds a token count read from a reply, far above any real one,
// so that sums of counts never overflow.
const maxCount = 1 << 50

// usageFields is everything a usage object reports.
type usageFields struct {
	Usage        domain.Usage
	Iterations   []domain.Iteration
	ServerTools  domain.ServerToolUse
	ServiceTier  string
	Speed        string
	InferenceGeo string
}

// eachField calls fn with the unescaped name and raw value of each member
// of the object u, in order; nothing if u is not an object. Each member is
// read once, so a field given twice takes its last value.
func eachField(u []byte, fn func(name string, v []byte)) {
	i := skipWS(u, 0)
	if i >= len(u) || u[i] != '{' {
		return
	}
	for i = skipWS(u, i+1); i < len(u) && u[i] == '"'; {
		ke, plain := stringEndPlain(u, i)
		key := u[i:ke]
		if i = skipWS(u, ke); i >= len(u) || u[i] != ':' {
			return
		}
		v := skipWS(u, i+1)
		if v >= len(u) {
			return
		}
		ve := valueEnd(u, v)
		name := ""
		if plain {
			name = b2s(key[1 : len(key)-1])
		} else {
			name = keyString(key)
		}
		fn(name, u[v:ve])
		if i = skipWS(u, ve); i >= len(u) || u[i] != ',' {
			return
		}
		i = skipWS(u, i+1)
	}
}

// apply copies every field present in the usage object u; absent or null
// fields keep their earlier value, so across events the last reported
// value wins per field. A reported iterations list replaces the earlier one
// (it is cumulative).
func (d *usageFields) apply(u []byte) {
	eachField(u, func(name string, v []byte) {
		switch name {
		case "server_tool_use":
			eachField(v, func(name string, v []byte) {
				switch name {
				case "web_search_requests":
					setCount(&d.ServerTools.WebSearchRequests, v)
				case "web_fetch_requests":
					setCount(&d.ServerTools.WebFetchRequests, v)
				}
			})
		case "service_tier":
			setLabel(&d.ServiceTier, v)
		case "speed":
			setLabel(&d.Speed, v)
		case "inference_geo":
			setLabel(&d.InferenceGeo, v)
		case "iterations":
			if kind(v) != '[' {
				return
			}
			d.Iterations = d.Iterations[:0:0]
			forEachElem(v, func(it []byte) bool {
				if kind(it) == '{' {
					var x domain.Iteration
					eachField(it, func(name string, v []byte) {
						switch name {
						case "type":
							setLabel(&x.Type, v)
						case "model":
							setLabel(&x.Model, v)
						default:
							usageField(&x.Usage, name, v)
						}
					})
					d.Iterations = append(d.Iterations, x)
				}
				return true
			})
		default:
			usageField(&d.Usage, name, v)
		}
	})
}

// applyUsage copies the token counts present in the usage object u.
func applyUsage(dst *domain.Usage, u []byte) {
	eachField(u, func(name string, v []byte) { usageField(dst, name, v) })
}

func usageField(dst *domain.Usage, name string, v []byte) {
	switch name {
	case "input_tokens":
		setCount(&dst.InputTokens, v)
	case "output_tokens":
		setCount(&dst.OutputTokens, v)
	case "cache_creation_input_tokens":
		setCount(&dst.CacheCreationInputTokens, v)
	case "cache_read_input_tokens":
		setCount(&dst.CacheReadInputTokens, v)
	case "cache_creation":
		eachField(v, func(name string, v []byte) {
			switch name {
			case "ephemeral_5m_input_tokens":
				setCount(&dst.CacheCreation5mTokens, v)
			case "ephemeral_1h_input_tokens":
				setCount(&dst.CacheCreation1hTokens, v)
			}
		})
	}
}

// setCount stores a non-negative number (a fraction truncated, an exponent
// applied, at most maxCount); anything else keeps the old value.
func setCount(f *int64, v []byte) {
	if len(v) == 0 || v[0] == '-' || v[0] < '0' || v[0] > '9' {
		return
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			x, err := strconv.ParseFloat(b2s(v), 64)
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return
			}
			*f = int64(min(x, maxCount))
			return
		}
		n = min(n*10+int64(c-'0'), maxCount)
	}
	*f = n
}

// setLabel stores a string value, cut to maxLabel bytes.
func setLabel(f *string, v []byte) {
	c := strContent(v)
	if c == nil {
		return
	}
	// The common values (service tiers, speeds, regions) are interned, so
	// reading them allocates nothing.
	for _, known := range knownLabels {
		if string(c) == known {
			*f = known
			return
		}
	}
	out, _ := appendUnescaped(make([]byte, 0, min(len(c), maxLabel)), c, maxLabel)
	*f = string(out)
}

var knownLabels = [...]string{"standard", "priority", "batch", "fast", "us", "global", "eu"}

// cut shortens s to at most n bytes without splitting a character.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// chatCounts are the usage counts of an OpenAI-format reply, kept as
// reported so that a later report replaces each one.
//
// Anthropic's OpenAI SDK compatibility layer (platform.claude.com, "OpenAI
// SDK compatibility") fills usage.prompt_tokens, usage.completion_tokens and
// usage.total_tokens, and does not support prompt caching, so
// prompt_tokens_details stays empty there. Should cached_tokens appear, it
// is read with OpenAI's meaning: prompt_tokens includes the cached tokens.
// So InputTokens = prompt_tokens - cached_tokens (never below zero) and
// CacheReadInputTokens = cached_tokens: nothing is counted twice, and a
// cached count larger than prompt_tokens is kept whole rather than dropped.
type chatCounts struct {
	prompt, completion, cached int64
	seen                       bool
}

func (c *chatCounts) apply(u []byte) {
	if kind(u) != '{' {
		return
	}
	c.seen = true
	eachField(u, func(name string, v []byte) {
		switch name {
		case "prompt_tokens":
			setCount(&c.prompt, v)
		case "completion_tokens":
			setCount(&c.completion, v)
		case "prompt_tokens_details":
			eachField(v, func(name string, v []byte) {
				if name == "cached_tokens" {
					setCount(&c.cached, v)
				}
			})
		}
	})
}

func (c *chatCounts) usage() domain.Usage {
	return domain.Usage{
		InputTokens:          max(c.prompt-c.cached, 0),
		OutputTokens:         c.completion,
		CacheReadInputTokens: c.cached,
	}
}

// JSONResult is what a non-streaming response body reported.
type JSONResult struct {
	// Usage is the reply's top-level counts; for a reply with Iterations
	// the caller bills domain.BilledUsage(Usage, Iterations).
	Usage        domain.Usage
	Iterations   []domain.Iteration
	ServerTools  domain.ServerToolUse
	ServiceTier  string
	Speed        string
	InferenceGeo string
	Model        string
	// HasUsage: the body had a usage object.
	HasUsage bool
	// ErrorType is error.type of an error body ({"type":"error",...}, or
	// for FormatChat {"error":{...}}).
	ErrorType string
}

// replyState reads a reply's top-level members in order; UsageFromJSON and
// JSONScanner share it, so they agree.
type replyState struct {
	chat    bool
	fields  usageFields
	counts  chatCounts
	model   string
	has     bool
	isErr   bool // the last "type" was "error"
	errObj  bool // the last "error" was an object (an OpenAI-format error)
	errType string
}

func (s *replyState) member(key string, v []byte) {
	switch key {
	case "usage":
		if kind(v) == '{' {
			s.has = true
			if s.chat {
				s.counts.apply(v)
			} else {
				s.fields.apply(v)
			}
		}
	case "model":
		setLabel(&s.model, v)
	case "type":
		var t string
		setLabel(&t, v)
		s.isErr = t == "error"
	case "error":
		s.errType = ""
		s.errObj = kind(v) == '{'
		var typ, code string
		eachField(v, func(name string, v []byte) {
			switch name {
			case "type":
				setLabel(&typ, v)
			case "code":
				setLabel(&code, v)
			}
		})
		switch {
		case typ != "":
			s.errType = typ
		case s.chat && code != "":
			s.errType = code
		}
	}
}

func (s *replyState) result() JSONResult {
	r := JSONResult{
		Usage: s.fields.Usage, Iterations: s.fields.Iterations, ServerTools: s.fields.ServerTools,
		ServiceTier: s.fields.ServiceTier, Speed: s.fields.Speed, InferenceGeo: s.fields.InferenceGeo,
		Model: s.model, HasUsage: s.has,
	}
	if s.chat {
		r.Usage = s.counts.usage()
	}
	if s.isErr || s.chat && s.errObj {
		r.ErrorType = "api_error"
		if s.errType != "" {
			r.ErrorType = s.errType
		}
	}
	return r
}

// UsageFromJSON reads usage, model and any error type from a whole Messages
// (or count_tokens) response body without decoding the content. For a reply
// of unknown size, feed a JSONScanner instead.
func UsageFromJSON(body []byte) JSONResult {
	return usageFrom(body, false)
}

// UsageFromChatJSON is UsageFromJSON for an OpenAI-format chat.completions
// reply (see chatCounts for how its counts map to domain.Usage).
func UsageFromChatJSON(body []byte) JSONResult {
	return usageFrom(body, true)
}

func usageFrom(body []byte, chat bool) JSONResult {
	s := replyState{chat: chat}
	if kind(body[skipWS(body, 0):]) != '{' {
		return JSONResult{}
	}
	forEachMember(body[skipWS(body, 0):], func(key, v []byte) bool {
		s.member(keyString(key), v)
		return true
	})
	return s.result()
}
