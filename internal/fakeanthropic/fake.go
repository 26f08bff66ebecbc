// Package fakeanthropic is an in-repo stand-in for the Anthropic API, for
// component tests and benchmarks: it speaks /v1/messages (JSON and the exact
// SSE event sequence, usage with cache fields and the optional usage extras),
// /v1/messages/count_tokens, /v1/models, the OpenAI-compatible
// /v1/chat/completions, Message Batches (/v1/messages/batches...) and the
// Files beta (/v1/files...). It plays scripted failures, slow headers,
// oversized and gzip-compressed replies, and captures what it was sent.
//
// A Server is an http.Handler, for httptest.Server. Start serves it on a TCP
// address of its own instead, with a fast path for what a benchmark sends
// (see Endpoint), so that the fake is never the bottleneck of a benchmark.
//
// A streaming request may choose its shape with headers, which a relay
// passes on: HeaderDeltas and HeaderSpacingMS.
package fakeanthropic

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Model is the model the fake answers /v1/messages as (unless
// Options.ServedModel or Step.ServedModel says otherwise).
const Model = "claude-sonnet-4-5-20250929"

// Request headers that shape one stream (messages or chat completions),
// overriding Options.Deltas and Options.Spacing; a value that does not parse
// is ignored.
const (
	// HeaderDeltas is the number of content deltas, 0 to 100,000.
	HeaderDeltas = "x-fake-deltas"
	// HeaderSpacingMS is the pause before each delta in milliseconds, a
	// decimal number such as 0.5.
	HeaderSpacingMS = "x-fake-spacing-ms"
)

const maxDeltas = 100_000

// Usage is the usage the fake reports.
type Usage struct {
	InputTokens, CacheCreationInputTokens, CacheReadInputTokens int64
	CacheCreation5m, CacheCreation1h                            int64
	// OutputTokens of a JSON reply; a stream reports one per delta.
	OutputTokens int64
}

// DefaultUsage is what the fake reports unless told otherwise.
var DefaultUsage = Usage{InputTokens: 25, CacheCreationInputTokens: 100, CacheReadInputTokens: 300,
	CacheCreation5m: 40, CacheCreation1h: 60, OutputTokens: 120}

// Iteration is one entry of usage.iterations.
type Iteration struct {
	// Type is "message", "compaction", "advisor_message" or "fallback_message".
	Type string
	// Model is omitted from the wire when empty (Anthropic sends none for compaction).
	Model                                          string
	InputTokens, OutputTokens                      int64
	CacheReadInputTokens, CacheCreationInputTokens int64
}

// ServerToolUse is usage.server_tool_use.
type ServerToolUse struct {
	WebSearchRequests, WebFetchRequests int64
}

// Options shapes the fake's answers.
type Options struct {
	// Deltas is the number of content_block_delta events in a stream (default 10).
	// It is also the number of content chunks of a chat completion stream.
	Deltas int
	// Spacing is the pause before each delta (default 0).
	Spacing time.Duration
	// DeltaText is each delta's text (default "tok ").
	DeltaText string
	// StampDeltas makes each delta's text "t<unix-nanos> ", the moment the
	// fake wrote it, instead of DeltaText, so that a client in the same
	// process can compute each event's delay.
	StampDeltas bool
	Usage       Usage
	// NoCapture turns request capture off (benchmarks).
	NoCapture bool

	// The usage extras below are reported on /v1/messages and in batch
	// results; a Step's non-zero value overrides each for one request.
	// Speed and InferenceGeo go into the JSON usage and message_start's usage;
	// ServerToolUse and Iterations into the JSON usage and the final
	// message_delta's usage; ServiceTier into all three.

	// ServedModel is the model the reply names when it is not the requested
	// one (a server-side fallback). Default: Model on /v1/messages, the
	// requested model on chat completions and in batch results.
	ServedModel string
	// ServiceTier is usage.service_tier (default "standard"; batch results
	// always say "batch").
	ServiceTier string
	// Speed and InferenceGeo are usage.speed and usage.inference_geo; empty
	// leaves them out.
	Speed, InferenceGeo string
	// ServerToolUse, when set, is usage.server_tool_use.
	ServerToolUse *ServerToolUse
	// Iterations, when set, is usage.iterations.
	Iterations []Iteration

	// LargeText pads the text of every non-streaming /v1/messages and chat
	// completion reply to at least this many bytes; usage stays as it is.
	LargeText int
	// Gzip answers every request with Content-Encoding: gzip, whether the
	// client asked for it or not (streams too).
	Gzip bool
	// SlowHeaders waits this long before any reply's headers are sent. It
	// ends early when the client gives up, and the Request is then marked
	// Cancelled.
	SlowHeaders time.Duration

	// ChatUsage is the usage of every /v1/chat/completions reply
	// (default DefaultChatUsage).
	ChatUsage ChatUsage

	// BatchEndAfter and BatchEndPolls say when a message batch ends: at the
	// first GET /v1/messages/batches/{id} that is at least its
	// BatchEndPolls-th (0 counts as 1) and comes at least BatchEndAfter after
	// its creation. With both zero a batch ends at its first GET.
	BatchEndAfter time.Duration
	BatchEndPolls int

	// RequireFilesBeta answers /v1/files requests without the header
	// anthropic-beta: files-api-2025-04-14 with a 400 invalid_request_error.
	// Off by default, since the Go SDK does not add that header by itself.
	RequireFilesBeta bool
}

// Step scripts one answer. Steps are used in order, each by the first request
// whose path it matches; when none matches, the fake answers normally.
type Step struct {
	// Path is the exact URL path the step is for; empty means "/v1/messages".
	Path string
	// Status, when not 0 or 200, is answered with an Anthropic error body
	// (or Body, when set).
	Status int
	Header http.Header
	Body   string
	// Stall delays the answer (or, with DropAfter, the rest of a stream);
	// it ends early when the request is cancelled.
	Stall time.Duration
	// DropAfter >= 1 aborts a stream's connection after that many deltas.
	DropAfter int
	// NoFinal ends a stream cleanly without message_delta and message_stop
	// (on chat completions: without the finish chunk, usage and [DONE]).
	NoFinal bool

	// SlowHeaders, Gzip and LargeText do for this request what the Options
	// fields of the same names do.
	SlowHeaders time.Duration
	Gzip        bool
	LargeText   int

	// Usage extras for this request, overriding Options' (see there).
	ServedModel, ServiceTier, Speed, InferenceGeo string
	ServerToolUse                                 *ServerToolUse
	Iterations                                    []Iteration
	// ChatUsage, when not zero, overrides Options.ChatUsage.
	ChatUsage ChatUsage
}

// Request is a request as the fake saw it.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	// Trailer holds the request's trailers (read with the body).
	Trailer http.Header
	Body    []byte
	// Events are the emission times of a stream's deltas.
	Events []time.Time
	// Cancelled: the request's context ended before the answer did.
	Cancelled bool
}

// Server is the fake upstream; it is an http.Handler.
type Server struct {
	opts  Options
	seq   atomic.Int64
	rd    rendered // the default replies
	delta []byte   // a content_block_delta event with DeltaText
	paths sync.Map // path → *atomic.Int64
	// pending is len(script), read without the lock by Endpoint's fast path.
	pending atomic.Int64

	mu       sync.Mutex
	script   []Step
	requests []*Request
	batches  []*batch
	batchSeq int64
	files    []*file
	fileSeq  int64
}

// New returns a fake with opts, defaults filled in.
func New(opts Options) *Server {
	if opts.Deltas <= 0 {
		opts.Deltas = 10
	}
	if opts.DeltaText == "" {
		opts.DeltaText = "tok "
	}
	if opts.Usage == (Usage{}) {
		opts.Usage = DefaultUsage
	}
	if opts.ServiceTier == "" {
		opts.ServiceTier = "standard"
	}
	if opts.ChatUsage == (ChatUsage{}) {
		opts.ChatUsage = DefaultChatUsage
	}
	s := &Server{opts: opts}
	s.render()
	return s
}

// Options reports the fake's effective options.
func (s *Server) Options() Options { return s.opts }

// StreamUsage is the usage a full stream reports when the request names no
// HeaderDeltas.
func (s *Server) StreamUsage() Usage {
	u := s.opts.Usage
	u.OutputTokens = int64(s.opts.Deltas)
	return u
}

// StreamText is the text a full stream carries when the request names no
// HeaderDeltas (and StampDeltas is off).
func (s *Server) StreamText() string {
	var b bytes.Buffer
	for range s.opts.Deltas {
		b.WriteString(s.opts.DeltaText)
	}
	return b.String()
}

// JSONText is the text of the non-streaming reply.
const JSONText = "Hello! I am a fake Claude. "

// jsonTextRepeat makes the default non-streaming text about 1 KB, like a
// short real reply.
const jsonTextRepeat = 28

func usageJSON(u Usage, output int64) string {
	return string(appendUsage(nil, u, output, &extras{tier: "standard"}, partJSON))
}

// extras is what a reply adds to the base usage and text, resolved from
// Options and the request's Step.
type extras struct {
	model, tier, speed, geo string
	stu                     *ServerToolUse
	iters                   []Iteration
	large                   int
}

func (s *Server) optExtras() extras {
	o := s.opts
	return extras{model: o.ServedModel, tier: o.ServiceTier, speed: o.Speed, geo: o.InferenceGeo,
		stu: o.ServerToolUse, iters: o.Iterations, large: o.LargeText}
}

// extrasFor resolves the extras of one request; changed reports whether the
// step overrides any, so that the pre-rendered bodies cannot be used.
func (s *Server) extrasFor(st Step) (x extras, changed bool) {
	x = s.optExtras()
	set := func(dst *string, v string) {
		if v != "" {
			*dst, changed = v, true
		}
	}
	set(&x.model, st.ServedModel)
	set(&x.tier, st.ServiceTier)
	set(&x.speed, st.Speed)
	set(&x.geo, st.InferenceGeo)
	if st.ServerToolUse != nil {
		x.stu, changed = st.ServerToolUse, true
	}
	if st.Iterations != nil {
		x.iters, changed = st.Iterations, true
	}
	if st.LargeText > 0 {
		x.large, changed = st.LargeText, true
	}
	return x, changed
}

// Which fields of the usage object a place on the wire carries.
const (
	partJSON  = iota // a whole message: everything
	partStart        // message_start: no server_tool_use, no iterations
	partDelta        // message_delta: no speed, no inference_geo
)

func appendUsage(b []byte, u Usage, output int64, x *extras, part int) []byte {
	b = appendUsageHead(b, u)
	b = strconv.AppendInt(b, output, 10)
	return appendUsageTail(b, x, part)
}

// appendUsageHead renders a usage object up to the value of output_tokens,
// which a stream's message_delta fills in per request.
func appendUsageHead(b []byte, u Usage) []byte {
	return fmt.Appendf(b, `{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":`,
		u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens, u.CacheCreation5m, u.CacheCreation1h)
}

// appendUsageTail renders the rest of a usage object, after output_tokens.
func appendUsageTail(b []byte, x *extras, part int) []byte {
	b = fmt.Appendf(b, `,"service_tier":%q`, x.tier)
	if part != partDelta {
		if x.speed != "" {
			b = fmt.Appendf(b, `,"speed":%q`, x.speed)
		}
		if x.geo != "" {
			b = fmt.Appendf(b, `,"inference_geo":%q`, x.geo)
		}
	}
	if part != partStart {
		if x.stu != nil {
			b = fmt.Appendf(b, `,"server_tool_use":{"web_search_requests":%d,"web_fetch_requests":%d}`, x.stu.WebSearchRequests, x.stu.WebFetchRequests)
		}
		if len(x.iters) > 0 {
			b = append(b, `,"iterations":[`...)
			for i, it := range x.iters {
				if i > 0 {
					b = append(b, ',')
				}
				b = fmt.Appendf(b, `{"type":%q`, it.Type)
				if it.Model != "" {
					b = fmt.Appendf(b, `,"model":%q`, it.Model)
				}
				b = fmt.Appendf(b, `,"input_tokens":%d,"output_tokens":%d,"cache_read_input_tokens":%d,"cache_creation_input_tokens":%d}`,
					it.InputTokens, it.OutputTokens, it.CacheReadInputTokens, it.CacheCreationInputTokens)
			}
			b = append(b, ']')
		}
	}
	return append(b, '}')
}

// replyText is the text of a non-streaming reply: about 1 KB, or at least
// large bytes.
func replyText(large int) []byte {
	n := jsonTextRepeat
	if m := (large + len(JSONText) - 1) / len(JSONText); m > n {
		n = m
	}
	return bytes.Repeat([]byte(JSONText), n)
}

// messageJSON renders a whole message; usage comes after content, as
// Anthropic orders it.
func messageJSON(id, model string, text []byte, stop string, u Usage, x *extras) []byte {
	b := fmt.Appendf(nil, `{"id":%q,"type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":%q,"stop_sequence":null,"usage":`,
		id, model, text, stop)
	b = appendUsage(b, u, u.OutputTokens, x, partJSON)
	return append(b, '}')
}

// rendered holds the parts of the /v1/messages replies that do not change
// per request. A stream's last events are finalHead, its number of deltas
// (output_tokens) and finalTail.
type rendered struct{ json, start, finalHead, finalTail []byte }

func (r *rendered) appendFinal(b []byte, deltas int) []byte {
	b = append(b, r.finalHead...)
	b = strconv.AppendInt(b, int64(deltas), 10)
	return append(b, r.finalTail...)
}

func (s *Server) build(x *extras) rendered {
	u := s.opts.Usage
	model := Model
	if x.model != "" {
		model = x.model
	}
	var r rendered
	r.json = messageJSON("msg_01FakeFakeFakeFakeFakeFake", model, replyText(x.large), "end_turn", u, x)
	r.start = fmt.Appendf(nil, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01FakeStream\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":%q,\"stop_reason\":null,\"stop_sequence\":null,\"usage\":%s}}\n\n"+
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"+
		"event: ping\ndata: {\"type\": \"ping\"}\n\n", model, appendUsage(nil, u, 1, x, partStart))
	r.finalHead = appendUsageHead([]byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":"), u)
	r.finalTail = append(appendUsageTail(nil, x, partDelta), "}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...)
	return r
}

const (
	deltaPrefix = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":"
	deltaSuffix = "}}\n\n"
)

func (s *Server) render() {
	x := s.optExtras()
	s.rd = s.build(&x)
	s.delta = fmt.Appendf([]byte(deltaPrefix), "%q"+deltaSuffix, s.opts.DeltaText)
}

// appendDelta renders one content_block_delta event written at now.
func (s *Server) appendDelta(b []byte, now time.Time) []byte {
	if !s.opts.StampDeltas {
		return append(b, s.delta...)
	}
	return append(appendStamp(append(b, deltaPrefix...), now), deltaSuffix...)
}

// appendStamp renders the JSON string "t<unix-nanos> " of StampDeltas.
func appendStamp(b []byte, now time.Time) []byte {
	b = strconv.AppendInt(append(b, `"t`...), now.UnixNano(), 10)
	return append(b, ` "`...)
}

// shape is how one stream is cut: its deltas and the pause before each.
type shape struct {
	deltas  int
	spacing time.Duration
}

// shapeOf reads HeaderDeltas and HeaderSpacingMS, falling back on Options.
func (s *Server) shapeOf(h http.Header) shape {
	sh := shape{s.opts.Deltas, s.opts.Spacing}
	if n, ok := parseDeltas(h.Get(HeaderDeltas)); ok {
		sh.deltas = n
	}
	if d, ok := parseSpacingMS(h.Get(HeaderSpacingMS)); ok {
		sh.spacing = d
	}
	return sh
}

func parseDeltas(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0 && n <= maxDeltas
}

func parseSpacingMS(v string) (time.Duration, bool) {
	ms, err := strconv.ParseFloat(v, 64)
	// Under a day: a bench holds streams open with very long pauses.
	return time.Duration(ms * float64(time.Millisecond)), err == nil && ms >= 0 && ms < 24*60*60*1000
}

// Script queues steps; see Step for which request uses which.
func (s *Server) Script(steps ...Step) {
	s.mu.Lock()
	s.script = append(s.script, steps...)
	s.pending.Store(int64(len(s.script)))
	s.mu.Unlock()
}

// Requests returns the requests seen so far (captured ones).
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

// Count is how many requests the fake has answered, on every path.
func (s *Server) Count() int64 { return s.seq.Load() }

// CountPath is how many requests the fake has answered on exactly path (the
// URL path, without the query), whatever their method; counted with
// NoCapture too.
func (s *Server) CountPath(path string) int {
	v, ok := s.paths.Load(path)
	if !ok {
		return 0
	}
	return int(v.(*atomic.Int64).Load())
}

func (s *Server) countPath(path string) {
	v, ok := s.paths.Load(path)
	if !ok {
		v, _ = s.paths.LoadOrStore(path, new(atomic.Int64))
	}
	v.(*atomic.Int64).Add(1)
}

// Last returns the last captured request, or nil.
func (s *Server) Last() *Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return nil
	}
	return s.requests[len(s.requests)-1]
}

// next takes the first queued step for path.
func (s *Server) next(path string) (Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, st := range s.script {
		if st.Path == path || (st.Path == "" && path == "/v1/messages") {
			s.script = slices.Delete(s.script, i, i+1)
			s.pending.Store(int64(len(s.script)))
			return st, true
		}
	}
	return Step{}, false
}

func (s *Server) capture(r *http.Request, body []byte) *Request {
	if s.opts.NoCapture {
		return &Request{}
	}
	c := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, Trailer: r.Trailer.Clone()}
	s.mu.Lock()
	s.requests = append(s.requests, c)
	s.mu.Unlock()
	return c
}

func (s *Server) setEvent(c *Request, t time.Time) {
	if s.opts.NoCapture {
		return
	}
	s.mu.Lock()
	c.Events = append(c.Events, t)
	s.mu.Unlock()
}

func (s *Server) setCancelled(c *Request) {
	s.mu.Lock()
	c.Cancelled = true
	s.mu.Unlock()
}

// Snapshot returns a copy of c that is safe to read while the fake may still
// be writing to c.
func (s *Server) Snapshot(c *Request) Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := *c
	cp.Events = append([]time.Time(nil), c.Events...)
	return cp
}

var streamFlag = []byte(`"stream":true`)

// fixedHeaders are on every reply, with request-id.
var fixedHeaders = [][2]string{
	{"anthropic-ratelimit-requests-limit", "4000"},
	{"anthropic-ratelimit-requests-remaining", "3999"},
	{"anthropic-organization-id", "org-fake"},
}

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// call is one request on its way through the fake.
type call struct {
	w    http.ResponseWriter
	r    *http.Request
	c    *Request
	st   Step
	body []byte
	n    int64
}

type handler func(s *Server, k *call)

// route picks the handler for a path, or nil for an unknown one.
func route(path string) handler {
	switch path {
	case "/v1/messages":
		return (*Server).serveMessages
	case "/v1/messages/count_tokens":
		return (*Server).serveCountTokens
	case "/v1/models":
		return (*Server).serveModels
	case "/v1/chat/completions":
		return (*Server).serveChat
	case "/v1/messages/batches":
		return (*Server).serveBatches
	case "/v1/files":
		return (*Server).serveFiles
	}
	if rest, ok := strings.CutPrefix(path, "/v1/messages/batches/"); ok && rest != "" {
		return (*Server).serveBatch
	}
	if rest, ok := strings.CutPrefix(path, "/v1/files/"); ok && rest != "" {
		return (*Server).serveFile
	}
	if rest, ok := strings.CutPrefix(path, "/v1/models/"); ok && rest != "" {
		return (*Server).serveModel
	}
	return nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.seq.Add(1)
	s.countPath(r.URL.Path)
	var body []byte
	if s.opts.NoCapture {
		bp := bodyPool.Get().(*bytes.Buffer)
		bp.Reset()
		_, _ = bp.ReadFrom(r.Body)
		body = bp.Bytes()
		defer bodyPool.Put(bp)
	} else {
		body, _ = io.ReadAll(r.Body)
	}
	c := s.capture(r, body)
	var gw *gzipWriter
	defer func() {
		if gw != nil {
			// An aborted stream must stay aborted: no gzip trailer.
			if p := recover(); p != nil {
				panic(p)
			}
			gw.close()
		}
	}()
	compress := func() {
		if gw == nil {
			gw = &gzipWriter{ResponseWriter: w, gz: gzip.NewWriter(w)}
			w = gw
		}
	}
	if s.opts.Gzip {
		compress()
	}
	h := w.Header()
	h.Set("request-id", "req_fake_"+strconv.FormatInt(n, 10))
	for _, kv := range fixedHeaders {
		h.Set(kv[0], kv[1])
	}
	if r.Header.Get("x-api-key") == "" && !(r.URL.Path == "/v1/chat/completions" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ")) {
		writeError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return
	}
	serve := route(r.URL.Path)
	if serve == nil {
		writeError(w, http.StatusNotFound, "not_found_error", "Not found")
		return
	}
	st, _ := s.next(r.URL.Path)
	for k, vs := range st.Header {
		h[k] = vs
	}
	if st.Gzip {
		compress()
	}
	slow := s.opts.SlowHeaders
	if st.SlowHeaders > 0 {
		slow = st.SlowHeaders
	}
	if slow > 0 && !sleep(r, slow) {
		s.setCancelled(c)
		return
	}
	if st.Stall > 0 && st.DropAfter == 0 {
		if !sleep(r, st.Stall) {
			s.setCancelled(c)
			return
		}
	}
	if st.Status != 0 && st.Status != http.StatusOK {
		if st.Body != "" {
			h.Set("content-type", "application/json")
			w.WriteHeader(st.Status)
			_, _ = io.WriteString(w, st.Body)
			return
		}
		writeError(w, st.Status, errorType(st.Status), http.StatusText(st.Status))
		return
	}
	serve(s, &call{w: w, r: r, c: c, st: st, body: body, n: n})
}

const (
	countTokensBody = `{"input_tokens":42}`
	modelBody       = `{"type":"model","id":"` + Model + `","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}`
	// modelsBody lists Model first, and two more models, as the real
	// listing lists every model of the account.
	modelsBody = `{"data":[` + modelBody +
		`,{"type":"model","id":"claude-opus-4-5-20251101","display_name":"Claude Opus 4.5","created_at":"2025-11-01T00:00:00Z"}` +
		`,{"type":"model","id":"claude-haiku-4-5-20251001","display_name":"Claude Haiku 4.5","created_at":"2025-10-01T00:00:00Z"}` +
		`],"has_more":false,"first_id":"` + Model + `","last_id":"claude-haiku-4-5-20251001"}`
)

func (s *Server) serveCountTokens(k *call) {
	k.w.Header().Set("content-type", "application/json")
	_, _ = io.WriteString(k.w, countTokensBody)
}

func (s *Server) serveModels(k *call) {
	k.w.Header().Set("content-type", "application/json")
	_, _ = io.WriteString(k.w, modelsBody)
}

// serveModel answers GET /v1/models/{id} for the one model the fake lists.
func (s *Server) serveModel(k *call) {
	if id := strings.TrimPrefix(k.r.URL.Path, "/v1/models/"); id != Model {
		writeError(k.w, http.StatusNotFound, "not_found_error", "model: "+id)
		return
	}
	k.w.Header().Set("content-type", "application/json")
	_, _ = io.WriteString(k.w, modelBody)
}

func (s *Server) serveMessages(k *call) {
	w, r, c, st := k.w, k.r, k.c, k.st
	h := w.Header()
	rd := s.rd
	if x, changed := s.extrasFor(st); changed {
		rd = s.build(&x)
	}
	stream := bytes.Contains(k.body, streamFlag) || r.Header.Get("x-fake-stream") == "true"
	if !stream {
		h.Set("content-type", "application/json")
		h.Set("content-length", strconv.Itoa(len(rd.json)))
		if _, err := w.Write(rd.json); err != nil {
			s.setCancelled(c)
		}
		return
	}
	h.Set("content-type", "text/event-stream; charset=utf-8")
	h.Set("cache-control", "no-cache")
	flush := flusher(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rd.start)
	flush()
	sh := s.shapeOf(r.Header)
	var ev []byte
	for i := range sh.deltas {
		if st.DropAfter > 0 && i == st.DropAfter {
			if st.Stall > 0 && !sleep(r, st.Stall) {
				s.setCancelled(c)
			}
			panic(http.ErrAbortHandler)
		}
		if sh.spacing > 0 && !sleep(r, sh.spacing) {
			s.setCancelled(c)
			return
		}
		now := time.Now()
		s.setEvent(c, now)
		ev = s.appendDelta(ev[:0], now)
		if _, err := w.Write(ev); err != nil {
			s.setCancelled(c)
			return
		}
		flush()
	}
	if st.NoFinal {
		return
	}
	_, _ = w.Write(rd.appendFinal(ev[:0], sh.deltas))
	flush()
}

func flusher(w http.ResponseWriter) func() {
	fl, _ := w.(http.Flusher)
	return func() {
		if fl != nil {
			fl.Flush()
		}
	}
}

// gzipWriter compresses a reply whatever the client's Accept-Encoding said.
type gzipWriter struct {
	http.ResponseWriter
	gz    *gzip.Writer
	wrote bool
}

func (g *gzipWriter) WriteHeader(code int) {
	if !g.wrote {
		g.wrote = true
		h := g.Header()
		h.Del("Content-Length")
		h.Set("Content-Encoding", "gzip")
		h.Add("Vary", "Accept-Encoding")
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.wrote {
		g.WriteHeader(http.StatusOK)
	}
	return g.gz.Write(p)
}

func (g *gzipWriter) Flush() {
	_ = g.gz.Flush()
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *gzipWriter) close() {
	if !g.wrote {
		// Nothing was answered (the client gave up first): leave it so.
		return
	}
	_ = g.gz.Close()
}

func sleep(r *http.Request, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func errorType(status int) string {
	switch status {
	case 400:
		return "invalid_request_error"
	case 401:
		return "authentication_error"
	case 403:
		return "permission_error"
	case 404:
		return "not_found_error"
	case 413:
		return "request_too_large"
	case 429:
		return "rate_limit_error"
	case 529:
		return "overloaded_error"
	}
	return "api_error"
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("content-type", "application/json")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, `{"type":"error","error":{"type":%q,"message":%q},"request_id":%q}`, typ, msg, w.Header().Get("request-id"))
}

// ErrorBody is the body the fake sends for a scripted status without Body.
func ErrorBody(status int, requestID string) string {
	return fmt.Sprintf(`{"type":"error","error":{"type":%q,"message":%q},"request_id":%q}`, errorType(status), http.StatusText(status), requestID)
}
