package fakeupstream_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/bench/fakeupstream"
)

func MustStart(tb testing.TB) *fakeupstream.Server {
	tb.Helper()
	s, err := fakeupstream.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestMessageJSON(t *testing.T) {
	s := MustStart(t)
	for i := 0; i < 3; i++ { // same keep-alive connection
		resp, err := http.Post(s.URL()+"/v1/messages", "application/json",
			strings.NewReader(`{"model":"m","max_tokens":5,"stream":false,"messages":[]}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(b, fakeupstream.MessageBody()) {
			t.Fatalf("status %d body %q", resp.StatusCode, b)
		}
		var m struct {
			Usage struct {
				InputTokens  int `json:"input_tokens"`
				OutputTokens int `json:"output_tokens"`
				CacheRead    int `json:"cache_read_input_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.Usage.InputTokens != fakeupstream.InputTokens || m.Usage.OutputTokens != fakeupstream.OutputTokens ||
			m.Usage.CacheRead != fakeupstream.CacheReadTokens {
			t.Fatalf("usage %+v", m.Usage)
		}
		if len(b) < 800 || len(b) > 1400 {
			t.Fatalf("body is %d bytes, want ~1 KB", len(b))
		}
	}
}

func TestOtherEndpoints(t *testing.T) {
	s := MustStart(t)
	for _, tc := range []struct {
		method, path string
		status       int
		want         string
	}{
		{"POST", "/v1/messages/count_tokens", 200, `"input_tokens":25`},
		{"GET", "/v1/models", 200, `"has_more":false`},
		{"GET", "/v1/models/x", 200, `"type":"model"`},
		{"GET", "/nope", 404, `not_found_error`},
	} {
		req, _ := http.NewRequest(tc.method, s.URL()+tc.path, strings.NewReader("{}"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Fatalf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, b)
		}
	}
}

func TestStreamSequenceAndChunkedRequest(t *testing.T) {
	s := MustStart(t)
	// A chunked request body (unknown length) must work too.
	body := io.MultiReader(strings.NewReader(`{"model":"m","stream"`), strings.NewReader(` : true}`))
	req, _ := http.NewRequest("POST", s.URL()+"/v1/messages?x-bench-spacing-ms=5", body)
	req.Header.Set(fakeupstream.HeaderEvents, "4")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content-type %q", ct)
	}
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if e, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, e)
		}
	}
	want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
	if got := strings.Join(events, " "); got != want {
		t.Fatalf("events %s", got)
	}
	if el := time.Since(start); el < 20*time.Millisecond {
		t.Fatalf("4 events at 5 ms took only %v", el)
	}
}

func TestStreamEndsWhenClientLeaves(t *testing.T) {
	s := MustStart(t)
	req, _ := http.NewRequest("POST", s.URL()+"/v1/messages", strings.NewReader(`{"stream":true}`))
	req.Header.Set(fakeupstream.HeaderSpacingMS, "60000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hung on an abandoned stream")
	}
}
