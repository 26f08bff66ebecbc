package anthropic

import (
	"sync"
	"unicode/utf8"

	"github.com/tidwall/gjson"
	"github.com/tiktoken-go/tokenizer"
)

// Token estimates use OpenAI's cl100k_base vocabulary: Claude's tokenizer is
// not public, and cl100k_base is within about 10-20% of it on English text
// and code, which is what a reservation needs. (Count_tokens upstream would
// be exact but costs a round trip per request.)
//
// Tokenising is a regexp-driven BPE and costs about half a microsecond per
// token (~120 µs per KB of text), far more than the rest of admission. So it
// is sampled: at most TokenizeBudget bytes of text per call are tokenised,
// and the rest is extrapolated at the sample's own tokens-per-byte ratio
// (ceil(bytes/4), the usual English figure, when the sample is tiny). The
// result is an estimate for a reservation that settlement later corrects.
const TokenizeBudget = 512

// imageTokens is charged per image or document block instead of tokenising
// its base64 data: about what a 1,000x1,000 image costs (w*h/750).
const imageTokens = 1600

// perMessageTokens is the framing overhead of a message (role, separators).
const perMessageTokens = 4

var codec = sync.OnceValue(func() tokenizer.Codec {
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		// cl100k_base is compiled in; Get cannot fail for it.
		panic("anthropic: cl100k_base codec: " + err.Error())
	}
	return c
})

// Warm loads the tokenizer's vocabulary (tens of milliseconds), so the first
// request does not pay for it. main calls it at start-up.
func Warm() { _ = codec() }

// CountTokens estimates the tokens in text: tokenised up to TokenizeBudget
// bytes, extrapolated for the rest.
func CountTokens(text string) int64 {
	return countSampled(text, 0)
}

// countSampled counts head (at most TokenizeBudget bytes are tokenised) plus
// extra bytes of text that were not kept.
func countSampled(head string, extra int) int64 {
	if len(head) > TokenizeBudget {
		cut := TokenizeBudget
		for cut > 0 && !utf8.RuneStart(head[cut]) {
			cut--
		}
		extra += len(head) - cut
		head = head[:cut]
	}
	if head == "" {
		return int64((extra + 3) / 4)
	}
	n, err := codec().Count(head)
	if err != nil || n == 0 {
		n = (len(head) + 3) / 4
	}
	if extra == 0 {
		return int64(n)
	}
	if len(head) < 256 {
		return int64(n) + int64((extra+3)/4)
	}
	return int64(n) + (int64(extra)*int64(n)+int64(len(head))-1)/int64(len(head))
}

// EstimateInputTokens estimates the input tokens of a Messages request from
// the text of its system prompt, messages and tools. It is only called when
// an estimate is needed (a quota reservation, or an interrupted stream with
// no message_start), never on every request.
func EstimateInputTokens(body []byte) int64 {
	root := gjson.Parse(b2s(body))
	if !root.IsObject() {
		return int64((len(body) + 3) / 4)
	}
	e := estimator{}
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "system", "tools", "tool_choice":
			e.walk(value, 0)
		case "messages":
			value.ForEach(func(_, m gjson.Result) bool {
				e.tokens += perMessageTokens
				e.walk(m.Get("content"), 0)
				return true
			})
		}
		return true
	})
	return e.total()
}

// estimator gathers text up to the budget and counts the overflow in bytes,
// then tokenises once.
type estimator struct {
	buf      []byte
	overflow int
	tokens   int64
}

func (e *estimator) add(s string) {
	room := TokenizeBudget - len(e.buf)
	if room <= 0 {
		e.overflow += len(s)
		return
	}
	if len(s) > room {
		e.overflow += len(s) - room
		s = s[:room]
	}
	if e.buf == nil {
		e.buf = make([]byte, 0, min(TokenizeBudget, 4*len(s)+64))
	}
	e.buf = append(e.buf, s...)
	e.buf = append(e.buf, ' ')
}

func (e *estimator) total() int64 {
	return e.tokens + countSampled(b2s(e.buf), e.overflow)
}

// walk adds every string leaf under v except structural fields; image and
// document blocks count a flat amount.
func (e *estimator) walk(v gjson.Result, depth int) {
	if depth > 32 {
		e.overflow += len(v.Raw)
		return
	}
	switch v.Type {
	case gjson.String:
		e.add(v.Str)
	case gjson.Number:
		e.add(v.Raw)
	case gjson.JSON:
		if v.IsObject() {
			switch v.Get("type").Str {
			case "image", "document":
				e.tokens += imageTokens
				return
			}
		}
		v.ForEach(func(k, val gjson.Result) bool {
			switch k.Str {
			case "type", "id", "tool_use_id", "media_type", "cache_control", "signature":
				return true
			}
			if k.Exists() && k.Str != "" && val.Type == gjson.JSON {
				// Property names of tool schemas and tool inputs are text too.
				e.add(k.Str)
			}
			e.walk(val, depth+1)
			return true
		})
	}
}
