package anthropic

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Format is the wire format of a metered request body.
type Format = domain.WireFormat

const (
	// FormatMessages is Anthropic's Messages API, and a batch request's params.
	FormatMessages = domain.FormatMessages
	// FormatChat is the OpenAI-compatible chat.completions format.
	FormatChat = domain.FormatChat
	// FormatComplete is the legacy Text Completions format (max_tokens_to_sample).
	FormatComplete = domain.FormatComplete
)

// MaxTokensBound is the largest output bound (max_tokens and its kin) a body
// may name: the domain's bound on reservations.
const MaxTokensBound = domain.MaxTokens

// maxModelLen bounds the model name: the relay records it, and every model
// id is a few dozen bytes.
const maxModelLen = 256

// maxLabelLen bounds speed and inference_geo: each names one of a few short
// values ("fast", "us", "global").
const maxLabelLen = 64

// maxUserIDLen bounds metadata.user_id: Anthropic takes at most 256
// characters, which UTF-8 spells in at most 1,024 bytes.
const maxUserIDLen = 1024

// maxTools bounds the elements of a Messages body's tools array, and so the
// tools counted: real requests declare a few dozen, and every element is
// walked.
const maxTools = 10_000

// maxToolKeys bounds the keys of a web_search tool, all of which are
// checked for repeats: the tool defines about ten fields.
const maxToolKeys = 64

// webSearchPrefix starts the type of every version of the web search
// server tool ("web_search_20250305", "web_search_20260209").
const webSearchPrefix = "web_search_"

// The fields ParseRequest reads, per format. A key that differs from one of
// them only in letter case is refused too: Go's encoding/json, among others,
// matches struct fields case-insensitively and would read it.
var (
	messagesFields = []string{"model", "stream", "max_tokens", "speed", "inference_geo", "tools", "metadata"}
	chatFields     = []string{"model", "stream", "max_tokens", "max_completion_tokens", "stream_options"}
	completeFields = []string{"model", "stream", "max_tokens_to_sample"}
)

// ParseRequest reads the fields of a metered request body that decide its
// reservation, strictly, so that no other parser (the upstream's, a
// client's) can read the body differently: the body must be valid JSON and
// an object with no repeated top-level key (compared unescaped, so
// "max\u005ftokens" repeats "max_tokens") and no key that differs from a
// field read here only in letter case; the output bound (max_tokens; for
// FormatChat also max_completion_tokens, the larger of the two counting;
// for FormatComplete max_tokens_to_sample) must be a plain integer literal
// from 1 to MaxTokensBound (no string, fraction, exponent or sign); stream
// must be a boolean; model, if present, a string. FormatChat also reads
// stream_options.include_usage, and, as the OpenAI format declares these
// fields nullable, takes null for an absent value; FormatMessages refuses
// null. A body nesting deeper than 1000 levels, or with more than 1000
// top-level keys, is refused too (no request comes near either). Any
// violation is a *domain.Error of kind KindInvalid, reason "body", whose
// message says what is wrong.
//
// FormatMessages also reads what changes a request's price: speed and
// inference_geo, each, if present, a string of at most 64 bytes
// unescaped; and tools, if present, an array of at most 10,000 elements,
// whose web_search server tools (objects whose type is a string starting
// with "web_search_") it counts, with their max_uses, which if present must
// be a plain integer literal from 0 to MaxTokensBound. In every object in
// tools, "type" and "max_uses" may appear once (compared unescaped) and
// not in another letter case; a web_search tool may have at most 64 keys,
// none repeated.
// Nothing else in tools is inspected. And it reads metadata.user_id, the
// session a prompt cache is kept for: metadata, if present, must be an
// object with no repeated key (compared unescaped) and no letter-case
// variant of user_id, of at most 1000 keys; user_id, if present, a string of
// at most 1,024 bytes unescaped, or null (as absent).
//
// One pass over the top level, and the top level of each element of
// tools, after a validity check of the whole body (checkJSON); nothing
// deeper is decoded. Both are linear in the body, whatever its shape.
func ParseRequest(body []byte, f Format) (Request, error) {
	if err := checkBody(body); err != nil {
		return Request{}, err
	}
	return parseTop(body, f, "")
}

// checkBody refuses a body that is not one valid JSON object.
func checkBody(body []byte) error {
	switch checkJSON(body) {
	case jsonTooDeep:
		return bodyErr("the body nests deeper than %d levels", maxNesting)
	case jsonInvalid:
		return bodyErr("the body is not valid JSON")
	}
	if i := skipWS(body, 0); i >= len(body) || body[i] != '{' {
		return bodyErr("the body must be a JSON object")
	}
	return nil
}

func bodyErr(format string, args ...any) error {
	return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonBody, Message: fmt.Sprintf(format, args...)}
}

// fileIDs returns every string value of a "file_id" key anywhere in obj
// (content blocks that name an uploaded file), so that admission can check
// the key owns each. The scan runs only when the body can contain such a
// key: the literal name, or a \u escape that could spell it. obj must be
// valid JSON (checkBody): then a string followed by a colon is a key, and
// nothing else is, so one pass from quote to quote, without tracking
// nesting, finds them all; each byte is read a bounded number of times
// whatever the shape.
func fileIDs(obj []byte) []string {
	if !bytes.Contains(obj, []byte("file_id")) && !bytes.Contains(obj, []byte(`\u`)) {
		return nil
	}
	const name = "file_id"
	var ids []string
	var scratch [maxKeyRaw * 2]byte
	for i := 0; i < len(obj); {
		q := bytes.IndexByte(obj[i:], '"')
		if q < 0 {
			break
		}
		k := i + q
		ke := stringEnd(obj, k)
		i = ke
		// A key spelling file_id is 7 to 42 raw bytes (every character
		// a six-byte escape) between its quotes.
		if n := ke - k - 2; n < len(name) || n > 6*len(name) {
			continue
		}
		c := skipWS(obj, ke)
		if c >= len(obj) || obj[c] != ':' {
			continue
		}
		if string(keyName(obj[k:ke], scratch[:])) != name {
			continue
		}
		v := skipWS(obj, c+1)
		if v >= len(obj) || obj[v] != '"' {
			continue
		}
		ve := stringEnd(obj, v)
		id, _ := appendUnescaped(nil, strContent(obj[v:ve]), -1)
		ids = append(ids, string(id))
		i = ve
	}
	return ids
}

// parseTop reads obj, a valid JSON object; at prefixes the messages
// ("requests[3].params: ").
func parseTop(obj []byte, f Format, at string) (Request, error) {
	var fields []string
	switch f {
	case FormatMessages:
		fields = messagesFields
	case FormatChat:
		fields = chatFields
	case FormatComplete:
		fields = completeFields
	default:
		return Request{}, &domain.Error{Kind: domain.KindInternal, Message: fmt.Sprintf("anthropic: unknown body format %d", f)}
	}
	nullable := f == FormatChat
	r := Request{Valid: true}
	var (
		keys       keySet
		err        error
		maxTok     int64
		scratch    [maxKeyRaw * 2]byte
		streamOpts []byte
	)
	// The walk returns the index of each value's end; on an error it
	// returns len(obj), which ends it.
	stop := len(obj)
	members(obj, skipWS(obj, 0), func(key []byte, v int) int {
		if keys.full() {
			err = bodyErr("%sthe body has more than %d top-level keys", at, maxObjectKeys)
			return stop
		}
		if !keys.add(fullKey(key)) {
			err = bodyErr("%sthe key %s appears more than once", at, quoteKey(key))
			return stop
		}
		name := keyName(key, scratch[:])
		field := ""
		for _, fl := range fields {
			if string(name) == fl {
				field = fl
				break
			}
			if strings.EqualFold(b2s(name), fl) {
				err = bodyErr("%sthe key %s differs from %q only in letter case; send it as %q", at, quoteKey(key), fl, fl)
				return stop
			}
		}
		if field == "tools" {
			// Read in place, so that a large tools array is walked once.
			var end int
			r.WebSearch, end, err = parseTools(obj, v, at)
			if err != nil {
				return stop
			}
			return end
		}
		end := valueEnd(obj, v)
		val := obj[v:end]
		switch field {
		case "":
		case "model":
			c := strContent(val)
			if c == nil {
				err = bodyErr("%smodel must be a string, not %s", at, describe(val))
				return stop
			}
			m, n := appendUnescaped(make([]byte, 0, min(len(c), maxModelLen)), c, maxModelLen)
			if n < len(c) {
				err = bodyErr("%smodel is longer than %d bytes", at, maxModelLen)
				return stop
			}
			r.Model = string(m)
		case "speed", "inference_geo":
			var s string
			if s, err = labelString(val, field, at); err != nil {
				return stop
			}
			if field == "speed" {
				r.Speed = s
			} else {
				r.InferenceGeo = s
			}
		case "stream":
			switch {
			case string(val) == "true":
				r.Stream = true
			case string(val) == "false", nullable && string(val) == "null":
				r.Stream = false
			default:
				err = bodyErr("%sstream must be true or false, not %s", at, describe(val))
				return stop
			}
		case "max_tokens", "max_completion_tokens", "max_tokens_to_sample":
			if nullable && string(val) == "null" {
				return end
			}
			// max_tokens 0 asks the Messages API to fill the prompt cache
			// without generating: a real output bound of zero.
			if f == FormatMessages && string(val) == "0" {
				r.MaxTokensSet = true
				return end
			}
			n, ok := tokenLiteral(val)
			if !ok {
				err = bodyErr("%s%s must be an integer from 1 to %d written as plain digits, not %s", at, field, MaxTokensBound, describe(val))
				return stop
			}
			maxTok = max(maxTok, n)
			r.MaxTokensSet = true
		case "stream_options":
			streamOpts = val
		case "metadata":
			if r.UserID, err = parseMetadata(val, at); err != nil {
				return stop
			}
		}
		return end
	})
	if err != nil {
		return Request{}, err
	}
	r.MaxTokens = maxTok
	if streamOpts != nil {
		r.IncludeUsage, err = parseStreamOptions(streamOpts, at)
		if err != nil {
			return Request{}, err
		}
	}
	return r, nil
}

// labelString reads speed or inference_geo: a string of at most
// maxLabelLen bytes unescaped.
func labelString(val []byte, field, at string) (string, error) {
	c := strContent(val)
	if c == nil {
		return "", bodyErr("%s%s must be a string, not %s", at, field, describe(val))
	}
	var buf [maxLabelLen]byte
	s, n := appendUnescaped(buf[:0], c, maxLabelLen)
	if n < len(c) {
		return "", bodyErr("%s%s is longer than %d bytes", at, field, maxLabelLen)
	}
	return string(s), nil
}

// parseTools reads the tools array of a Messages body, whose value starts
// at b[i]: the web_search tools it declares, and the index just past it.
// Each element is walked once, its top-level keys read and its values
// skipped, so the work is linear in the array however its tools are built.
func parseTools(b []byte, i int, at string) (domain.ToolBound, int, error) {
	if kind(b[i:]) != '[' {
		return domain.ToolBound{}, 0, bodyErr("%stools must be an array, not %s", at, describe(b[i:valueEnd(b, i)]))
	}
	var (
		ws  domain.ToolBound
		n   int
		err error
	)
	end := elems(b, i, func(e int) int {
		if n == maxTools {
			err = bodyErr("%stools must hold at most %d tools", at, maxTools)
			return len(b)
		}
		var next int
		next, err = parseTool(b, e, n, at, &ws)
		n++
		if err != nil {
			return len(b)
		}
		return next
	})
	return ws, end, err
}

// parseTool reads the element of tools (number idx) at b[i] and adds it to
// ws if it is a web_search tool. It returns the index just past the
// element, or -1 when it is not an object (which elems then skips).
func parseTool(b []byte, i, idx int, at string, ws *domain.ToolBound) (int, error) {
	if b[i] != '{' {
		return -1, nil
	}
	var (
		err       error
		typ, uses []byte
		scratch   [maxKeyRaw * 2]byte
	)
	end := members(b, i, func(key []byte, v int) int {
		e := valueEnd(b, v)
		name := keyName(key, scratch[:])
		var slot *[]byte
		switch string(name) {
		case "type":
			slot = &typ
		case "max_uses":
			slot = &uses
		default:
			for _, k := range [...]string{"type", "max_uses"} {
				if strings.EqualFold(b2s(name), k) {
					err = bodyErr("%stools[%d]: the key %s differs from %q only in letter case; send it as %q", at, idx, quoteKey(key), k, k)
					return len(b)
				}
			}
			return e
		}
		if *slot != nil {
			err = bodyErr("%stools[%d]: the key %s appears more than once", at, idx, quoteKey(key))
			return len(b)
		}
		*slot = b[v:e]
		return e
	})
	if err != nil {
		return 0, err
	}
	if end < 0 || !isWebSearch(typ) { // end < 0: malformed, which checkBody rules out
		return end, nil
	}
	// A web_search tool is small: check all its keys for repeats.
	var (
		keys keySet
		n    int
	)
	forEachMember(b[i:end], func(key, _ []byte) bool {
		if n == maxToolKeys {
			err = bodyErr("%stools[%d] has more than %d keys", at, idx, maxToolKeys)
			return false
		}
		n++
		if !keys.add(fullKey(key)) {
			err = bodyErr("%stools[%d]: the key %s appears more than once", at, idx, quoteKey(key))
			return false
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	ws.Tools++
	if uses == nil {
		ws.Unbounded++
		return end, nil
	}
	u, ok := int64(0), string(uses) == "0"
	if !ok {
		u, ok = tokenLiteral(uses)
	}
	if !ok {
		return 0, bodyErr("%stools[%d].max_uses must be an integer from 0 to %d written as plain digits, not %s", at, idx, MaxTokensBound, describe(uses))
	}
	// At most maxTools tools of at most MaxTokensBound each: no overflow.
	ws.MaxUses += u
	return end, nil
}

// isWebSearch reports whether typ, a raw value, is a string whose
// unescaped text starts with webSearchPrefix.
func isWebSearch(typ []byte) bool {
	c := strContent(typ)
	if c == nil {
		return false
	}
	if bytes.HasPrefix(c, []byte(webSearchPrefix)) {
		return true
	}
	// The prefix is ASCII: spelt with escapes, each of its characters
	// takes at most six raw bytes.
	c = c[:min(len(c), 6*len(webSearchPrefix))]
	if bytes.IndexByte(c, '\\') < 0 {
		return false
	}
	var buf [len(webSearchPrefix)]byte
	p, _ := appendUnescaped(buf[:0], c, len(webSearchPrefix))
	return string(p) == webSearchPrefix
}

// parseMetadata reads metadata (FormatMessages): its user_id, with the same
// rules as the top level. Every key is checked for repeats; values other
// than user_id's are skipped, not decoded.
func parseMetadata(v []byte, at string) (string, error) {
	if kind(v) != '{' {
		return "", bodyErr("%smetadata must be an object, not %s", at, describe(v))
	}
	var (
		keys    keySet
		err     error
		user    string
		scratch [maxKeyRaw * 2]byte
	)
	forEachMember(v, func(key, val []byte) bool {
		if keys.full() {
			err = bodyErr("%smetadata has more than %d keys", at, maxObjectKeys)
			return false
		}
		if !keys.add(fullKey(key)) {
			err = bodyErr("%sthe key metadata.%s appears more than once", at, quoteKey(key))
			return false
		}
		name := keyName(key, scratch[:])
		switch {
		case string(name) == "user_id":
			if string(val) == "null" {
				return true
			}
			c := strContent(val)
			if c == nil {
				err = bodyErr("%smetadata.user_id must be a string, not %s", at, describe(val))
				return false
			}
			u, n := appendUnescaped(make([]byte, 0, min(len(c), maxUserIDLen)), c, maxUserIDLen)
			if n < len(c) {
				err = bodyErr("%smetadata.user_id is longer than %d bytes", at, maxUserIDLen)
				return false
			}
			user = string(u)
		case strings.EqualFold(b2s(name), "user_id"):
			err = bodyErr("%sthe key metadata.%s differs from \"user_id\" only in letter case; send it as \"user_id\"", at, quoteKey(key))
			return false
		}
		return true
	})
	return user, err
}

// parseStreamOptions reads stream_options (FormatChat) with the same rules
// as the top level.
func parseStreamOptions(v []byte, at string) (bool, error) {
	switch kind(v) {
	case 'n':
		return false, nil
	case '{':
	default:
		return false, bodyErr("%sstream_options must be an object, not %s", at, describe(v))
	}
	var (
		keys    keySet
		err     error
		inc     bool
		scratch [maxKeyRaw * 2]byte
	)
	forEachMember(v, func(key, val []byte) bool {
		if keys.full() {
			err = bodyErr("%sstream_options has more than %d keys", at, maxObjectKeys)
			return false
		}
		if !keys.add(fullKey(key)) {
			err = bodyErr("%sthe key stream_options.%s appears more than once", at, quoteKey(key))
			return false
		}
		name := keyName(key, scratch[:])
		switch {
		case string(name) == "include_usage":
			switch string(val) {
			case "true":
				inc = true
			case "false", "null":
				inc = false
			default:
				err = bodyErr("%sstream_options.include_usage must be true or false, not %s", at, describe(val))
				return false
			}
		case strings.EqualFold(b2s(name), "include_usage"):
			err = bodyErr("%sthe key stream_options.%s differs from \"include_usage\" only in letter case", at, quoteKey(key))
			return false
		}
		return true
	})
	return inc, err
}

// tokenLiteral reads an output bound: a JSON integer literal from 1 to
// MaxTokensBound, nothing else (no "1e3", "100.0", "-1", "0", string).
func tokenLiteral(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 10 || v[0] == '0' {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= MaxTokensBound
}

// describe names a value in an error message: short literals verbatim,
// anything else by its type.
func describe(v []byte) string {
	switch kind(v) {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 0:
		return "nothing"
	}
	if len(v) <= 24 {
		return string(v)
	}
	return "a number of " + fmt.Sprint(len(v)) + " characters"
}

// quoteKey renders a key for an error message, cut to 64 bytes.
func quoteKey(key []byte) string {
	s := fullKey(key)
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return fmt.Sprintf("%q", s)
}

// fullKey is the unescaped text of a raw key token, as encoding/json reads
// it. Without escapes it points into the body (valid only for the call).
func fullKey(key []byte) string {
	c := strContent(key)
	if c == nil {
		return ""
	}
	for _, b := range c {
		if b == '\\' || b >= utf8.RuneSelf {
			out, _ := appendUnescaped(make([]byte, 0, len(c)), c, -1)
			return string(out)
		}
	}
	return b2s(c)
}

// maxObjectKeys bounds the keys of an object whose keys are checked for
// repeats (a body's top level, stream_options, a batch and each of its
// requests): the APIs define a few dozen fields, and remembering millions
// of keys would cost more than reading them.
const maxObjectKeys = 1000

// keySet detects a repeated key: a linear scan for the usual dozen keys, a
// map beyond.
type keySet struct {
	small [16]string
	n     int
	m     map[string]struct{}
}

// full reports whether the set holds maxObjectKeys keys.
func (s *keySet) full() bool {
	if s.m != nil { // the map holds the small keys too
		return len(s.m) >= maxObjectKeys
	}
	return s.n >= maxObjectKeys
}

// add records k; false if it was there already.
func (s *keySet) add(k string) bool {
	if s.m != nil {
		if _, ok := s.m[k]; ok {
			return false
		}
		s.m[k] = struct{}{}
		return true
	}
	for _, v := range s.small[:s.n] {
		if v == k {
			return false
		}
	}
	if s.n < len(s.small) {
		s.small[s.n] = k
		s.n++
		return true
	}
	s.m = make(map[string]struct{}, 2*len(s.small))
	for _, v := range s.small {
		s.m[v] = struct{}{}
	}
	s.m[k] = struct{}{}
	return true
}

// BatchItem is one request of a Message Batch, as ParseBatch read it.
type BatchItem struct {
	CustomID string
	Request  Request
	// Params is the request's params object: a sub-slice of the batch
	// body, not a copy.
	Params []byte
}

// MaxBatchRequests is the most requests one Message Batch may hold, the
// upstream's limit ("100,000 Message requests or 256 MB"): it also bounds
// the per-request work of reading and bounding a batch.
const MaxBatchRequests = 100_000

// ParseBatch reads the body of POST /v1/messages/batches as strictly as
// ParseRequest reads a request: valid JSON, an object without repeated or
// case-variant keys, whose requests is a non-empty array of at most
// MaxBatchRequests objects, each with a string custom_id (unique within
// the batch, compared unescaped) and an object params read by
// ParseRequest's FormatMessages rules.
func ParseBatch(body []byte) ([]BatchItem, error) {
	if err := checkBody(body); err != nil {
		return nil, err
	}
	var (
		keys    keySet
		err     error
		reqs    []byte
		scratch [maxKeyRaw * 2]byte
	)
	forEachMember(body, func(key, val []byte) bool {
		if keys.full() {
			err = bodyErr("the body has more than %d top-level keys", maxObjectKeys)
			return false
		}
		if !keys.add(fullKey(key)) {
			err = bodyErr("the key %s appears more than once", quoteKey(key))
			return false
		}
		name := keyName(key, scratch[:])
		switch {
		case string(name) == "requests":
			reqs = val
		case strings.EqualFold(b2s(name), "requests"):
			err = bodyErr("the key %s differs from \"requests\" only in letter case; send it as \"requests\"", quoteKey(key))
			return false
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	switch kind(reqs) {
	case '[':
	case 0:
		return nil, bodyErr("requests is required")
	default:
		return nil, bodyErr("requests must be an array, not %s", describe(reqs))
	}
	var (
		items []BatchItem
		ids   = map[string]int{}
	)
	forEachElem(reqs, func(e []byte) bool {
		if len(items) == MaxBatchRequests {
			err = bodyErr("requests must hold at most %d requests", MaxBatchRequests)
			return false
		}
		at := fmt.Sprintf("requests[%d]", len(items))
		var it BatchItem
		it, err = parseBatchItem(e, at)
		if err != nil {
			return false
		}
		if first, ok := ids[it.CustomID]; ok {
			err = bodyErr("%s.custom_id %q repeats that of requests[%d]", at, it.CustomID, first)
			return false
		}
		ids[it.CustomID] = len(items)
		items = append(items, it)
		return true
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, bodyErr("requests must not be empty")
	}
	return items, nil
}

func parseBatchItem(e []byte, at string) (BatchItem, error) {
	if kind(e) != '{' {
		return BatchItem{}, bodyErr("%s must be an object, not %s", at, describe(e))
	}
	var (
		keys     keySet
		err      error
		id       []byte
		params   []byte
		sawID    bool
		scratch  [maxKeyRaw * 2]byte
		itemKeys = [...]string{"custom_id", "params"}
	)
	forEachMember(e, func(key, val []byte) bool {
		if keys.full() {
			err = bodyErr("%s has more than %d keys", at, maxObjectKeys)
			return false
		}
		if !keys.add(fullKey(key)) {
			err = bodyErr("%s: the key %s appears more than once", at, quoteKey(key))
			return false
		}
		name := keyName(key, scratch[:])
		for _, k := range itemKeys {
			if string(name) != k && strings.EqualFold(b2s(name), k) {
				err = bodyErr("%s: the key %s differs from %q only in letter case; send it as %q", at, quoteKey(key), k, k)
				return false
			}
		}
		switch string(name) {
		case "custom_id":
			id, sawID = strContent(val), true
			if id == nil {
				err = bodyErr("%s.custom_id must be a string, not %s", at, describe(val))
				return false
			}
		case "params":
			params = val
		}
		return true
	})
	if err != nil {
		return BatchItem{}, err
	}
	if !sawID {
		return BatchItem{}, bodyErr("%s.custom_id is required", at)
	}
	switch kind(params) {
	case '{':
	case 0:
		return BatchItem{}, bodyErr("%s.params is required", at)
	default:
		return BatchItem{}, bodyErr("%s.params must be an object, not %s", at, describe(params))
	}
	req, err := parseTop(params, FormatMessages, at+".params: ")
	if err != nil {
		return BatchItem{}, err
	}
	uid, _ := appendUnescaped(make([]byte, 0, len(id)), id, -1)
	return BatchItem{CustomID: string(uid), Request: req, Params: params}, nil
}

// Parser is ParseRequest and ParseBatch behind ports.RequestParser.
type Parser struct{}

var _ ports.RequestParser = Parser{}

// ParseRequest implements ports.RequestParser.
func (Parser) ParseRequest(body []byte, f domain.WireFormat) (domain.CallRequest, error) {
	r, err := ParseRequest(body, f)
	if err != nil {
		return domain.CallRequest{}, err
	}
	d := r.toDomain()
	d.FileIDs = fileIDs(body)
	return d, nil
}

// ParseBatch implements ports.RequestParser.
func (Parser) ParseBatch(body []byte) ([]domain.BatchItem, error) {
	items, err := ParseBatch(body)
	if err != nil {
		return nil, err
	}
	out := make([]domain.BatchItem, len(items))
	for i, it := range items {
		out[i] = domain.BatchItem{CustomID: it.CustomID, Request: it.Request.toDomain(), Params: it.Params}
		out[i].Request.FileIDs = fileIDs(it.Params)
	}
	return out, nil
}

func (r Request) toDomain() domain.CallRequest {
	return domain.CallRequest{Model: r.Model, Stream: r.Stream, MaxTokens: r.MaxTokens, MaxTokensSet: r.MaxTokensSet,
		IncludeUsage: r.IncludeUsage, Speed: r.Speed, InferenceGeo: r.InferenceGeo, WebSearch: r.WebSearch, UserID: r.UserID}
}
