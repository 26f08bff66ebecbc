// Package fakeanthropic is an in-repo stand-in for the Anthropic API, for
// component tests and benchmarks: it speaks /v1/messages (JSON and the exact
// SSE event sequence, usage with cache fields), /v1/messages/count_tokens and
// /v1/models, plays scripted failures, and captures what it was sent. It is
// cheap per request (bodies are rendered once) so that it is never the
// bottleneck of a benchmark.
package fakeanthropic

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Model is the model the fake answers as, unless the request names one.
const Model = "claude-sonnet-4-5-20250929"

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

// Options shapes the fake's answers.
type Options struct {
	// Deltas is the number of content_block_delta events in a stream (default 10).
	Deltas int
	// Spacing is the pause before each delta (default 0).
	Spacing time.Duration
	// DeltaText is each delta's text (default "tok ").
	DeltaText string
	Usage     Usage
	// NoCapture turns request capture off (benchmarks).
	NoCapture bool
}

// Step scripts one answer to /v1/messages. Steps are used in order, one per
// request; when they run out, the fake answers normally.
type Step struct {
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
	// NoFinal ends a stream cleanly without message_delta and message_stop.
	NoFinal bool
}

// Request is a request as the fake saw it.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	// Events are the emission times of a stream's deltas.
	Events []time.Time
	// Cancelled: the request's context ended before the answer did.
	Cancelled bool
}

// Server is the fake upstream; it is an http.Handler.
type Server struct {
	opts   Options
	seq    atomic.Int64
	json   []byte
	start  []byte
	deltas [][]byte
	final  []byte

	mu       sync.Mutex
	script   []Step
	requests []*Request
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
	s := &Server{opts: opts}
	s.render()
	return s
}

// Options reports the fake's effective options.
func (s *Server) Options() Options { return s.opts }

// StreamUsage is the usage a full stream reports.
func (s *Server) StreamUsage() Usage {
	u := s.opts.Usage
	u.OutputTokens = int64(s.opts.Deltas)
	return u
}

// StreamText is the text a full stream carries.
func (s *Server) StreamText() string {
	var b bytes.Buffer
	for range s.opts.Deltas {
		b.WriteString(s.opts.DeltaText)
	}
	return b.String()
}

// JSONText is the text of the non-streaming reply.
const JSONText = "Hello! I am a fake Claude. "

func usageJSON(u Usage, output int64) string {
	return fmt.Sprintf(`{"input_tokens":%d,"cache_creation_input_tokens":%d,"cache_read_input_tokens":%d,"cache_creation":{"ephemeral_5m_input_tokens":%d,"ephemeral_1h_input_tokens":%d},"output_tokens":%d,"service_tier":"standard"}`,
		u.InputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens, u.CacheCreation5m, u.CacheCreation1h, output)
}

func (s *Server) render() {
	u := s.opts.Usage
	// About 1 KB, like a short real reply.
	text := bytes.Repeat([]byte(JSONText), 28)
	s.json = fmt.Appendf(nil, `{"id":"msg_01FakeFakeFakeFakeFakeFake","type":"message","role":"assistant","model":%q,"content":[{"type":"text","text":%q}],"stop_reason":"end_turn","stop_sequence":null,"usage":%s}`,
		Model, text, usageJSON(u, u.OutputTokens))
	s.start = fmt.Appendf(nil, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01FakeStream\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"model\":%q,\"stop_reason\":null,\"stop_sequence\":null,\"usage\":%s}}\n\n"+
		"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"+
		"event: ping\ndata: {\"type\": \"ping\"}\n\n", Model, usageJSON(u, 1))
	s.deltas = make([][]byte, s.opts.Deltas)
	for i := range s.deltas {
		s.deltas[i] = fmt.Appendf(nil, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":%q}}\n\n", s.opts.DeltaText)
	}
	s.final = fmt.Appendf(nil, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"+
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":%s}\n\n"+
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", usageJSON(u, int64(s.opts.Deltas)))
}

// Script queues steps for the next /v1/messages requests.
func (s *Server) Script(steps ...Step) {
	s.mu.Lock()
	s.script = append(s.script, steps...)
	s.mu.Unlock()
}

// Requests returns the requests seen so far (captured ones).
func (s *Server) Requests() []*Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Request(nil), s.requests...)
}

// Count is how many requests the fake has answered.
func (s *Server) Count() int64 { return s.seq.Load() }

// Last returns the last captured request, or nil.
func (s *Server) Last() *Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return nil
	}
	return s.requests[len(s.requests)-1]
}

func (s *Server) next() (Step, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.script) == 0 {
		return Step{}, false
	}
	st := s.script[0]
	s.script = s.script[1:]
	return st, true
}

func (s *Server) capture(r *http.Request, body []byte) *Request {
	if s.opts.NoCapture {
		return &Request{}
	}
	c := &Request{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body}
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

var bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.seq.Add(1)
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
	h := w.Header()
	h.Set("request-id", "req_fake_"+strconv.FormatInt(n, 10))
	h.Set("anthropic-ratelimit-requests-limit", "4000")
	h.Set("anthropic-ratelimit-requests-remaining", "3999")
	h.Set("anthropic-organization-id", "org-fake")
	if r.Header.Get("x-api-key") == "" {
		writeError(w, http.StatusUnauthorized, "authentication_error", "x-api-key header is required")
		return
	}
	switch r.URL.Path {
	case "/v1/messages/count_tokens":
		h.Set("content-type", "application/json")
		_, _ = w.Write([]byte(`{"input_tokens":42}`))
		return
	case "/v1/models":
		h.Set("content-type", "application/json")
		_, _ = io.WriteString(w, `{"data":[{"type":"model","id":"`+Model+`","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}],"has_more":false,"first_id":"`+Model+`","last_id":"`+Model+`"}`)
		return
	case "/v1/messages":
	default:
		writeError(w, http.StatusNotFound, "not_found_error", "Not found")
		return
	}
	st, _ := s.next()
	for k, vs := range st.Header {
		h[k] = vs
	}
	stream := bytes.Contains(body, streamFlag) || r.Header.Get("x-fake-stream") == "true"
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
	if !stream {
		h.Set("content-type", "application/json")
		h.Set("content-length", strconv.Itoa(len(s.json)))
		_, _ = w.Write(s.json)
		return
	}
	h.Set("content-type", "text/event-stream; charset=utf-8")
	h.Set("cache-control", "no-cache")
	fl, _ := w.(http.Flusher)
	flush := func() {
		if fl != nil {
			fl.Flush()
		}
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(s.start)
	flush()
	for i, d := range s.deltas {
		if st.DropAfter > 0 && i == st.DropAfter {
			if st.Stall > 0 && !sleep(r, st.Stall) {
				s.setCancelled(c)
			}
			panic(http.ErrAbortHandler)
		}
		if s.opts.Spacing > 0 && !sleep(r, s.opts.Spacing) {
			s.setCancelled(c)
			return
		}
		s.setEvent(c, time.Now())
		if _, err := w.Write(d); err != nil {
			s.setCancelled(c)
			return
		}
		flush()
	}
	if st.NoFinal {
		return
	}
	_, _ = w.Write(s.final)
	flush()
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
