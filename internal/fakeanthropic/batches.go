package fakeanthropic

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Processing statuses of a message batch.
const (
	BatchInProgress = "in_progress"
	BatchCanceling  = "canceling"
	BatchEnded      = "ended"
)

// Result types of a request in a message batch.
const (
	ResultSucceeded = "succeeded"
	ResultErrored   = "errored"
	ResultCanceled  = "canceled"
	ResultExpired   = "expired"
)

// BatchCounts is a batch's request_counts.
type BatchCounts struct {
	Processing int64 `json:"processing"`
	Succeeded  int64 `json:"succeeded"`
	Errored    int64 `json:"errored"`
	Canceled   int64 `json:"canceled"`
	Expired    int64 `json:"expired"`
}

// Batch is a snapshot of a message batch the fake holds.
type Batch struct {
	ID string
	// ProcessingStatus is BatchInProgress, BatchCanceling or BatchEnded.
	ProcessingStatus string
	// Polls counts the GET /v1/messages/batches/{id} seen so far.
	Polls int
	// EndedAt and CancelInitiatedAt are zero until the batch ends or is
	// canceled; ExpiresAt is CreatedAt plus 24 hours.
	CreatedAt, ExpiresAt, EndedAt, CancelInitiatedAt time.Time
	Counts                                           BatchCounts
	// Requests are in the order they were sent; results come in that order too.
	Requests []BatchRequest
}

// BatchRequest is one request of a Batch.
type BatchRequest struct {
	CustomID string
	Params   json.RawMessage
	// Result is empty until the batch ends, then one of the Result* types.
	Result string
	// Usage is what the result's message reports; zero unless Result is
	// ResultSucceeded. See BatchUsage.
	Usage Usage
}

// BatchUsage is the usage the fake reports for a succeeded batch request
// whose params have max_tokens: Options.Usage, with OutputTokens lowered to
// max_tokens when that is smaller (the message's stop_reason is then
// "max_tokens", else "end_turn"). usage.service_tier is "batch".
func (s *Server) BatchUsage(maxTokens int64) Usage {
	u := s.opts.Usage
	if maxTokens > 0 && maxTokens < u.OutputTokens {
		u.OutputTokens = maxTokens
	}
	return u
}

type batchReq struct {
	customID  string
	params    json.RawMessage
	model     string
	maxTokens int64
	preset    string // the result the params script, or ""
	result    string
	usage     Usage
}

type batch struct {
	n                      int64
	id                     string
	created, ended, cancel time.Time
	status                 string
	polls                  int
	reqs                   []batchReq
	resultsURL             string
}

func (b *batch) counts() BatchCounts {
	var c BatchCounts
	for _, q := range b.reqs {
		switch q.result {
		case "":
			c.Processing++
		case ResultSucceeded:
			c.Succeeded++
		case ResultErrored:
			c.Errored++
		case ResultCanceled:
			c.Canceled++
		case ResultExpired:
			c.Expired++
		}
	}
	return c
}

func (b *batch) snapshot() Batch {
	out := Batch{ID: b.id, ProcessingStatus: b.status, Polls: b.polls, CreatedAt: b.created,
		ExpiresAt: b.created.Add(24 * time.Hour), EndedAt: b.ended, CancelInitiatedAt: b.cancel, Counts: b.counts()}
	for _, q := range b.reqs {
		out.Requests = append(out.Requests, BatchRequest{CustomID: q.customID, Params: append(json.RawMessage(nil), q.params...),
			Result: q.result, Usage: q.usage})
	}
	return out
}

// Batches returns snapshots of the batches the fake holds (deleted ones
// left out), oldest first.
func (s *Server) Batches() []Batch {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Batch, 0, len(s.batches))
	for _, b := range s.batches {
		out = append(out, b.snapshot())
	}
	return out
}

// EndBatch ends batch id now, as a poll would; it reports false for an
// unknown id. Ending an ended batch changes nothing.
func (s *Server) EndBatch(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.findBatch(id)
	if b == nil {
		return false
	}
	s.endBatch(b, time.Now())
	return true
}

func (s *Server) findBatch(id string) *batch {
	for _, b := range s.batches {
		if b.id == id {
			return b
		}
	}
	return nil
}

// endBatch settles every request: all canceled when the batch was
// canceling, else what its params script, else succeeded.
func (s *Server) endBatch(b *batch, now time.Time) {
	if b.status == BatchEnded {
		return
	}
	for i := range b.reqs {
		q := &b.reqs[i]
		switch {
		case b.status == BatchCanceling:
			q.result = ResultCanceled
		case q.preset != "":
			q.result = q.preset
		default:
			q.result = ResultSucceeded
			q.usage = s.BatchUsage(q.maxTokens)
		}
	}
	b.status, b.ended = BatchEnded, now
}

func timeJSON(t time.Time) []byte {
	if t.IsZero() {
		return []byte("null")
	}
	return strconv.AppendQuote(nil, t.UTC().Format("2006-01-02T15:04:05.000000Z"))
}

func (b *batch) appendJSON(dst []byte) []byte {
	counts, _ := json.Marshal(b.counts())
	results := []byte("null")
	if b.status == BatchEnded {
		results = jsonString(b.resultsURL)
	}
	return fmt.Appendf(dst, `{"id":%q,"type":"message_batch","processing_status":%q,"request_counts":%s,"ended_at":%s,"created_at":%s,"expires_at":%s,"archived_at":null,"cancel_initiated_at":%s,"results_url":%s}`,
		b.id, b.status, counts, timeJSON(b.ended), timeJSON(b.created), timeJSON(b.created.Add(24*time.Hour)), timeJSON(b.cancel), results)
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("content-type", "application/json")
	w.Header().Set("content-length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

// serveBatches answers POST (create) and GET (list) /v1/messages/batches.
func (s *Server) serveBatches(k *call) {
	switch k.r.Method {
	case http.MethodPost:
		s.createBatch(k)
	case http.MethodGet:
		s.mu.Lock()
		ids := make([]string, len(s.batches))
		byID := make(map[string]*batch, len(s.batches))
		for i, b := range s.batches {
			ids[len(ids)-1-i] = b.id // newest first, as Anthropic lists
			byID[b.id] = b
		}
		from, to, more, status, msg := paginate(ids, k.r.URL.Query())
		var out []byte
		if status == 0 {
			out = appendList(nil, ids[from:to], more, false, func(dst []byte, id string) []byte { return byID[id].appendJSON(dst) })
		}
		s.mu.Unlock()
		if status != 0 {
			writeError(k.w, status, errorType(status), msg)
			return
		}
		writeJSON(k.w, out)
	default:
		writeError(k.w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
	}
}

type batchParams struct {
	Model      string `json:"model"`
	MaxTokens  int64  `json:"max_tokens"`
	FakeError  bool   `json:"fake_error"`
	FakeExpire bool   `json:"fake_expire"`
	FakeCancel bool   `json:"fake_cancel"`
}

func (s *Server) createBatch(k *call) {
	var body struct {
		Requests []struct {
			CustomID string          `json:"custom_id"`
			Params   json.RawMessage `json:"params"`
		} `json:"requests"`
	}
	bad := func(msg string) { writeError(k.w, http.StatusBadRequest, "invalid_request_error", msg) }
	if err := json.Unmarshal(k.body, &body); err != nil {
		bad("request body is not valid JSON: " + err.Error())
		return
	}
	if len(body.Requests) == 0 {
		bad("requests: List should have at least 1 item after validation, not 0")
		return
	}
	reqs := make([]batchReq, len(body.Requests))
	seen := make(map[string]bool, len(body.Requests))
	for i, rq := range body.Requests {
		if rq.CustomID == "" {
			bad(fmt.Sprintf("requests.%d.custom_id: Field required", i))
			return
		}
		if seen[rq.CustomID] {
			bad(fmt.Sprintf("requests.%d.custom_id: custom_id %q is not unique in this batch", i, rq.CustomID))
			return
		}
		seen[rq.CustomID] = true
		var p batchParams
		if t := bytes.TrimSpace(rq.Params); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &p) != nil {
			bad(fmt.Sprintf("requests.%d.params: Input should be a valid message request", i))
			return
		}
		q := batchReq{customID: rq.CustomID, params: append(json.RawMessage(nil), rq.Params...), model: p.Model, maxTokens: p.MaxTokens}
		switch {
		case p.FakeError:
			q.preset = ResultErrored
		case p.FakeExpire:
			q.preset = ResultExpired
		case p.FakeCancel:
			q.preset = ResultCanceled
		}
		reqs[i] = q
	}
	scheme := "http"
	if k.r.TLS != nil {
		scheme = "https"
	}
	s.mu.Lock()
	s.batchSeq++
	b := &batch{n: s.batchSeq, id: fmt.Sprintf("msgbatch_01FakeBatch%013d", s.batchSeq), created: time.Now(),
		status: BatchInProgress, reqs: reqs}
	b.resultsURL = scheme + "://" + k.r.Host + "/v1/messages/batches/" + b.id + "/results"
	s.batches = append(s.batches, b)
	out := b.appendJSON(nil)
	s.mu.Unlock()
	writeJSON(k.w, out)
}

// serveBatch answers /v1/messages/batches/{id}[/cancel|/results].
func (s *Server) serveBatch(k *call) {
	rest := strings.TrimPrefix(k.r.URL.Path, "/v1/messages/batches/")
	id, sub, _ := strings.Cut(rest, "/")
	var want []string
	switch sub {
	case "":
		want = []string{http.MethodGet, http.MethodDelete}
	case "cancel":
		want = []string{http.MethodPost}
	case "results":
		want = []string{http.MethodGet}
	default:
		writeError(k.w, http.StatusNotFound, "not_found_error", "Not found")
		return
	}
	if !slices.Contains(want, k.r.Method) {
		writeError(k.w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
		return
	}
	s.mu.Lock()
	b := s.findBatch(id)
	if b == nil {
		s.mu.Unlock()
		writeError(k.w, http.StatusNotFound, "not_found_error", fmt.Sprintf("No Message Batch found with id %s", id))
		return
	}
	now := time.Now()
	var out []byte
	var errMsg string
	switch {
	case sub == "" && k.r.Method == http.MethodGet:
		b.polls++
		if b.status == BatchCanceling || (b.polls >= max(1, s.opts.BatchEndPolls) && now.Sub(b.created) >= s.opts.BatchEndAfter) {
			s.endBatch(b, now)
		}
		out = b.appendJSON(nil)
	case sub == "":
		if b.status != BatchEnded {
			errMsg = fmt.Sprintf("Message Batch %s is still in progress; cancel it and wait for it to end before deleting it", id)
			break
		}
		s.batches = slices.DeleteFunc(s.batches, func(x *batch) bool { return x == b })
		out = fmt.Appendf(nil, `{"id":%q,"type":"message_batch_deleted"}`, id)
	case sub == "cancel":
		switch b.status {
		case BatchEnded:
			errMsg = fmt.Sprintf("Message Batch %s has already ended and cannot be canceled", id)
		case BatchInProgress:
			b.status, b.cancel = BatchCanceling, now
		}
		if errMsg == "" {
			out = b.appendJSON(nil)
		}
	case sub == "results":
		if b.status != BatchEnded {
			errMsg = fmt.Sprintf("Message Batch %s has not yet ended; its results are not available", id)
			break
		}
		out = s.appendResults(nil, b)
	}
	s.mu.Unlock()
	if errMsg != "" {
		writeError(k.w, http.StatusBadRequest, "invalid_request_error", errMsg)
		return
	}
	if sub == "results" {
		// What Anthropic sends for the .jsonl, whatever the Accept header.
		k.w.Header().Set("content-type", "application/binary")
		k.w.Header().Set("content-length", strconv.Itoa(len(out)))
		_, _ = k.w.Write(out)
		return
	}
	writeJSON(k.w, out)
}

// appendResults renders a batch's results, one JSON line per request, in
// request order.
func (s *Server) appendResults(dst []byte, b *batch) []byte {
	x := s.optExtras()
	x.tier, x.large = "batch", 0
	for i, q := range b.reqs {
		dst = fmt.Appendf(dst, `{"custom_id":%s,"result":`, jsonString(q.customID))
		switch q.result {
		case ResultSucceeded:
			model := q.model
			if model == "" {
				model = Model
			}
			if x.model != "" {
				model = x.model
			}
			stop := "end_turn"
			if q.usage.OutputTokens < s.opts.Usage.OutputTokens {
				stop = "max_tokens"
			}
			dst = append(dst, `{"type":"succeeded","message":`...)
			dst = append(dst, messageJSON(fmt.Sprintf("msg_01FakeBatch%06dReq%06d", b.n, i+1), model, []byte(JSONText), stop, q.usage, &x)...)
			dst = append(dst, '}')
		case ResultErrored:
			dst = fmt.Appendf(dst, `{"type":"errored","error":{"type":"error","error":{"type":"invalid_request_error","message":"fake_error was set in params"},"request_id":"req_fake_%s_%d"}}`, b.id, i+1)
		default:
			dst = fmt.Appendf(dst, `{"type":%q}`, q.result)
		}
		dst = append(dst, "}\n"...)
	}
	return dst
}

// paginate picks the page that q asks for (limit, after_id, before_id, or
// the page cursor "page_<id>" of newer list endpoints) out of ids, which are
// newest first. A non-zero status is an error to answer with msg.
func paginate(ids []string, q url.Values) (from, to int, hasMore bool, status int, msg string) {
	limit := 20
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return 0, 0, false, http.StatusBadRequest, "limit: Input should be between 1 and 1000"
		}
		limit = n
	}
	after, before := q.Get("after_id"), q.Get("before_id")
	if p := q.Get("page"); p != "" && after == "" {
		after = strings.TrimPrefix(p, "page_")
	}
	if after != "" && before != "" {
		return 0, 0, false, http.StatusBadRequest, "after_id and before_id cannot both be set"
	}
	switch {
	case after != "":
		i := slices.Index(ids, after)
		if i < 0 {
			return 0, 0, false, http.StatusNotFound, fmt.Sprintf("No object found with id %s", after)
		}
		from = i + 1
		to = min(from+limit, len(ids))
		return from, to, to < len(ids), 0, ""
	case before != "":
		i := slices.Index(ids, before)
		if i < 0 {
			return 0, 0, false, http.StatusNotFound, fmt.Sprintf("No object found with id %s", before)
		}
		to = i
		from = max(0, to-limit)
		return from, to, from > 0, 0, ""
	}
	to = min(limit, len(ids))
	return 0, to, to < len(ids), 0, ""
}

// appendList renders a list page: data, has_more, first_id, last_id and,
// with nextPage, the page cursor next_page.
func appendList(dst []byte, ids []string, more, nextPage bool, item func([]byte, string) []byte) []byte {
	dst = append(dst, `{"data":[`...)
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = item(dst, id)
	}
	first, last := []byte("null"), []byte("null")
	if len(ids) > 0 {
		first, last = jsonString(ids[0]), jsonString(ids[len(ids)-1])
	}
	dst = fmt.Appendf(dst, `],"has_more":%t,"first_id":%s,"last_id":%s`, more, first, last)
	if nextPage {
		dst = append(dst, `,"next_page":`...)
		if more && len(ids) > 0 {
			dst = append(dst, jsonString("page_"+ids[len(ids)-1])...)
		} else {
			dst = append(dst, "null"...)
		}
	}
	return append(dst, '}')
}
