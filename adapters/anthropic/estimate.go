package anthropic

import (
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/tiktoken-go/tokenizer"
)

// Token estimates use OpenAI's cl100k_base vocabulary: Claude's tokenizer is
// not public, and cl100k_base is close to it on English text and code,
// which is what a reservation needs; Estimator.Margin covers the newer
// Claude tokenizer's difference. (count_tokens upstream would be exact but
// costs a round trip per request.) Tokenising is a regexp-driven BPE at
// roughly a microsecond per 8 bytes, so it is bounded: a fixed number of
// bytes is tokenised exactly and the rest counts one token per byte, an
// upper bound for any byte-level BPE. Nothing is extrapolated from a sample:
// the shape of the text (whitespace runs, CJK, random bytes) cannot make a
// count come out low.

// The vocabulary loads on the first exact count, not at start-up: most
// requests are admitted on the byte-count bound and never need it, and a
// relay that never tokenises keeps about 5 MB of RSS (its maps and the
// pages of the compiled-in vocabulary) it would otherwise hold for ever.
// The first exact count waits for the load once (tens of milliseconds).
var codec = sync.OnceValue(func() tokenizer.Codec {
	c, err := tokenizer.Get(tokenizer.Cl100kBase)
	if err != nil {
		// cl100k_base is compiled in; Get cannot fail for it.
		panic("anthropic: cl100k_base codec: " + err.Error())
	}
	// Loading leaves tens of MB of garbage, which the runtime's background
	// scavenger hands back to the OS; forcing it (debug.FreeOSMemory) here
	// would stop a serving relay's world for a full GC and a scavenge.
	return c
})

// Warm loads the tokenizer's vocabulary now (tests and benchmarks that
// time counts call it first).
func Warm() { _ = codec() }

// countText is the cl100k_base count of b (invalid UTF-8 is read as
// U+FFFD, as the tokenizer does), with whitespace runs broken up (see
// breakSpaceRuns); it falls back to len(b), still an upper bound, should the
// tokenizer fail.
func countText(b []byte) int64 {
	if len(b) == 0 {
		return 0
	}
	n, err := codec().Count(b2s(breakSpaceRuns(b)))
	if err != nil {
		return int64(len(b))
	}
	return int64(n)
}

// maxSpaceRun is the longest whitespace run handed to the tokenizer whole.
const maxSpaceRun = 64

// breakSpaceRuns returns b with a NUL after every maxSpaceRun characters of
// an unbroken whitespace run (b itself when it has none that long). The
// tokenizer's pre-splitting regexp backtracks across a whitespace run that
// holds line breaks once per piece it cuts from it, which is quadratic:
// 60 KB of "\n " takes seconds. A NUL is not whitespace, so the regexp stops
// there, and it merges with nothing, so a run split in pieces only loses
// merges: it counts at least the tokens it did whole, plus one per NUL.
func breakSpaceRuns(b []byte) []byte {
	var out []byte // nil until a run needs breaking
	run, from := 0, 0
	for i := 0; i < len(b); {
		c := b[i]
		n, space := 1, false
		switch {
		case c == ' ', c >= '\t' && c <= '\r':
			space = true
		case c >= utf8.RuneSelf:
			var r rune
			r, n = utf8.DecodeRune(b[i:])
			space = unicode.IsSpace(r) || unicode.Is(unicode.Z, r)
		}
		i += n
		if !space {
			run = 0
			continue
		}
		if run++; run == maxSpaceRun {
			if out == nil {
				out = make([]byte, 0, len(b)+len(b)/maxSpaceRun+1)
			}
			out = append(out, b[from:i]...)
			out = append(out, 0)
			from, run = i, 0
		}
	}
	if out == nil {
		return b
	}
	return append(out, b[from:]...)
}
