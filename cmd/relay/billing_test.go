package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	openaiopt "github.com/openai/openai-go/v3/option"

	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

// fastBatches polls batches every 100 ms.
func fastBatches(c *config.Config) { c.Quota.BatchPoll = 100 * time.Millisecond }

type logRow struct {
	RequestID string `json:"request_id"`
	KeyID     string `json:"key_id"`
	Path      string `json:"path"`
	Endpoint  string `json:"endpoint"`
	Status    int    `json:"status"`
	ErrorType string `json:"error_type"`
	Total     int64  `json:"total_tokens"`
	Input     int64  `json:"input_tokens"`
	Output    int64  `json:"output_tokens"`
	Batch     bool   `json:"batch"`
	Estimated bool   `json:"estimated"`
}

// adminLogs reads /admin/usage/logs with the given query until cond holds.
func (r *testRelay) adminLogs(t *testing.T, token, query string, cond func([]logRow) bool) []logRow {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := r.do(t, http.MethodGet, "/admin/usage/logs?limit=500&"+query, "Bearer "+token, nil)
		var out struct {
			Data []logRow `json:"data"`
		}
		_ = json.Unmarshal(b, &out)
		if resp.StatusCode == 200 && cond(out.Data) {
			return out.Data
		}
		if time.Now().After(deadline) {
			t.Fatalf("logs (%s) never satisfied the condition: %d %s", query, resp.StatusCode, b)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// TestRefusalsAreRecorded: every refusal of a known key is one zero-token
// record, visible in the admin logs (also filtered by status) and in the
// key holder's own logs.
func TestRefusalsAreRecorded(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "tiny", "token_limit": 10, "rate_limit_tier": "basic"})
	// 429: max_tokens alone cannot fit, and no retry can help.
	resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false))
	if resp.StatusCode != 429 || resp.Header.Get("x-should-retry") != "false" || !strings.Contains(string(b), "rate_limit_error") {
		t.Fatalf("over quota: %d %v %s", resp.StatusCode, resp.Header, b)
	}
	// 400: a duplicate key; 404: an unknown path; 405: a wrong method.
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, json.RawMessage(`{"max_tokens":1,"max_tokens":2}`)); resp.StatusCode != 400 {
		t.Fatalf("duplicate key: %d %s", resp.StatusCode, b)
	}
	if resp, b := r.do(t, http.MethodPost, "/v1/nothing", "Bearer "+key, messagesBody(false)); resp.StatusCode != 404 || !strings.Contains(string(b), "not_found_error") {
		t.Fatalf("unknown path: %d %s", resp.StatusCode, b)
	}
	if resp, _ := r.do(t, http.MethodGet, "/v1/messages", "Bearer "+key, nil); resp.StatusCode != 405 {
		t.Fatalf("GET /v1/messages: %d", resp.StatusCode)
	}
	// 401 for a disabled key.
	if resp, b := r.do(t, http.MethodPost, "/admin/api-keys/"+keyID+"/disable", "Bearer "+token, nil); resp.StatusCode != 200 {
		t.Fatalf("disable: %d %s", resp.StatusCode, b)
	}
	time.Sleep(50 * time.Millisecond)
	if resp, _ := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 401 {
		t.Fatalf("disabled: %d", resp.StatusCode)
	}
	if fake.Count() != 0 {
		t.Fatalf("upstream saw %d refused requests", fake.Count())
	}
	rows := r.adminLogs(t, token, "key_id="+keyID, func(rs []logRow) bool { return len(rs) >= 5 })
	statuses := map[int]int{}
	for _, row := range rows {
		statuses[row.Status]++
		if row.Total != 0 || row.ErrorType == "" {
			t.Fatalf("refusal row %+v", row)
		}
	}
	for _, s := range []int{429, 400, 404, 405, 401} {
		if statuses[s] != 1 {
			t.Fatalf("statuses %v", statuses)
		}
	}
	r.adminLogs(t, token, "status=429", func(rs []logRow) bool { return len(rs) == 1 && rs[0].KeyID == keyID })
	if resp, b := r.do(t, http.MethodGet, "/admin/api-keys/"+keyID, "Bearer "+token, nil); resp.StatusCode != 200 || !strings.Contains(string(b), `"tokens_used":0`) {
		t.Fatalf("refusals counted tokens: %s", b)
	}
}

// TestLedgerSeesUsageItDidNotSettle: usage recorded while a key had no
// limit counts once the limit is back.
func TestLedgerSeesUsageItDidNotSettle(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{Usage: fakeanthropic.Usage{InputTokens: 5000, OutputTokens: 100}})
	r := startRelay(t, fake, "KEY_CACHE_TTL=10ms")
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "k", "token_limit": 10_000})
	body := map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": []map[string]any{{"role": "user", "content": "hi"}}}
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, body); resp.StatusCode != 200 {
		t.Fatalf("first: %d %s", resp.StatusCode, b)
	}
	if resp, b := r.do(t, http.MethodPatch, "/admin/api-keys/"+keyID, "Bearer "+token, map[string]any{"token_limit": nil}); resp.StatusCode != 200 {
		t.Fatalf("lift: %d %s", resp.StatusCode, b)
	}
	for range 10 {
		time.Sleep(15 * time.Millisecond)
		if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, body); resp.StatusCode != 200 {
			t.Fatalf("unlimited: %d %s", resp.StatusCode, b)
		}
	}
	r.waitUsage(t, key, 11)
	if resp, b := r.do(t, http.MethodPatch, "/admin/api-keys/"+keyID, "Bearer "+token, map[string]any{"token_limit": 10_000}); resp.StatusCode != 200 {
		t.Fatalf("restore: %d %s", resp.StatusCode, b)
	}
	time.Sleep(30 * time.Millisecond)
	resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, body)
	if resp.StatusCode != 429 || resp.Header.Get("x-should-retry") != "false" {
		t.Fatalf("a key at 56,100 of 10,000 was admitted: %d %s", resp.StatusCode, b)
	}
}

// TestBatchesAreSettledAndIsolated: creating a batch reserves its bound,
// the reconciler settles the succeeded requests' usage (flagged batch),
// fetching the results through the relay bills nothing more, and another
// key can neither see nor touch the batch. On SQLite and PostgreSQL.
func TestBatchesAreSettledAndIsolated(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) { batchSuite(t) })
	t.Run("postgres", func(t *testing.T) { batchSuite(t, "DATABASE_URL="+testenv.MustPostgresDB(t)) })
}

func batchSuite(t *testing.T, extra ...string) {
	fake := fakeanthropic.New(fakeanthropic.Options{BatchEndPolls: 2})
	r := startRelayWith(t, fake, fastBatches, extra...)
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "owner", "token_limit": 1_000_000})
	_, other := r.createKey(t, token, map[string]any{"name": "other"})
	client := anthropic.NewClient(option.WithBaseURL(r.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
	req := func(id string, maxTok int64) anthropic.MessageBatchNewParamsRequest {
		return anthropic.MessageBatchNewParamsRequest{CustomID: id, Params: anthropic.MessageBatchNewParamsRequestParams{
			Model: anthropic.ModelClaudeSonnet4_5, MaxTokens: maxTok,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello " + id))},
		}}
	}
	ctx := context.Background()
	batch, err := client.Messages.Batches.New(ctx, anthropic.MessageBatchNewParams{Requests: []anthropic.MessageBatchNewParamsRequest{
		req("a", 50), req("b", 500), req("c", 1000),
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Another key: 404 on get, results, cancel and delete; an empty list.
	oc := anthropic.NewClient(option.WithBaseURL(r.URL), option.WithAPIKey(other), option.WithMaxRetries(0))
	if _, err := oc.Messages.Batches.Get(ctx, batch.ID, anthropic.MessageBatchGetParams{}); !isStatus(err, 404) {
		t.Fatalf("other key get: %v", err)
	}
	if _, err := oc.Messages.Batches.Cancel(ctx, batch.ID, anthropic.MessageBatchCancelParams{}); !isStatus(err, 404) {
		t.Fatalf("other key cancel: %v", err)
	}
	if _, err := oc.Messages.Batches.Delete(ctx, batch.ID, anthropic.MessageBatchDeleteParams{}); !isStatus(err, 404) {
		t.Fatalf("other key delete: %v", err)
	}
	if resp, b := r.do(t, http.MethodGet, "/v1/messages/batches/"+batch.ID+"/results", "Bearer "+other, nil); resp.StatusCode != 404 {
		t.Fatalf("other key results: %d %s", resp.StatusCode, b)
	}
	page, err := oc.Messages.Batches.List(ctx, anthropic.MessageBatchListParams{})
	if err != nil || len(page.Data) != 0 {
		t.Fatalf("other key lists %d batches (%v)", len(page.Data), err)
	}
	page, err = client.Messages.Batches.List(ctx, anthropic.MessageBatchListParams{})
	if err != nil || len(page.Data) != 1 || page.Data[0].ID != batch.ID {
		t.Fatalf("owner list: %+v %v", page, err)
	}
	// Poll like a client until it ends, then read the results.
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := client.Messages.Batches.Get(ctx, batch.ID, anthropic.MessageBatchGetParams{})
		if err != nil {
			t.Fatal(err)
		}
		if b.ProcessingStatus == anthropic.MessageBatchProcessingStatusEnded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("batch never ended")
		}
		time.Sleep(50 * time.Millisecond)
	}
	stream := client.Messages.Batches.ResultsStreaming(ctx, batch.ID, anthropic.MessageBatchResultsParams{})
	n := 0
	for stream.Next() {
		if stream.Current().Result.Type != "succeeded" {
			t.Fatalf("result %+v", stream.Current())
		}
		n++
	}
	if err := stream.Err(); err != nil || n != 3 {
		t.Fatalf("%d results, %v", n, err)
	}
	// The reconciler settles the three requests' usage, flagged batch.
	want := fakeTotal(fake.BatchUsage(50)) + fakeTotal(fake.BatchUsage(500)) + fakeTotal(fake.BatchUsage(1000))
	rows := r.adminLogs(t, token, "key_id="+keyID, func(rs []logRow) bool {
		k := 0
		for _, x := range rs {
			if x.Batch {
				k++
			}
		}
		return k == 3
	})
	var got int64
	for _, x := range rows {
		if x.Batch {
			got += x.Total
		}
	}
	if got != want {
		t.Fatalf("batch usage %d, want %d", got, want)
	}
	// Fetching results again bills nothing more, and tokens_used is exact.
	time.Sleep(300 * time.Millisecond)
	_, b := r.do(t, http.MethodGet, "/admin/api-keys/"+keyID, "Bearer "+token, nil)
	var k struct {
		TokensUsed int64 `json:"tokens_used"`
	}
	_ = json.Unmarshal(b, &k)
	if k.TokensUsed != want {
		t.Fatalf("tokens_used %d, want %d", k.TokensUsed, want)
	}
	if _, err := client.Messages.Batches.Delete(ctx, batch.ID, anthropic.MessageBatchDeleteParams{}); err != nil {
		t.Fatalf("owner delete: %v", err)
	}
}

// TestBatchOverQuotaIsRefused: a batch whose requests' bound cannot fit is
// refused before it leaves.
func TestBatchOverQuotaIsRefused(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelayWith(t, fake, fastBatches)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "small", "token_limit": 5000})
	reqs := []map[string]any{}
	for i := range 3 {
		reqs = append(reqs, map[string]any{"custom_id": "r" + itoa(i), "params": map[string]any{
			"model": "claude-sonnet-4-5", "max_tokens": 2000, "messages": []map[string]any{{"role": "user", "content": "hi"}}}})
	}
	resp, b := r.do(t, http.MethodPost, "/v1/messages/batches", "Bearer "+key, map[string]any{"requests": reqs})
	if resp.StatusCode != 429 || !strings.Contains(string(b), "rate_limit_error") || fake.Count() != 0 {
		t.Fatalf("%d %s (upstream saw %d)", resp.StatusCode, b, fake.Count())
	}
}

// TestFilesAreIsolated: a file uploaded with one key is invisible to another.
func TestFilesAreIsolated(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, a := r.createKey(t, token, map[string]any{"name": "a"})
	_, b := r.createKey(t, token, map[string]any{"name": "b"})
	ca := anthropic.NewClient(option.WithBaseURL(r.URL), option.WithAPIKey(a), option.WithMaxRetries(0))
	cb := anthropic.NewClient(option.WithBaseURL(r.URL), option.WithAPIKey(b), option.WithMaxRetries(0))
	ctx := context.Background()
	f, err := ca.Beta.Files.Upload(ctx, anthropic.BetaFileUploadParams{File: anthropic.File(strings.NewReader("hello file"), "note.txt", "text/plain")})
	if err != nil {
		t.Fatal(err)
	}
	seeded := fake.AddFile("elsewhere.txt", "text/plain", []byte("not through the relay"), true)
	if _, err := cb.Beta.Files.GetMetadata(ctx, f.ID, anthropic.BetaFileGetMetadataParams{}); !isStatus(err, 404) {
		t.Fatalf("other key metadata: %v", err)
	}
	if _, err := cb.Beta.Files.Delete(ctx, f.ID, anthropic.BetaFileDeleteParams{}); !isStatus(err, 404) {
		t.Fatalf("other key delete: %v", err)
	}
	if resp, body := r.do(t, http.MethodGet, "/v1/files/"+f.ID+"/content", "Bearer "+b, nil); resp.StatusCode != 404 {
		t.Fatalf("other key content: %d %s", resp.StatusCode, body)
	}
	if resp, body := r.do(t, http.MethodGet, "/v1/files/"+seeded.ID, "Bearer "+a, nil); resp.StatusCode != 404 {
		t.Fatalf("a file not created through the relay: %d %s", resp.StatusCode, body)
	}
	pa, err := ca.Beta.Files.List(ctx, anthropic.BetaFileListParams{})
	if err != nil || len(pa.Data) != 1 || pa.Data[0].ID != f.ID {
		t.Fatalf("owner list %+v %v", pa, err)
	}
	pb, err := cb.Beta.Files.List(ctx, anthropic.BetaFileListParams{})
	if err != nil || len(pb.Data) != 0 {
		t.Fatalf("other list %+v %v", pb, err)
	}
	if _, err := ca.Beta.Files.GetMetadata(ctx, f.ID, anthropic.BetaFileGetMetadataParams{}); err != nil {
		t.Fatalf("owner metadata: %v", err)
	}
	// A message naming the file: the owner may, another key may not.
	msg := map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": []map[string]any{{"role": "user", "content": []map[string]any{
		{"type": "document", "source": map[string]any{"type": "file", "file_id": f.ID}}, {"type": "text", "text": "summarise"}}}}}
	if resp, body := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+b, msg); resp.StatusCode != 404 || !strings.Contains(string(body), "not_found_error") {
		t.Fatalf("another key's file in a message: %d %s", resp.StatusCode, body)
	}
	if resp, body := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+a, msg); resp.StatusCode != 200 {
		t.Fatalf("own file in a message: %d %s", resp.StatusCode, body)
	}
}

// TestOpenAISDKChatCompletions: the official OpenAI Go SDK, plain and
// streaming, through the relay's /v1/chat/completions, metered exactly.
func TestOpenAISDKChatCompletions(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{Deltas: 6, DeltaText: "chunk "})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	keyID, key := r.createKey(t, token, map[string]any{"name": "openai", "token_limit": 1_000_000})
	client := openai.NewClient(openaiopt.WithBaseURL(r.URL+"/v1/"), openaiopt.WithAPIKey(key), openaiopt.WithMaxRetries(0))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:     "claude-sonnet-4-5",
		MaxTokens: openai.Int(300),
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello")},
	}
	cc, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	cu := fakeanthropic.DefaultChatUsage
	if len(cc.Choices) != 1 || cc.Usage.PromptTokens != cu.PromptTokens || cc.Usage.CompletionTokens != cu.CompletionTokens {
		t.Fatalf("completion %+v", cc)
	}
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	acc := openai.ChatCompletionAccumulator{}
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if acc.Choices[0].Message.Content != strings.Repeat("chunk ", 6) || acc.Usage.CompletionTokens != cu.CompletionTokens {
		t.Fatalf("stream %+v", acc)
	}
	rows := r.adminLogs(t, token, "key_id="+keyID, func(rs []logRow) bool { return len(rs) == 2 })
	for _, row := range rows {
		if row.Endpoint != "chat_completions" || row.Output != cu.CompletionTokens || row.Total != cu.PromptTokens+cu.CompletionTokens || row.Estimated {
			t.Fatalf("row %+v", row)
		}
	}
}

func isStatus(err error, status int) bool {
	var ae *anthropic.Error
	return errors.As(err, &ae) && ae.StatusCode == status
}

func fakeTotal(u fakeanthropic.Usage) int64 {
	return u.InputTokens + u.OutputTokens + u.CacheCreationInputTokens + u.CacheReadInputTokens
}

// TestBatchReconcilerSurvivesRestart: a batch created before a restart is
// settled by the relay that comes up after it.
func TestBatchReconcilerSurvivesRestart(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{BatchEndPolls: 1 << 30})
	dir := t.TempDir()
	r1 := startRelayWith(t, fake, fastBatches, "DATA_DIR="+dir)
	token := r1.adminToken(t)
	keyID, key := r1.createKey(t, token, map[string]any{"name": "restart", "token_limit": 1_000_000})
	body := map[string]any{"requests": []map[string]any{{"custom_id": "only", "params": map[string]any{
		"model": "claude-sonnet-4-5", "max_tokens": 300, "messages": []map[string]any{{"role": "user", "content": "hi"}}}}}}
	resp, b := r1.do(t, http.MethodPost, "/v1/messages/batches", "Bearer "+key, body)
	if resp.StatusCode != 200 {
		t.Fatalf("create: %d %s", resp.StatusCode, b)
	}
	var batch struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(b, &batch)
	time.Sleep(300 * time.Millisecond) // the reconciler polls; the batch is still running
	r1.Stop(t)
	if !fake.EndBatch(batch.ID) {
		t.Fatalf("unknown batch %q", batch.ID)
	}
	r2 := startRelayWith(t, fake, fastBatches, "DATA_DIR="+dir)
	token = r2.adminToken(t)
	want := fakeTotal(fake.BatchUsage(300))
	rows := r2.adminLogs(t, token, "key_id="+keyID, func(rs []logRow) bool {
		for _, x := range rs {
			if x.Batch {
				return true
			}
		}
		return false
	})
	for _, x := range rows {
		if x.Batch && x.Total != want {
			t.Fatalf("batch row %+v, want %d tokens", x, want)
		}
	}
}
