package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

// clientFrom is an HTTP client whose connections come from the loopback
// address src, so the relay sees a client other than 127.0.0.1.
func clientFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
}

// TestStalledConnectionsDoNotStarveOthers holds 1,100 connections from
// 127.0.0.1 that stall in every way a request can (a body announced and
// never sent, on management and proxied routes, small and large; a request
// line half sent; a body on a route that takes none; an answer never
// read). A client at 127.0.0.2 keeps getting /health and proxied answers
// within 2 s, the connections over the per-address limit are refused at
// once and counted, and the relay closes every stalled one within its
// deadlines.
func TestStalledConnectionsDoNotStarveOthers(t *testing.T) {
	const perAddr, stalled = 100, 1100
	const deadline = 2 * time.Second
	r := startRelayWith(t, fakeanthropic.New(fakeanthropic.Options{}), func(c *config.Config) {
		c.Server.MaxConnectionsPerAddr = perAddr
		c.Server.BodyReadTimeout = deadline
		c.Server.ReadHeaderTimeout = deadline
		c.Server.IdleTimeout = deadline
	})
	other := clientFrom("127.0.0.2")
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "stall", "token_limit": 1_000_000})
	http.DefaultClient.CloseIdleConnections()
	addr := strings.TrimPrefix(r.URL, "http://")

	stalls := []string{
		"POST /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\n",
		"POST /admin/login HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\n",
		"POST /admin/login HTTP/1.1\r\nHost: relay\r\nContent-Length: 0\r\n\r\n",
		"GET /health HTTP/1.1\r\nHost: relay\r\nContent-Length: 1000\r\n\r\n",
		"POST /v1/mess",
		"POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: " + key + "\r\ncontent-type: application/json\r\nContent-Length: 1000\r\n\r\n{\"model\":",
		"POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: " + key + "\r\ncontent-type: application/json\r\nContent-Length: 20000000\r\n\r\n{\"model\":",
		"POST /v1/messages HTTP/1.1\r\nHost: relay\r\nx-api-key: sk-proxy-bad\r\nContent-Length: 1000\r\n\r\n",
	}
	type result struct {
		refused bool
		closed  time.Duration // since the connection was opened; 0: never
	}
	results := make([]result, stalled)
	var wg sync.WaitGroup
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.1")}, Timeout: 5 * time.Second}
	for i := range stalled {
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		opened := time.Now()
		_, _ = io.WriteString(c, stalls[i%len(stalls)])
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			_ = c.SetReadDeadline(opened.Add(3 * deadline))
			var head [64]byte
			n, _ := io.ReadFull(c, head[:])
			results[i].refused = bytes.HasPrefix(head[:n], []byte("HTTP/1.1 503"))
			// Read nothing more until the relay closes: it must not wait
			// for this client to drain what it sent.
			if _, err := io.Copy(io.Discard, c); err == nil || !isTimeout(err) {
				results[i].closed = time.Since(opened)
			}
		}()
	}

	// While they are all held, another client is served promptly.
	probeBody := `{"model":"claude-sonnet-4-5","max_tokens":16,"messages":[{"role":"user","content":"hi"}]}`
	for range 5 {
		start := time.Now()
		resp, err := other.Get(r.URL + "/health")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("/health from 127.0.0.2 during the flood: %v %v", err, resp)
		}
		resp.Body.Close()
		req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(probeBody))
		req.Header.Set("x-api-key", key)
		req.Header.Set("content-type", "application/json")
		req.Header.Set("anthropic-version", "2023-06-01")
		resp, err = other.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("a proxied call from 127.0.0.2 during the flood: %v %v", err, resp)
		}
		resp.Body.Close()
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("127.0.0.2 waited %v during the flood", took)
		}
		time.Sleep(100 * time.Millisecond)
	}
	wg.Wait()

	refused, held := 0, 0
	var slowest time.Duration
	for i, res := range results {
		if res.closed == 0 {
			t.Fatalf("connection %d (%q) was still open after %v", i, stalls[i%len(stalls)][:20], 3*deadline)
		}
		if res.refused {
			refused++
			continue
		}
		held++
		slowest = max(slowest, res.closed)
	}
	if held > perAddr || refused < stalled-perAddr {
		t.Fatalf("held %d, refused %d: the per-address limit is %d", held, refused, perAddr)
	}
	// Every held connection is closed by a deadline (body, header or idle),
	// with some slack for a busy 2-core machine.
	if slowest > deadline+2*time.Second {
		t.Fatalf("the slowest stalled connection was closed after %v; the deadlines are %v", slowest, deadline)
	}
	t.Logf("held %d, refused %d, slowest closed after %v", held, refused, slowest)

	resp, err := other.Get(r.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	want := fmt.Sprintf(`relay_connections_refused_total{limit="per_address"} %d`, refused)
	if !strings.Contains(string(b), want) {
		t.Fatalf("/metrics lacks %q", want)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// TestMetricsOnTheirOwnAddress: with metrics.listen_addr set, /metrics is
// served there and not on the public listener.
func TestMetricsOnTheirOwnAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	maddr := ln.Addr().String()
	ln.Close()
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}), "METRICS_LISTEN_ADDR="+maddr)
	resp, b := r.do(t, http.MethodGet, "/metrics", "", nil)
	var e struct {
		Type string `json:"type"`
	}
	// Not served: the path falls through to the proxy, which asks for a key
	// as it does for any path it does not know.
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(b, &e) != nil || e.Type != "error" {
		t.Fatalf("/metrics on the public listener: %d %s", resp.StatusCode, b)
	}
	var mresp *http.Response
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if mresp, err = http.Get("http://" + maddr + "/metrics"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer mresp.Body.Close()
	mb, _ := io.ReadAll(mresp.Body)
	if mresp.StatusCode != 200 || !strings.Contains(string(mb), "relay_open_connections") {
		t.Fatalf("/metrics on its own address: %d", mresp.StatusCode)
	}
}
