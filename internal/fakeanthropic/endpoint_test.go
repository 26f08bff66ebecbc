package fakeanthropic_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

// MustStart serves a fake with opts on an Endpoint of its own.
func MustStart(tb testing.TB, opts fakeanthropic.Options) *fakeanthropic.Endpoint {
	tb.Helper()
	e, err := fakeanthropic.New(opts).Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.Close() })
	return e
}

// servings runs fn against a fake with opts served both ways: by net/http
// (httptest) and by an Endpoint (fast path).
func servings(t *testing.T, opts fakeanthropic.Options, fn func(t *testing.T, f *fakeanthropic.Server, url string)) {
	t.Run("httptest", func(t *testing.T) {
		t.Parallel()
		f, url := newFake(t, opts)
		fn(t, f, url)
	})
	t.Run("endpoint", func(t *testing.T) {
		t.Parallel()
		e := MustStart(t, opts)
		fn(t, e.Server(), e.URL())
	})
}

const (
	benchMessage = `{"model":"claude-sonnet-4-5-20250929","max_tokens":64,"messages":[{"role":"user","content":"Say hello to the benchmark."}]}`
	benchStream  = `{"model":"claude-sonnet-4-5-20250929","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Stream to the benchmark."}]}`
)

// TestEndpointAnswersAsServeHTTP sends the same requests to a fake served by
// net/http and to one on an Endpoint: the fast path must answer what
// ServeHTTP does, and what it does not take must reach ServeHTTP.
func TestEndpointAnswersAsServeHTTP(t *testing.T) {
	t.Parallel()
	opts := fakeanthropic.Options{NoCapture: true, Deltas: 3, DeltaText: "hi "}
	plain, plainURL := newFake(t, opts)
	e := MustStart(t, opts)
	type req struct {
		method, path, body string
		headers            []string
		step               *fakeanthropic.Step
	}
	reqs := []req{
		{method: "POST", path: "/v1/messages", body: benchMessage},
		{method: "POST", path: "/v1/messages?beta=true", body: benchStream},
		{method: "POST", path: "/v1/messages", body: benchStream, headers: []string{fakeanthropic.HeaderDeltas, "5", fakeanthropic.HeaderSpacingMS, "1"}},
		{method: "POST", path: "/v1/messages", body: `{}`, headers: []string{"x-fake-stream", "true", fakeanthropic.HeaderDeltas, "0"}},
		{method: "POST", path: "/v1/messages", body: benchMessage, headers: []string{fakeanthropic.HeaderDeltas, "junk"}},
		{method: "POST", path: "/v1/messages/count_tokens", body: benchMessage},
		{method: "GET", path: "/v1/models"},
		{method: "GET", path: "/v1/models/" + fakeanthropic.Model},
		{method: "GET", path: "/v1/models/claude-nope"},
		{method: "GET", path: "/v1/nope"},
		{method: "POST", path: "/v1/messages", body: benchMessage, headers: []string{"x-api-key", ""}},
		{method: "POST", path: "/v1/messages", body: benchMessage, step: &fakeanthropic.Step{Status: 529}},
		{method: "POST", path: "/v1/messages", body: benchStream, step: &fakeanthropic.Step{NoFinal: true}},
		{method: "POST", path: "/v1/messages", body: benchStream, headers: []string{"Connection", "close"}},
		{method: "POST", path: "/v1/messages", body: benchMessage},
	}
	// One keep-alive connection each, so that hand-overs happen mid-connection.
	client := func() *http.Client {
		return &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, DisableCompression: true}}
	}
	pc, ec := client(), client()
	for i, rq := range reqs {
		if rq.step != nil {
			plain.Script(*rq.step)
			e.Server().Script(*rq.step)
		}
		do := func(c *http.Client, base string) (*http.Response, []byte) {
			r, _ := http.NewRequest(rq.method, base+rq.path, strings.NewReader(rq.body))
			if rq.body == "" {
				r.Body = nil
			}
			r.Header.Set("x-api-key", "sk-test")
			for j := 0; j+1 < len(rq.headers); j += 2 {
				r.Header.Set(rq.headers[j], rq.headers[j+1])
			}
			resp, err := c.Do(r)
			if err != nil {
				t.Fatalf("%d %s %s: %v", i, rq.method, rq.path, err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("%d %s %s: %v", i, rq.method, rq.path, err)
			}
			return resp, b
		}
		want, wantBody := do(pc, plainURL)
		got, gotBody := do(ec, e.URL())
		if got.StatusCode != want.StatusCode || !bytes.Equal(gotBody, wantBody) {
			t.Fatalf("%d %s %s: endpoint answered %d\n%s\nwant %d\n%s", i, rq.method, rq.path, got.StatusCode, gotBody, want.StatusCode, wantBody)
		}
		want.Header.Del("Date")
		got.Header.Del("Date")
		if !equalHeaders(got.Header, want.Header) || !slices.Equal(got.TransferEncoding, want.TransferEncoding) || got.Close != want.Close {
			t.Fatalf("%d %s %s: endpoint headers %v %v close=%v, want %v %v close=%v", i, rq.method, rq.path,
				got.Header, got.TransferEncoding, got.Close, want.Header, want.TransferEncoding, want.Close)
		}
	}
	if e.Server().Count() != int64(len(reqs)) || e.Server().CountPath("/v1/messages") != plain.CountPath("/v1/messages") {
		t.Fatalf("endpoint counted %d requests, %d on /v1/messages; want %d, %d",
			e.Server().Count(), e.Server().CountPath("/v1/messages"), len(reqs), plain.CountPath("/v1/messages"))
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestStreamShapeHeaders(t *testing.T) {
	t.Parallel()
	servings(t, fakeanthropic.Options{NoCapture: true}, func(t *testing.T, f *fakeanthropic.Server, url string) {
		start := time.Now()
		r := call(t, "POST", url+"/v1/messages", benchStream, fakeanthropic.HeaderDeltas, "4", fakeanthropic.HeaderSpacingMS, "5")
		if el := time.Since(start); el < 20*time.Millisecond {
			t.Fatalf("4 deltas 5 ms apart took only %v", el)
		}
		var types []string
		for _, d := range sseData(t, r.body) {
			types = append(types, decode[struct {
				Type string `json:"type"`
			}](t, []byte(d)).Type)
		}
		want := "message_start content_block_start ping content_block_delta content_block_delta content_block_delta content_block_delta content_block_stop message_delta message_stop"
		if got := strings.Join(types, " "); got != want || !strings.HasPrefix(r.header.Get("content-type"), "text/event-stream") {
			t.Fatalf("events %s (%s)", got, r.header.Get("content-type"))
		}
		if _, _, delta, _, _ := streamUsages(t, r.body); delta.OutputTokens != 4 {
			t.Fatalf("message_delta output_tokens %d, want one per delta", delta.OutputTokens)
		}
		// Without the headers, the options decide (10 deltas by default).
		if n := strings.Count(string(call(t, "POST", url+"/v1/messages", benchStream).body), "event: content_block_delta"); n != 10 {
			t.Fatalf("%d deltas by default", n)
		}
	})
}

func TestStampDeltas(t *testing.T) {
	t.Parallel()
	servings(t, fakeanthropic.Options{NoCapture: true, StampDeltas: true, Deltas: 3}, func(t *testing.T, f *fakeanthropic.Server, url string) {
		for _, path := range []string{"/v1/messages", "/v1/chat/completions"} {
			before := time.Now().UnixNano()
			r := call(t, "POST", url+path, benchStream)
			after := time.Now().UnixNano()
			var stamps []int64
			for _, d := range sseData(t, r.body) {
				var ev struct {
					Delta struct {
						Text string `json:"text"`
					} `json:"delta"`
					Choices []struct {
						Delta struct {
							Content string `json:"content"`
						} `json:"delta"`
					} `json:"choices"`
				}
				if d == "[DONE]" {
					continue
				}
				_ = json.Unmarshal([]byte(d), &ev)
				text := ev.Delta.Text
				if len(ev.Choices) > 0 {
					text = ev.Choices[0].Delta.Content
				}
				if s, ok := strings.CutPrefix(text, "t"); ok {
					ns, err := strconv.ParseInt(strings.TrimSuffix(s, " "), 10, 64)
					if err != nil || !strings.HasSuffix(s, " ") || ns < before || ns > after {
						t.Fatalf("%s: stamp %q not a time within the request", path, text)
					}
					stamps = append(stamps, ns)
				}
			}
			if len(stamps) != 3 || !slices.IsSorted(stamps) {
				t.Fatalf("%s: stamps %v", path, stamps)
			}
		}
	})
}

func TestModel(t *testing.T) {
	t.Parallel()
	_, url := newFake(t, fakeanthropic.Options{})
	m := decode[struct{ Type, ID string }](t, call(t, "GET", url+"/v1/models/"+fakeanthropic.Model, "").body)
	if m.Type != "model" || m.ID != fakeanthropic.Model {
		t.Fatalf("model %+v", m)
	}
	wantError(t, call(t, "GET", url+"/v1/models/claude-nope", ""), 404, "not_found_error")
}

// TestEndpointHandsOverWhatIsNotFast: capture, scripts and requests the fast
// path does not parse are served by ServeHTTP, on the same connection.
func TestEndpointHandsOverWhatIsNotFast(t *testing.T) {
	t.Parallel()
	e := MustStart(t, fakeanthropic.Options{Deltas: 2})
	f := e.Server()
	if r := call(t, "POST", e.URL()+"/v1/messages", `{"stream":true}`); r.status != 200 || f.Last() == nil || len(f.Snapshot(f.Last()).Events) != 2 {
		t.Fatalf("a capturing fake: %d, %+v", r.status, f.Last())
	}

	e = MustStart(t, fakeanthropic.Options{NoCapture: true})
	f = e.Server()
	f.Script(fakeanthropic.Step{Status: 529})
	wantError(t, call(t, "POST", e.URL()+"/v1/messages", benchMessage), 529, "overloaded_error")
	// A chunked request body.
	req, _ := http.NewRequest("POST", e.URL()+"/v1/messages", io.MultiReader(strings.NewReader(`{"model":"m",`), strings.NewReader(`"stream":true}`)))
	req.Header.Set("x-api-key", "sk-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasSuffix(string(b), "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n") {
		t.Fatalf("chunked request: %d %s", resp.StatusCode, b)
	}
	// A header line longer than the fast path's buffer.
	r := call(t, "POST", e.URL()+"/v1/messages", benchMessage, "x-long", strings.Repeat("a", 10<<10))
	if r.status != 200 || !bytes.Contains(r.body, []byte(fakeanthropic.JSONText)) {
		t.Fatalf("long header: %d %s", r.status, r.body)
	}
}

// rawConn is one keep-alive HTTP/1.1 connection that sends pre-rendered
// requests and reads replies into a reused buffer, allocating nothing, so
// that what a test or benchmark counts is the fake's.
type rawConn struct {
	c    net.Conn
	br   *bufio.Reader
	body []byte
}

func mustDial(tb testing.TB, addr string) *rawConn {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	return &rawConn{c: c, br: bufio.NewReaderSize(c, 32<<10)}
}

func rawRequest(addr, body string, headers ...string) []byte {
	b := "POST /v1/messages HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nAnthropic-Version: 2023-06-01\r\nX-Api-Key: sk-test\r\n"
	for i := 0; i+1 < len(headers); i += 2 {
		b += headers[i] + ": " + headers[i+1] + "\r\n"
	}
	return []byte(b + "Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}

func (rc *rawConn) send(req []byte) error {
	_, err := rc.c.Write(req)
	return err
}

// read reads one reply; its body, de-chunked, is in rc.body.
func (rc *rawConn) read() (status int, err error) {
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, errors.New("short status line")
	}
	status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	length, chunked := -1, false
	for {
		h, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, val, _ := bytes.Cut(h, []byte(":"))
		val = bytes.TrimSpace(val)
		switch {
		case bytes.EqualFold(name, []byte("content-length")):
			length = atoi(val, 10)
		case bytes.EqualFold(name, []byte("transfer-encoding")):
			chunked = true
		}
	}
	rc.body = rc.body[:0]
	if !chunked {
		return status, rc.readN(length)
	}
	for {
		l, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		n := atoi(bytes.TrimRight(l, "\r\n"), 16)
		if n == 0 {
			_, err = rc.br.ReadSlice('\n')
			return status, err
		}
		if err := rc.readN(n); err != nil {
			return 0, err
		}
		if _, err := rc.br.Discard(2); err != nil {
			return 0, err
		}
	}
}

func (rc *rawConn) readN(n int) error {
	start := len(rc.body)
	rc.body = slices.Grow(rc.body, n)[:start+n]
	_, err := io.ReadFull(rc.br, rc.body[start:])
	return err
}

func atoi(b []byte, base int) int {
	n := 0
	for _, c := range b {
		d := int(c - '0')
		if base == 16 && c >= 'a' {
			d = int(c-'a') + 10
		}
		n = n*base + d
	}
	return n
}

func (rc *rawConn) do(tb testing.TB, req []byte) {
	if err := rc.send(req); err != nil {
		tb.Fatal(err)
	}
	if status, err := rc.read(); err != nil || status != 200 {
		tb.Fatalf("status %d, %v: %s", status, err, rc.body)
	}
}

func TestEndpointPipelined(t *testing.T) {
	t.Parallel()
	e := MustStart(t, fakeanthropic.Options{NoCapture: true, Deltas: 2})
	rc := mustDial(t, e.Addr())
	reqs := [][]byte{rawRequest(e.Addr(), benchMessage), rawRequest(e.Addr(), benchStream), rawRequest(e.Addr(), benchMessage)}
	if err := rc.send(slices.Concat(reqs...)); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{`"stop_reason":"end_turn"`, "event: message_stop", `"stop_reason":"end_turn"`} {
		if status, err := rc.read(); err != nil || status != 200 || !strings.Contains(string(rc.body), want) {
			t.Fatalf("reply %d: %d %v %s", i, status, err, rc.body)
		}
	}
}

// TestEndpointFastPathCost guards the point of the fast path: a benchmark's
// request costs the fake next to nothing. net/http's server allocates about
// 50 times per request.
func TestEndpointFastPathCost(t *testing.T) {
	e := MustStart(t, fakeanthropic.Options{NoCapture: true})
	rc := mustDial(t, e.Addr())
	for _, tc := range []struct {
		name string
		req  []byte
		max  float64
	}{
		{"message", rawRequest(e.Addr(), benchMessage), 1},
		{"stream", rawRequest(e.Addr(), benchStream, fakeanthropic.HeaderDeltas, "10"), 1},
	} {
		rc.do(t, tc.req)
		if tc.name == "message" && (len(rc.body) < 800 || len(rc.body) > 1400) {
			t.Fatalf("the message is %d bytes, want about 1 KB", len(rc.body))
		}
		if n := testing.AllocsPerRun(200, func() { rc.do(t, tc.req) }); n > tc.max {
			t.Errorf("%s: %.1f allocations per request, want at most %v", tc.name, n, tc.max)
		}
	}
}

func TestEndpointCloseEndsAbandonedStream(t *testing.T) {
	t.Parallel()
	e := MustStart(t, fakeanthropic.Options{NoCapture: true})
	req, _ := http.NewRequest("POST", e.URL()+"/v1/messages", strings.NewReader(benchStream))
	req.Header.Set("x-api-key", "sk-test")
	req.Header.Set(fakeanthropic.HeaderSpacingMS, "60000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := make(chan struct{})
	go func() { _ = e.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Close hung on an abandoned stream")
	}
}

// BenchmarkFake is what one benchmark request costs, client included, on
// the Endpoint's fast path and through net/http (ServeHTTP).
func BenchmarkFake(b *testing.B) {
	serve := map[string]func(b *testing.B) string{
		"endpoint": func(b *testing.B) string { return MustStart(b, fakeanthropic.Options{NoCapture: true}).Addr() },
		"nethttp": func(b *testing.B) string {
			srv := httptest.NewServer(fakeanthropic.New(fakeanthropic.Options{NoCapture: true}))
			b.Cleanup(srv.Close)
			return srv.Listener.Addr().String()
		},
	}
	for _, kind := range []string{"message", "stream10"} {
		for _, name := range []string{"endpoint", "nethttp"} {
			b.Run(kind+"/"+name, func(b *testing.B) {
				addr := serve[name](b)
				req := rawRequest(addr, benchMessage)
				if kind == "stream10" {
					req = rawRequest(addr, benchStream, fakeanthropic.HeaderDeltas, "10")
				}
				rc := mustDial(b, addr)
				b.ReportAllocs()
				for b.Loop() {
					rc.do(b, req)
				}
			})
		}
	}
}
