package fakeanthropic_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

// newFake serves a fake with opts on a loopback httptest.Server.
func newFake(tb testing.TB, opts fakeanthropic.Options) (*fakeanthropic.Server, string) {
	tb.Helper()
	f := fakeanthropic.New(opts)
	srv := httptest.NewServer(f)
	tb.Cleanup(srv.Close)
	return f, srv.URL
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

// call sends one request with an API key (headers are name, value pairs)
// and reads the whole reply.
func call(tb testing.TB, method, url, body string, headers ...string) reply {
	tb.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("x-api-key", "sk-test")
	req.Header.Set("content-type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, b}
}

func decode[T any](tb testing.TB, b []byte) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		tb.Fatalf("decode %.300s: %v", b, err)
	}
	return v
}

type apiError struct {
	Type  string `json:"type"`
	Error struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"error"`
}

func wantError(tb testing.TB, r reply, status int, typ string) {
	tb.Helper()
	e := decode[apiError](tb, r.body)
	if r.status != status || e.Type != "error" || e.Error.Type != typ {
		tb.Fatalf("want %d %s, got %d %s", status, typ, r.status, r.body)
	}
}

// sseData returns the data payloads of an SSE body, in order.
func sseData(tb testing.TB, body []byte) []string {
	tb.Helper()
	var out []string
	for ev := range strings.SplitSeq(strings.TrimSuffix(string(body), "\n\n"), "\n\n") {
		for line := range strings.SplitSeq(ev, "\n") {
			if d, ok := strings.CutPrefix(line, "data: "); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

const chatBody = `{"model":"claude-opus-4-6","messages":[{"role":"user","content":"hi"}]}`

type chatUsage struct {
	PromptTokens        int64 `json:"prompt_tokens"`
	CompletionTokens    int64 `json:"completion_tokens"`
	TotalTokens         int64 `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens int64 `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
}

type chatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	Model   string `json:"model"`
	Choices []struct {
		Index   int `json:"index"`
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta *struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *chatUsage `json:"usage"`
}

func TestChatCompletionsJSON(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	// The OpenAI SDKs authenticate with a bearer token.
	req, _ := http.NewRequest("POST", url+"/v1/chat/completions", strings.NewReader(chatBody))
	req.Header.Set("Authorization", "Bearer sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c := decode[chatCompletion](t, b)
	du := fakeanthropic.DefaultChatUsage
	if resp.StatusCode != 200 || c.ID != fakeanthropic.ChatID(1) || c.Object != "chat.completion" || c.Model != "claude-opus-4-6" ||
		time.Since(time.Unix(c.Created, 0)) > time.Minute || len(c.Choices) != 1 || c.Choices[0].Index != 0 ||
		c.Choices[0].Message.Role != "assistant" || !strings.HasPrefix(c.Choices[0].Message.Content, fakeanthropic.JSONText) ||
		c.Choices[0].FinishReason == nil || *c.Choices[0].FinishReason != "stop" {
		t.Fatalf("completion %d %s", resp.StatusCode, b)
	}
	if u := c.Usage; u == nil || u.PromptTokens != 30 || u.CompletionTokens != 40 || u.TotalTokens != 70 || u.PromptTokensDetails.CachedTokens != 5 ||
		du != (fakeanthropic.ChatUsage{PromptTokens: 30, CompletionTokens: 40, CachedTokens: 5}) {
		t.Fatalf("usage %s", b)
	}

	f.Script(fakeanthropic.Step{Path: "/v1/chat/completions", ChatUsage: fakeanthropic.ChatUsage{PromptTokens: 7, CompletionTokens: 8, CachedTokens: 1}, ServedModel: "claude-fallback"})
	c = decode[chatCompletion](t, call(t, "POST", url+"/v1/chat/completions", chatBody).body)
	if c.Model != "claude-fallback" || c.Usage.TotalTokens != 15 || c.Usage.PromptTokensDetails.CachedTokens != 1 {
		t.Fatalf("scripted %+v", c)
	}

	noKey, _ := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(chatBody))
	nb, _ := io.ReadAll(noKey.Body)
	noKey.Body.Close()
	wantError(t, reply{noKey.StatusCode, noKey.Header, nb}, 401, "authentication_error")
	wantError(t, call(t, "POST", url+"/v1/chat/completions", "{"), 400, "invalid_request_error")
}

func TestChatCompletionsStream(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{Deltas: 3, DeltaText: "ab ", ChatUsage: fakeanthropic.ChatUsage{PromptTokens: 11, CompletionTokens: 3}})
	for _, include := range []bool{false, true} {
		body := `{"model":"m","stream":true,"messages":[]}`
		if include {
			body = `{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]}`
		}
		r := call(t, "POST", url+"/v1/chat/completions", body)
		if r.status != 200 || !strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
			t.Fatalf("stream %d %v", r.status, r.header)
		}
		data := sseData(t, r.body)
		if data[len(data)-1] != "[DONE]" {
			t.Fatalf("no [DONE]: %s", r.body)
		}
		var text strings.Builder
		var finish string
		var usage *chatUsage
		for i, d := range data[:len(data)-1] {
			var c chatCompletion
			if err := json.Unmarshal([]byte(d), &c); err != nil {
				t.Fatalf("chunk %d %q: %v", i, d, err)
			}
			if c.Object != "chat.completion.chunk" || c.Model != "m" || !strings.HasPrefix(c.ID, "chatcmpl-") {
				t.Fatalf("chunk %s", d)
			}
			if len(c.Choices) == 0 {
				usage = c.Usage
				continue
			}
			if i == 0 && c.Choices[0].Delta.Role != "assistant" {
				t.Fatalf("first chunk %s", d)
			}
			text.WriteString(c.Choices[0].Delta.Content)
			if fr := c.Choices[0].FinishReason; fr != nil {
				finish = *fr
			}
			if c.Usage != nil {
				t.Fatalf("usage on a content chunk: %s", d)
			}
		}
		if text.String() != "ab ab ab " || finish != "stop" || f.StreamText() != "ab ab ab " {
			t.Fatalf("text %q finish %q", text.String(), finish)
		}
		if !include && usage != nil || include && (usage == nil || usage.TotalTokens != 14 || usage.PromptTokensDetails.CachedTokens != 0) {
			t.Fatalf("include_usage=%v usage %+v:\n%s", include, usage, r.body)
		}
		if include && !strings.Contains(string(r.body), `"usage":null`) {
			t.Fatalf("chunks before the usage one should say usage:null:\n%s", r.body)
		}
	}
	if n := f.CountPath("/v1/chat/completions"); n != 2 {
		t.Fatalf("CountPath %d", n)
	}
}

type batchObject struct {
	ID                string                    `json:"id"`
	Type              string                    `json:"type"`
	ProcessingStatus  string                    `json:"processing_status"`
	RequestCounts     fakeanthropic.BatchCounts `json:"request_counts"`
	EndedAt           *time.Time                `json:"ended_at"`
	CreatedAt         time.Time                 `json:"created_at"`
	ExpiresAt         time.Time                 `json:"expires_at"`
	ArchivedAt        *time.Time                `json:"archived_at"`
	CancelInitiatedAt *time.Time                `json:"cancel_initiated_at"`
	ResultsURL        *string                   `json:"results_url"`
}

type batchResult struct {
	CustomID string `json:"custom_id"`
	Result   struct {
		Type    string `json:"type"`
		Message *struct {
			ID         string `json:"id"`
			Type       string `json:"type"`
			Model      string `json:"model"`
			StopReason string `json:"stop_reason"`
			Content    []struct {
				Text string `json:"text"`
			} `json:"content"`
			Usage struct {
				InputTokens          int64  `json:"input_tokens"`
				OutputTokens         int64  `json:"output_tokens"`
				CacheReadInputTokens int64  `json:"cache_read_input_tokens"`
				ServiceTier          string `json:"service_tier"`
			} `json:"usage"`
		} `json:"message"`
		Error *struct {
			Type  string `json:"type"`
			Error struct {
				Type    string `json:"type"`
				Message string `json:"message"`
			} `json:"error"`
		} `json:"error"`
	} `json:"result"`
}

// readResults parses a results body line by line, as a JSONL reader would.
func readResults(tb testing.TB, body []byte) []batchResult {
	tb.Helper()
	var out []batchResult
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		out = append(out, decode[batchResult](tb, sc.Bytes()))
	}
	return out
}

const batchBody = `{"requests":[
 {"custom_id":"a","params":{"model":"claude-haiku-4-5","max_tokens":1024,"messages":[{"role":"user","content":"hi"}]}},
 {"custom_id":"b","params":{"model":"claude-opus-4-6","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}},
 {"custom_id":"c","params":{"model":"claude-opus-4-6","max_tokens":10,"fake_error":true,"messages":[]}},
 {"custom_id":"d","params":{"max_tokens":10,"fake_expire":true,"messages":[]}}]}`

func TestBatchLifecycle(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	r := call(t, "POST", url+"/v1/messages/batches", batchBody)
	b := decode[batchObject](t, r.body)
	if r.status != 200 || !strings.HasPrefix(b.ID, "msgbatch_") || b.Type != "message_batch" || b.ProcessingStatus != "in_progress" ||
		b.RequestCounts != (fakeanthropic.BatchCounts{Processing: 4}) || b.EndedAt != nil || b.ResultsURL != nil || b.ArchivedAt != nil ||
		b.CancelInitiatedAt != nil || b.ExpiresAt.Sub(b.CreatedAt) != 24*time.Hour {
		t.Fatalf("created %d %s", r.status, r.body)
	}
	wantError(t, call(t, "GET", url+"/v1/messages/batches/"+b.ID+"/results", ""), 400, "invalid_request_error")
	wantError(t, call(t, "DELETE", url+"/v1/messages/batches/"+b.ID, ""), 400, "invalid_request_error")

	// Default: ended at the first GET.
	r = call(t, "GET", url+"/v1/messages/batches/"+b.ID, "")
	b = decode[batchObject](t, r.body)
	if b.ProcessingStatus != "ended" || b.EndedAt == nil || b.ResultsURL == nil || *b.ResultsURL != url+"/v1/messages/batches/"+b.ID+"/results" ||
		b.RequestCounts != (fakeanthropic.BatchCounts{Succeeded: 2, Errored: 1, Expired: 1}) {
		t.Fatalf("polled %s", r.body)
	}

	r = call(t, "GET", *b.ResultsURL, "")
	if r.status != 200 || r.header.Get("content-type") != "application/binary" {
		t.Fatalf("results %d %v", r.status, r.header)
	}
	res := readResults(t, r.body)
	if len(res) != 4 || res[0].CustomID != "a" || res[1].CustomID != "b" || res[2].CustomID != "c" || res[3].CustomID != "d" {
		t.Fatalf("results %s", r.body)
	}
	du := fakeanthropic.DefaultUsage
	a, bb := res[0].Result, res[1].Result
	if a.Type != "succeeded" || a.Message == nil || a.Message.Model != "claude-haiku-4-5" || a.Message.Type != "message" ||
		a.Message.StopReason != "end_turn" || a.Message.Usage.OutputTokens != du.OutputTokens || a.Message.Usage.InputTokens != du.InputTokens ||
		a.Message.Usage.CacheReadInputTokens != du.CacheReadInputTokens || a.Message.Usage.ServiceTier != "batch" || a.Message.Content[0].Text != fakeanthropic.JSONText {
		t.Fatalf("result a %+v", a.Message)
	}
	// max_tokens below the fake's output caps the output.
	if bb.Type != "succeeded" || bb.Message.Usage.OutputTokens != 50 || bb.Message.StopReason != "max_tokens" || bb.Message.ID == a.Message.ID {
		t.Fatalf("result b %+v", bb.Message)
	}
	if c := res[2].Result; c.Type != "errored" || c.Message != nil || c.Error == nil || c.Error.Type != "error" || c.Error.Error.Type != "invalid_request_error" {
		t.Fatalf("result c %+v", c)
	}
	if d := res[3].Result; d.Type != "expired" || d.Message != nil || d.Error != nil {
		t.Fatalf("result d %+v", d)
	}

	snap := f.Batches()
	if len(snap) != 1 || snap[0].ID != b.ID || snap[0].Polls != 1 || snap[0].ProcessingStatus != fakeanthropic.BatchEnded ||
		snap[0].Requests[1].Usage != f.BatchUsage(50) || snap[0].Requests[1].Usage.OutputTokens != 50 ||
		snap[0].Requests[2].Result != fakeanthropic.ResultErrored || snap[0].Requests[2].Usage != (fakeanthropic.Usage{}) {
		t.Fatalf("snapshot %+v", snap)
	}

	r = call(t, "DELETE", url+"/v1/messages/batches/"+b.ID, "")
	if d := decode[map[string]string](t, r.body); r.status != 200 || d["id"] != b.ID || d["type"] != "message_batch_deleted" {
		t.Fatalf("delete %s", r.body)
	}
	wantError(t, call(t, "GET", url+"/v1/messages/batches/"+b.ID, ""), 404, "not_found_error")
	wantError(t, call(t, "GET", url+"/v1/messages/batches/"+b.ID+"/results", ""), 404, "not_found_error")
	if len(f.Batches()) != 0 {
		t.Fatal("deleted batch still listed")
	}
	if f.CountPath("/v1/messages/batches") != 1 || f.CountPath("/v1/messages/batches/"+b.ID) != 4 || f.Count() != 8 {
		t.Fatalf("counts %d %d %d", f.CountPath("/v1/messages/batches"), f.CountPath("/v1/messages/batches/"+b.ID), f.Count())
	}
	if got := f.Requests(); len(got) != 8 || got[0].Path != "/v1/messages/batches" || !strings.Contains(string(got[0].Body), "fake_error") {
		t.Fatalf("captured %d", len(got))
	}
}

func TestBatchEndsAfterPollsAndTime(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, fakeanthropic.Options{BatchEndPolls: 3})
	id := decode[batchObject](t, call(t, "POST", url+"/v1/messages/batches", batchBody).body).ID
	for i, want := range []string{"in_progress", "in_progress", "ended", "ended"} {
		if got := decode[batchObject](t, call(t, "GET", url+"/v1/messages/batches/"+id, "").body).ProcessingStatus; got != want {
			t.Fatalf("poll %d: %s, want %s", i+1, got, want)
		}
	}

	f, url := newFake(t, fakeanthropic.Options{BatchEndAfter: 500 * time.Millisecond})
	id = decode[batchObject](t, call(t, "POST", url+"/v1/messages/batches", batchBody).body).ID
	if got := decode[batchObject](t, call(t, "GET", url+"/v1/messages/batches/"+id, "").body).ProcessingStatus; got != "in_progress" {
		t.Fatalf("early poll %s", got)
	}
	time.Sleep(600 * time.Millisecond)
	if got := decode[batchObject](t, call(t, "GET", url+"/v1/messages/batches/"+id, "").body).ProcessingStatus; got != "ended" {
		t.Fatalf("late poll %s", got)
	}

	// EndBatch ends a batch without a poll.
	id = decode[batchObject](t, call(t, "POST", url+"/v1/messages/batches", batchBody).body).ID
	if !f.EndBatch(id) || f.EndBatch("msgbatch_nope") {
		t.Fatal("EndBatch")
	}
	res := readResults(t, call(t, "GET", url+"/v1/messages/batches/"+id+"/results", "").body)
	if len(res) != 4 || res[0].Result.Type != "succeeded" {
		t.Fatalf("results after EndBatch %+v", res)
	}
}

func TestBatchCancel(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{BatchEndPolls: 100})
	id := decode[batchObject](t, call(t, "POST", url+"/v1/messages/batches", batchBody).body).ID
	r := call(t, "POST", url+"/v1/messages/batches/"+id+"/cancel", "")
	b := decode[batchObject](t, r.body)
	if r.status != 200 || b.ProcessingStatus != "canceling" || b.CancelInitiatedAt == nil || b.EndedAt != nil {
		t.Fatalf("cancel %s", r.body)
	}
	// A canceling batch ends at its next poll, every request canceled.
	b = decode[batchObject](t, call(t, "GET", url+"/v1/messages/batches/"+id, "").body)
	if b.ProcessingStatus != "ended" || b.RequestCounts != (fakeanthropic.BatchCounts{Canceled: 4}) {
		t.Fatalf("after cancel %+v", b)
	}
	for _, res := range readResults(t, call(t, "GET", url+"/v1/messages/batches/"+id+"/results", "").body) {
		if res.Result.Type != "canceled" || res.Result.Message != nil {
			t.Fatalf("canceled result %+v", res)
		}
	}
	wantError(t, call(t, "POST", url+"/v1/messages/batches/"+id+"/cancel", ""), 400, "invalid_request_error")
	if s := f.Batches()[0]; s.CancelInitiatedAt.IsZero() || s.EndedAt.IsZero() || s.Counts.Canceled != 4 {
		t.Fatalf("snapshot %+v", s)
	}
}

func TestBatchList(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, fakeanthropic.Options{})
	var ids []string
	for range 5 {
		ids = append(ids, decode[batchObject](t, call(t, "POST", url+"/v1/messages/batches", batchBody).body).ID)
	}
	type list struct {
		Data    []batchObject `json:"data"`
		HasMore bool          `json:"has_more"`
		FirstID *string       `json:"first_id"`
		LastID  *string       `json:"last_id"`
	}
	page := func(q string) (list, []string) {
		r := call(t, "GET", url+"/v1/messages/batches"+q, "")
		if r.status != 200 {
			t.Fatalf("list %s: %d %s", q, r.status, r.body)
		}
		l := decode[list](t, r.body)
		var got []string
		for _, b := range l.Data {
			got = append(got, b.ID)
		}
		return l, got
	}
	l, got := page("?limit=2")
	// Newest first.
	if strings.Join(got, ",") != ids[4]+","+ids[3] || !l.HasMore || *l.FirstID != ids[4] || *l.LastID != ids[3] {
		t.Fatalf("first page %+v", got)
	}
	l, got = page("?limit=2&after_id=" + ids[3])
	if strings.Join(got, ",") != ids[2]+","+ids[1] || !l.HasMore {
		t.Fatalf("after page %+v", got)
	}
	l, got = page("?limit=2&after_id=" + ids[1])
	if strings.Join(got, ",") != ids[0] || l.HasMore {
		t.Fatalf("last page %+v", got)
	}
	l, got = page("?limit=2&before_id=" + ids[1])
	if strings.Join(got, ",") != ids[3]+","+ids[2] || !l.HasMore {
		t.Fatalf("before page %+v", got)
	}
	l, got = page("")
	if len(got) != 5 || l.HasMore {
		t.Fatalf("default page %+v", got)
	}
	wantError(t, call(t, "GET", url+"/v1/messages/batches?limit=0", ""), 400, "invalid_request_error")
	wantError(t, call(t, "GET", url+"/v1/messages/batches?after_id=msgbatch_nope", ""), 404, "not_found_error")

	_, empty := newFake(t, fakeanthropic.Options{})
	r := call(t, "GET", empty+"/v1/messages/batches", "")
	if string(r.body) != `{"data":[],"has_more":false,"first_id":null,"last_id":null}` {
		t.Fatalf("empty list %s", r.body)
	}
}

func TestBatchErrors(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	for _, body := range []string{`{`, `{"requests":[]}`, `{"requests":[{"custom_id":"","params":{}}]}`,
		`{"requests":[{"custom_id":"x","params":{}},{"custom_id":"x","params":{}}]}`, `{"requests":[{"custom_id":"x","params":[]}]}`} {
		wantError(t, call(t, "POST", url+"/v1/messages/batches", body), 400, "invalid_request_error")
	}
	wantError(t, call(t, "GET", url+"/v1/messages/batches/msgbatch_nope", ""), 404, "not_found_error")
	wantError(t, call(t, "POST", url+"/v1/messages/batches/msgbatch_nope/cancel", ""), 404, "not_found_error")
	wantError(t, call(t, "DELETE", url+"/v1/messages/batches/msgbatch_nope", ""), 404, "not_found_error")
	wantError(t, call(t, "GET", url+"/v1/messages/batches/msgbatch_nope/other", ""), 404, "not_found_error")
	wantError(t, call(t, "PUT", url+"/v1/messages/batches", ""), 405, "invalid_request_error")

	// A step for the batches path applies there and nowhere else.
	f.Script(fakeanthropic.Step{Path: "/v1/messages/batches", Status: 529})
	if r := call(t, "POST", url+"/v1/messages", `{}`); r.status != 200 {
		t.Fatalf("messages took the batches step: %d", r.status)
	}
	wantError(t, call(t, "POST", url+"/v1/messages/batches", batchBody), 529, "overloaded_error")
	if r := call(t, "POST", url+"/v1/messages/batches", batchBody); r.status != 200 {
		t.Fatalf("step used twice: %d", r.status)
	}
}

func TestBatchSDK(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{BatchEndPolls: 2})
	client := anthropic.NewClient(option.WithBaseURL(url), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()
	req := func(id string, max int64) anthropic.MessageBatchNewParamsRequest {
		return anthropic.MessageBatchNewParamsRequest{CustomID: id, Params: anthropic.MessageBatchNewParamsRequestParams{
			Model: anthropic.ModelClaudeSonnet4_5, MaxTokens: max,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}}
	}
	b, err := client.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{req("one", 1024), req("two", 7)}})
	if err != nil {
		t.Fatal(err)
	}
	if b.ProcessingStatus != anthropic.MessageBatchProcessingStatusInProgress || b.RequestCounts.Processing != 2 {
		t.Fatalf("created %+v", b)
	}
	for b.ProcessingStatus != anthropic.MessageBatchProcessingStatusEnded {
		if b, err = client.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{}); err != nil {
			t.Fatal(err)
		}
	}
	if f.Batches()[0].Polls != 2 || b.RequestCounts.Succeeded != 2 || b.EndedAt.IsZero() || b.ResultsURL == "" {
		t.Fatalf("ended %+v", b)
	}
	stream := client.Messages.Batches.ResultsStreaming(ctx, b.ID, anthropic.MessageBatchResultsParams{})
	var outputs []int64
	for stream.Next() {
		r := stream.Current()
		m := r.Result.AsSucceeded().Message
		if r.Result.Type != "succeeded" || string(m.Model) != string(anthropic.ModelClaudeSonnet4_5) || m.Usage.ServiceTier != "batch" {
			t.Fatalf("result %+v", r)
		}
		outputs = append(outputs, m.Usage.OutputTokens)
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(outputs) != 2 || outputs[0] != fakeanthropic.DefaultUsage.OutputTokens || outputs[1] != 7 {
		t.Fatalf("outputs %v", outputs)
	}
	pager := client.Messages.Batches.ListAutoPaging(ctx, anthropic.MessageBatchListParams{Limit: anthropic.Int(1)})
	n := 0
	for pager.Next() {
		n++
	}
	if pager.Err() != nil || n != 1 {
		t.Fatalf("listed %d: %v", n, pager.Err())
	}
	if d, err := client.Messages.Batches.Delete(ctx, b.ID, anthropic.MessageBatchDeleteParams{}); err != nil || d.ID != b.ID {
		t.Fatalf("delete %+v %v", d, err)
	}
	_, err = client.Messages.Batches.Get(ctx, b.ID, anthropic.MessageBatchGetParams{})
	var apiErr *anthropic.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Fatalf("get deleted: %v", err)
	}
}

type fileObject struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"`
	Filename     string    `json:"filename"`
	MimeType     string    `json:"mime_type"`
	SizeBytes    int64     `json:"size_bytes"`
	CreatedAt    time.Time `json:"created_at"`
	Downloadable bool      `json:"downloadable"`
}

type fileList struct {
	Data     []fileObject `json:"data"`
	HasMore  bool         `json:"has_more"`
	FirstID  string       `json:"first_id"`
	LastID   string       `json:"last_id"`
	NextPage *string      `json:"next_page"`
}

func upload(tb testing.TB, url, name, typ string, content []byte, headers ...string) reply {
	tb.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := make(map[string][]string)
	h["Content-Disposition"] = []string{`form-data; name="file"; filename="` + name + `"`}
	if typ != "" {
		h["Content-Type"] = []string{typ}
	}
	pw, _ := mw.CreatePart(h)
	_, _ = pw.Write(content)
	_ = mw.Close()
	return call(tb, "POST", url+"/v1/files", body.String(), append([]string{"content-type", mw.FormDataContentType(), "anthropic-beta", fakeanthropic.FilesBeta}, headers...)...)
}

func TestFiles(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{RequireFilesBeta: true})
	beta := []string{"anthropic-beta", "message-batches-2024-09-24," + fakeanthropic.FilesBeta}
	r := upload(t, url, "notes.txt", "", []byte("hello file"))
	fo := decode[fileObject](t, r.body)
	if r.status != 200 || !strings.HasPrefix(fo.ID, "file_") || fo.Type != "file" || fo.Filename != "notes.txt" || fo.MimeType != "text/plain" ||
		fo.SizeBytes != 10 || fo.Downloadable || time.Since(fo.CreatedAt) > time.Minute {
		t.Fatalf("upload %d %s", r.status, r.body)
	}
	pdf := decode[fileObject](t, upload(t, url, "doc.pdf", "application/pdf", []byte("%PDF-1.4")).body)
	if pdf.MimeType != "application/pdf" {
		t.Fatalf("pdf %+v", pdf)
	}

	r = call(t, "GET", url+"/v1/files?limit=1", "", beta...)
	l := decode[fileList](t, r.body)
	if len(l.Data) != 1 || l.Data[0].ID != pdf.ID || !l.HasMore || l.FirstID != pdf.ID || l.LastID != pdf.ID || l.NextPage == nil {
		t.Fatalf("list %s", r.body)
	}
	r = call(t, "GET", url+"/v1/files?limit=1&after_id="+pdf.ID, "", beta...)
	if !strings.Contains(string(r.body), fo.ID) || !strings.Contains(string(r.body), `"has_more":false`) {
		t.Fatalf("second page %s", r.body)
	}
	r = call(t, "GET", url+"/v1/files?page="+*l.NextPage, "", beta...)
	if !strings.Contains(string(r.body), fo.ID) {
		t.Fatalf("page cursor %s", r.body)
	}

	if got := decode[fileObject](t, call(t, "GET", url+"/v1/files/"+fo.ID, "", beta...).body); got != fo {
		t.Fatalf("metadata %+v, want %+v", got, fo)
	}
	r = call(t, "GET", url+"/v1/files/"+fo.ID+"/content", "", beta...)
	if r.status != 200 || string(r.body) != "hello file" || r.header.Get("content-type") != "text/plain" {
		t.Fatalf("content %d %q %v", r.status, r.body, r.header)
	}
	r = call(t, "DELETE", url+"/v1/files/"+fo.ID, "", beta...)
	if d := decode[map[string]string](t, r.body); d["id"] != fo.ID || d["type"] != "file_deleted" {
		t.Fatalf("delete %s", r.body)
	}
	wantError(t, call(t, "GET", url+"/v1/files/"+fo.ID, "", beta...), 404, "not_found_error")
	wantError(t, call(t, "GET", url+"/v1/files/"+fo.ID+"/content", "", beta...), 404, "not_found_error")
	wantError(t, call(t, "DELETE", url+"/v1/files/"+fo.ID, "", beta...), 404, "not_found_error")
	wantError(t, call(t, "GET", url+"/v1/files", ""), 400, "invalid_request_error")
	wantError(t, call(t, "POST", url+"/v1/files", "x", "content-type", "text/plain", "anthropic-beta", fakeanthropic.FilesBeta), 400, "invalid_request_error")

	out := f.AddFile("chart.png", "image/png", []byte{0x89, 'P', 'N', 'G'}, true)
	if files := f.Files(); len(files) != 2 || files[0].ID != pdf.ID || files[1].ID != out.ID || !files[1].Downloadable {
		t.Fatalf("Files %+v", files)
	}
	if r := call(t, "GET", url+"/v1/files/"+out.ID+"/content", "", beta...); r.header.Get("content-type") != "image/png" || len(r.body) != 4 {
		t.Fatalf("added content %v", r.header)
	}
}

func TestFilesSDK(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, fakeanthropic.Options{})
	client := anthropic.NewClient(option.WithBaseURL(url), option.WithAPIKey("sk-test"), option.WithMaxRetries(0))
	ctx := context.Background()
	betas := []anthropic.AnthropicBeta{anthropic.AnthropicBetaFilesAPI2025_04_14}
	up, err := client.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{File: anthropic.File(strings.NewReader("a,b\n1,2\n"), "t.csv", "text/csv"), Betas: betas})
	if err != nil {
		t.Fatal(err)
	}
	if up.Filename != "t.csv" || up.MimeType != "text/csv" || up.SizeBytes != 8 {
		t.Fatalf("upload %+v", up)
	}
	meta, err := client.Beta.Files.GetMetadata(ctx, up.ID, anthropic.BetaFileGetMetadataParams{Betas: betas})
	if err != nil || meta.ID != up.ID || !meta.CreatedAt.Equal(up.CreatedAt) {
		t.Fatalf("metadata %+v %v", meta, err)
	}
	resp, err := client.Beta.Files.Download(ctx, up.ID, anthropic.BetaFileDownloadParams{Betas: betas})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "a,b\n1,2\n" {
		t.Fatalf("download %q", b)
	}
	pager := client.Beta.Files.ListAutoPaging(ctx, anthropic.BetaFileListParams{Betas: betas})
	n := 0
	for pager.Next() {
		n++
	}
	if pager.Err() != nil || n != 1 {
		t.Fatalf("listed %d %v", n, pager.Err())
	}
	if d, err := client.Beta.Files.Delete(ctx, up.ID, anthropic.BetaFileDeleteParams{Betas: betas}); err != nil || d.ID != up.ID {
		t.Fatalf("delete %+v %v", d, err)
	}
}

type usageExtras struct {
	OutputTokens  int64  `json:"output_tokens"`
	ServiceTier   string `json:"service_tier"`
	Speed         string `json:"speed"`
	InferenceGeo  string `json:"inference_geo"`
	ServerToolUse *struct {
		WebSearchRequests int64 `json:"web_search_requests"`
		WebFetchRequests  int64 `json:"web_fetch_requests"`
	} `json:"server_tool_use"`
	Iterations []struct {
		Type                     string `json:"type"`
		Model                    string `json:"model"`
		InputTokens              int64  `json:"input_tokens"`
		OutputTokens             int64  `json:"output_tokens"`
		CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
		CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	} `json:"iterations"`
}

var iterations = []fakeanthropic.Iteration{
	{Type: "compaction", InputTokens: 1000, OutputTokens: 200},
	{Type: "message", Model: "claude-opus-4-6", InputTokens: 25, OutputTokens: 120, CacheReadInputTokens: 300, CacheCreationInputTokens: 100},
	{Type: "advisor_message", Model: "claude-haiku-4-5", InputTokens: 5, OutputTokens: 6},
}

func TestUsageExtrasJSON(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, fakeanthropic.Options{ServedModel: "claude-fallback-1", ServiceTier: "priority", Speed: "fast", InferenceGeo: "us",
		ServerToolUse: &fakeanthropic.ServerToolUse{WebSearchRequests: 2, WebFetchRequests: 3}, Iterations: iterations})
	r := call(t, "POST", url+"/v1/messages", `{"model":"claude-opus-4-6","max_tokens":10}`)
	m := decode[struct {
		Model string      `json:"model"`
		Usage usageExtras `json:"usage"`
	}](t, r.body)
	u := m.Usage
	if m.Model != "claude-fallback-1" || u.ServiceTier != "priority" || u.Speed != "fast" || u.InferenceGeo != "us" || u.ServerToolUse == nil ||
		u.ServerToolUse.WebSearchRequests != 2 || u.ServerToolUse.WebFetchRequests != 3 || len(u.Iterations) != 3 ||
		u.Iterations[0].Type != "compaction" || u.Iterations[0].Model != "" || u.Iterations[0].InputTokens != 1000 ||
		u.Iterations[1].CacheReadInputTokens != 300 || u.Iterations[1].CacheCreationInputTokens != 100 || u.Iterations[2].Model != "claude-haiku-4-5" {
		t.Fatalf("usage %s", r.body)
	}
	if strings.Contains(string(r.body), `"compaction","model"`) {
		t.Fatalf("compaction iteration should carry no model: %s", r.body)
	}
}

// streamUsages returns the message model and usage of message_start, and
// the usage of message_delta.
func streamUsages(tb testing.TB, body []byte) (model string, start, delta usageExtras, startRaw, deltaRaw string) {
	tb.Helper()
	for _, d := range sseData(tb, body) {
		var ev struct {
			Type    string          `json:"type"`
			Usage   json.RawMessage `json:"usage"`
			Message struct {
				Model string          `json:"model"`
				Usage json.RawMessage `json:"usage"`
			} `json:"message"`
		}
		if err := json.Unmarshal([]byte(d), &ev); err != nil {
			tb.Fatalf("event %q: %v", d, err)
		}
		switch ev.Type {
		case "message_start":
			model, startRaw = ev.Message.Model, string(ev.Message.Usage)
			start = decode[usageExtras](tb, ev.Message.Usage)
		case "message_delta":
			deltaRaw = string(ev.Usage)
			delta = decode[usageExtras](tb, ev.Usage)
		}
	}
	return
}

func TestUsageExtrasStreamStep(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{Deltas: 2})
	plain := call(t, "POST", url+"/v1/messages", `{"stream":true}`)
	plainJSON := call(t, "POST", url+"/v1/messages", `{}`)
	f.Script(fakeanthropic.Step{ServedModel: "claude-fallback-2", Speed: "fast", InferenceGeo: "eu",
		ServerToolUse: &fakeanthropic.ServerToolUse{WebSearchRequests: 4}, Iterations: iterations[:2]})
	r := call(t, "POST", url+"/v1/messages", `{"stream":true}`)
	model, start, delta, startRaw, deltaRaw := streamUsages(t, r.body)
	if model != "claude-fallback-2" || start.Speed != "fast" || start.InferenceGeo != "eu" || start.ServiceTier != "standard" ||
		start.ServerToolUse != nil || start.Iterations != nil {
		t.Fatalf("message_start usage %s", startRaw)
	}
	if delta.ServerToolUse == nil || delta.ServerToolUse.WebSearchRequests != 4 || len(delta.Iterations) != 2 || delta.OutputTokens != 2 ||
		delta.Speed != "" || delta.InferenceGeo != "" {
		t.Fatalf("message_delta usage %s", deltaRaw)
	}
	// The step was for one request only: the next answers are the defaults again.
	if again := call(t, "POST", url+"/v1/messages", `{"stream":true}`); !bytes.Equal(again.body, plain.body) {
		t.Fatalf("after the step:\n%s\nwant\n%s", again.body, plain.body)
	}
	if again := call(t, "POST", url+"/v1/messages", `{}`); !bytes.Equal(again.body, plainJSON.body) {
		t.Fatalf("after the step: %s", again.body)
	}
	model, start, delta, _, _ = streamUsages(t, plain.body)
	if model != fakeanthropic.Model || start.Speed != "" || delta.Iterations != nil || delta.ServerToolUse != nil {
		t.Fatalf("defaults carry extras: %s", plain.body)
	}
}

func TestLargeText(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	const size = 5 << 20
	f.Script(fakeanthropic.Step{LargeText: size})
	r := call(t, "POST", url+"/v1/messages", `{}`)
	m := decode[struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		Usage fakeanthropicUsage `json:"usage"`
	}](t, r.body)
	du := fakeanthropic.DefaultUsage
	if len(m.Content) != 1 || len(m.Content[0].Text) < size || m.Usage.OutputTokens != du.OutputTokens || m.Usage.InputTokens != du.InputTokens {
		t.Fatalf("large reply: %d bytes of text, usage %+v", len(m.Content[0].Text), m.Usage)
	}
	if r.header.Get("content-length") != "" && r.header.Get("content-length") != strconv.Itoa(len(r.body)) {
		t.Fatalf("content-length %s for %d bytes", r.header.Get("content-length"), len(r.body))
	}
	if ci, ui := bytes.Index(r.body, []byte(`"content":`)), bytes.LastIndex(r.body, []byte(`"usage":`)); ci < 0 || ui < ci || len(r.body)-ui > 1000 {
		t.Fatalf("usage should come after the content, at the end (content at %d, usage at %d of %d)", ci, ui, len(r.body))
	}

	_, url = newFake(t, fakeanthropic.Options{LargeText: 100_000})
	c := decode[chatCompletion](t, call(t, "POST", url+"/v1/chat/completions", chatBody).body)
	if len(c.Choices[0].Message.Content) < 100_000 || c.Usage.CompletionTokens != 40 {
		t.Fatalf("large chat reply %d", len(c.Choices[0].Message.Content))
	}
}

type fakeanthropicUsage struct {
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
}

// rawDo sends a request with a transport that neither asks for nor undoes
// compression, so that what the fake sent is what the test reads.
func rawDo(tb testing.TB, method, url, body string) (*http.Response, []byte) {
	tb.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("x-api-key", "sk-test")
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	resp, err := client.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return resp, b
}

func gunzip(tb testing.TB, b []byte) []byte {
	tb.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("not gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		tb.Fatalf("gunzip: %v", err)
	}
	return out
}

func TestGzip(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{Gzip: true})
	resp, b := rawDo(t, "POST", url+"/v1/messages", `{}`)
	if cl := resp.Header.Get("Content-Length"); resp.Header.Get("Content-Encoding") != "gzip" || cl != "" && cl != strconv.Itoa(len(b)) {
		t.Fatalf("headers %v", resp.Header)
	}
	plain := gunzip(t, b)
	if !bytes.Contains(plain, []byte(fakeanthropic.JSONText)) || !json.Valid(plain) {
		t.Fatalf("gunzipped %.200s", plain)
	}
	// Errors are compressed too.
	resp, b = rawDo(t, "GET", url+"/v1/nope", "")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(string(gunzip(t, b)), "not_found_error") {
		t.Fatalf("error %d %v", resp.StatusCode, resp.Header)
	}
	// Go's default transport asked for gzip and undoes it.
	if r := call(t, "POST", url+"/v1/messages", `{}`); !bytes.Equal(r.body, plain) {
		t.Fatal("transparent decompression differs")
	}

	// One gzipped stream by Step, on a fake that does not compress otherwise.
	f, url = newFake(t, fakeanthropic.Options{Deltas: 3})
	f.Script(fakeanthropic.Step{Gzip: true})
	resp, b = rawDo(t, "POST", url+"/v1/messages", `{"stream":true}`)
	if resp.Header.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("stream headers %v", resp.Header)
	}
	events := sseData(t, gunzip(t, b))
	if len(events) != 9 || !strings.Contains(events[len(events)-1], "message_stop") {
		t.Fatalf("events %q", events)
	}
	if resp, _ := rawDo(t, "POST", url+"/v1/messages", `{}`); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("gzip step used twice")
	}
	// A dropped gzip stream stays broken: no gzip trailer makes it look whole.
	f.Script(fakeanthropic.Step{Gzip: true, DropAfter: 2})
	req, _ := http.NewRequest("POST", url+"/v1/messages", strings.NewReader(`{"stream":true}`))
	req.Header.Set("x-api-key", "sk-test")
	dresp, err := (&http.Client{Transport: &http.Transport{DisableCompression: true}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(dresp.Body)
	if err == nil {
		_, err = io.ReadAll(zr)
	}
	dresp.Body.Close()
	if err == nil {
		t.Fatal("a dropped gzip stream read to its end")
	}

	f.Script(fakeanthropic.Step{Path: "/v1/chat/completions", Gzip: true})
	resp, b = rawDo(t, "POST", url+"/v1/chat/completions", `{"stream":true,"stream_options":{"include_usage":true}}`)
	if data := sseData(t, gunzip(t, b)); resp.Header.Get("Content-Encoding") != "gzip" || data[len(data)-1] != "[DONE]" {
		t.Fatalf("chat stream %v %q", resp.Header, data)
	}
}

func TestSlowHeaders(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	f.Script(fakeanthropic.Step{SlowHeaders: 150 * time.Millisecond})
	start := time.Now()
	if r := call(t, "POST", url+"/v1/messages", `{}`); r.status != 200 || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("slow headers %d after %v", r.status, time.Since(start))
	}
	if f.Snapshot(f.Last()).Cancelled {
		t.Fatal("patient client marked cancelled")
	}

	// A client that gives up before the headers: the fake stops waiting and records it.
	for _, st := range []fakeanthropic.Step{{SlowHeaders: 10 * time.Second}, {Stall: 10 * time.Second},
		{Path: "/v1/chat/completions", SlowHeaders: 10 * time.Second}} {
		f.Script(st)
		path := st.Path
		if path == "" {
			path = "/v1/messages"
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		req, _ := http.NewRequestWithContext(ctx, "POST", url+path, strings.NewReader(`{}`))
		req.Header.Set("x-api-key", "sk-test")
		start := time.Now()
		_, err := http.DefaultClient.Do(req)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%+v: want a timeout, got %v", st, err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !f.Snapshot(f.Last()).Cancelled {
			if time.Now().After(deadline) {
				t.Fatalf("%+v: cancellation not recorded", st)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if time.Since(start) > 5*time.Second {
			t.Fatalf("%+v: the fake kept waiting", st)
		}
	}
}

func TestCountPath(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{NoCapture: true})
	call(t, "POST", url+"/v1/messages", `{}`)
	call(t, "POST", url+"/v1/messages?beta=true", `{}`)
	call(t, "POST", url+"/v1/messages/count_tokens", `{}`)
	call(t, "GET", url+"/v1/models", "")
	call(t, "GET", url+"/v1/files", "")
	call(t, "GET", url+"/v1/unknown", "")
	if f.Count() != 6 || f.CountPath("/v1/messages") != 2 || f.CountPath("/v1/messages/count_tokens") != 1 || f.CountPath("/v1/models") != 1 ||
		f.CountPath("/v1/files") != 1 || f.CountPath("/v1/unknown") != 1 || f.CountPath("/v1/never") != 0 {
		t.Fatalf("Count %d, messages %d", f.Count(), f.CountPath("/v1/messages"))
	}
}

func TestExistingRoutesUnchanged(t *testing.T) {
	t.Parallel()
	f, url := newFake(t, fakeanthropic.Options{})
	r := call(t, "POST", url+"/v1/messages", `{"model":"claude-opus-4-6"}`)
	want := `"model":"` + fakeanthropic.Model + `"`
	if r.status != 200 || !strings.Contains(string(r.body), want) ||
		!strings.HasSuffix(string(r.body), `"output_tokens":120,"service_tier":"standard"}}`) {
		t.Fatalf("messages %s", r.body)
	}
	if r := call(t, "POST", url+"/v1/messages/count_tokens", `{}`); string(r.body) != `{"input_tokens":42}` {
		t.Fatalf("count_tokens %s", r.body)
	}
	if r := call(t, "GET", url+"/v1/models", ""); !strings.Contains(string(r.body), fakeanthropic.Model) {
		t.Fatalf("models %s", r.body)
	}
	// Steps without a Path are for /v1/messages only, in order.
	f.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{Status: 400})
	call(t, "GET", url+"/v1/models", "")
	call(t, "POST", url+"/v1/chat/completions", chatBody)
	wantError(t, call(t, "POST", url+"/v1/messages", `{}`), 529, "overloaded_error")
	wantError(t, call(t, "POST", url+"/v1/messages", `{}`), 400, "invalid_request_error")
	if r := call(t, "POST", url+"/v1/messages", `{}`); r.status != 200 {
		t.Fatalf("script not used up: %d", r.status)
	}
	noKey, _ := http.Post(url+"/v1/messages/batches", "application/json", strings.NewReader(batchBody))
	noKey.Body.Close()
	if noKey.StatusCode != 401 {
		t.Fatalf("batches without a key: %d", noKey.StatusCode)
	}
}
