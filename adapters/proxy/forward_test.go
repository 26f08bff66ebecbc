package proxy_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/relaystation/relay/adapters/upstream"
)

// fakeMessage is a complete Messages answer with usage, for upstreams
// written in a test.
const fakeMessage = `{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"hi"}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":3}}`

// TestProxyLoopHeaderRules pins what the relay's own proxy loop does with
// headers and queries both ways, the rules httputil.ReverseProxy applied
// before it: hop-by-hop headers (and those Connection names) never cross,
// the client's forwarding claims never go upstream, "Te: trailers" does,
// no Go User-Agent is made up, a query part that does not parse is
// dropped, and the answer's trailers reach the client.
func TestProxyLoopHeaderRules(t *testing.T) {
	var mu sync.Mutex
	var got *http.Request
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		mu.Lock()
		got = r.Clone(context.Background())
		mu.Unlock()
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Connection", "X-Up-Hop")
		h.Set("X-Up-Hop", "must-not-pass")
		h.Set("Keep-Alive", "timeout=5")
		h.Set("Request-Id", "req_up")
		h.Set("Trailer", "X-Checksum")
		_, _ = io.WriteString(w, fakeMessage)
		h.Set("X-Checksum", "abc")
	}))
	t.Cleanup(up.Close)
	env := newProxyEnv(t, proxyEnvOptions{upstreams: func(string) []upstream.Config {
		return []upstream.Config{{Name: "primary", URL: up.URL + "/v1", APIKey: proxyUpstreamKey}}
	}})

	req := env.newRequest(context.Background(), "/v1/messages?beta=true;x=1&keep=%zz&ok=2", proxyReqBody)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("X-Forwarded-Proto", "http")
	req.Header.Set("Te", "trailers, deflate")
	req.Header.Set("Keep-Alive", "timeout=1")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header["User-Agent"] = nil // the Go client then sends none
	resp, b := proxyDo(t, req)
	if resp.StatusCode != 200 || string(b) != fakeMessage {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	mu.Lock()
	r := got
	mu.Unlock()
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Keep-Alive", "Upgrade", "Proxy-Connection", "User-Agent"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("upstream got %s: %q", h, v)
		}
	}
	if v := r.Header.Get("Te"); v != "trailers" {
		t.Errorf("Te upstream = %q, want trailers", v)
	}
	if v := r.Header.Get("Accept-Encoding"); v != "identity" {
		t.Errorf("Accept-Encoding upstream = %q", v)
	}
	// "beta=true;x=1" and "keep=%zz" do not parse; what is left is
	// re-encoded.
	if r.URL.RawQuery != "ok=2" {
		t.Errorf("upstream query %q, want ok=2", r.URL.RawQuery)
	}
	for _, h := range []string{"X-Up-Hop", "Keep-Alive"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("client got %s: %q", h, v)
		}
	}
	if resp.Header.Get("Request-Id") != "req_up" || len(resp.Header.Values("X-Request-Id")) != 1 {
		t.Errorf("answer ids: %v", resp.Header)
	}
	if v := resp.Trailer.Get("X-Checksum"); v != "abc" {
		t.Errorf("trailer X-Checksum = %q (trailers %v)", v, resp.Trailer)
	}
	if rec := env.waitRecords(1)[0]; rec.Usage.InputTokens != 12 || rec.Usage.OutputTokens != 3 {
		t.Errorf("record usage %+v", rec.Usage)
	}
}

// TestProxyLoopCutAnswerIsAborted: an answer the upstream cuts short is
// cut short for the client too; the relay never ends it as if it were
// whole, and it settles what it saw.
func TestProxyLoopCutAnswerIsAborted(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hj, _ := w.(http.Hijacker)
		c, brw, err := hj.Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n" + fakeMessage[:40])
		_ = brw.Flush()
	}))
	t.Cleanup(up.Close)
	env := newProxyEnv(t, proxyEnvOptions{upstreams: func(string) []upstream.Config {
		return []upstream.Config{{Name: "primary", URL: up.URL + "/v1", APIKey: proxyUpstreamKey}}
	}})
	// A raw client, to see exactly what arrives.
	addr := strings.TrimPrefix(env.relayURL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nx-api-key: "+env.good+
		"\r\nContent-Length: "+itoa(len(proxyReqBody))+"\r\n\r\n"+proxyReqBody)
	// A sized answer is flushed only when whole, so the client may see
	// nothing at all, or a head and a cut body: never a whole answer.
	if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Fatalf("a cut answer read as whole: %d %q", resp.StatusCode, body)
		}
	}
	if rec := env.waitRecords(1)[0]; rec.ErrorType != "upstream_disconnected" {
		t.Errorf("record error type %q, want upstream_disconnected", rec.ErrorType)
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestProxyLoopEventStreamAnyCase: an event stream is one in any case and
// with parameters: it is flushed as it arrives and metered as a stream
// (the meter and the flush decide alike).
func TestProxyLoopEventStreamAnyCase(t *testing.T) {
	const sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":21,\"output_tokens\":1}}}\n\n" +
		"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":7}}\n\n" +
		"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "Text/Event-Stream; charset=utf-8")
		_, _ = io.WriteString(w, sse)
	}))
	t.Cleanup(up.Close)
	env := newProxyEnv(t, proxyEnvOptions{upstreams: func(string) []upstream.Config {
		return []upstream.Config{{Name: "primary", URL: up.URL + "/v1", APIKey: proxyUpstreamKey}}
	}})
	resp, b := proxyDo(t, env.newRequest(context.Background(), "/v1/messages", proxyReqBody))
	if resp.StatusCode != 200 || string(b) != sse {
		t.Fatalf("%d %q", resp.StatusCode, b)
	}
	rec := env.waitRecords(1)[0]
	if !rec.Stream || rec.Estimated || rec.Usage.InputTokens != 21 || rec.Usage.OutputTokens != 7 {
		t.Errorf("record stream=%v estimated=%v usage %+v", rec.Stream, rec.Estimated, rec.Usage)
	}
}
