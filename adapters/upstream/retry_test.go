package upstream

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

// RawUpstream is an upstream on a bare TCP listener, for the failures
// net/http's server does not produce: reading a request and hanging up,
// resetting mid-body, failing a TLS handshake.
type RawUpstream struct {
	URL string
	// Done is closed when the test ends; a handler holding a connection
	// open waits for it.
	Done  chan struct{}
	conns atomic.Int64
	reqs  atomic.Int64
}

// NewRawUpstream serves every connection with handle, which may keep it
// open; the connection is closed when handle returns.
func NewRawUpstream(t testing.TB, handle func(u *RawUpstream, c net.Conn)) *RawUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &RawUpstream{URL: "http://" + ln.Addr().String(), Done: make(chan struct{})}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(u.Done)
		_ = ln.Close()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u.conns.Add(1)
			wg.Go(func() {
				defer c.Close()
				handle(u, c)
			})
		}
	})
	return u
}

// Conns is how many connections were accepted.
func (u *RawUpstream) Conns() int64 { return u.conns.Load() }

// Requests is how many request heads ReadRequest read.
func (u *RawUpstream) Requests() int64 { return u.reqs.Load() }

// ReadRequest reads one request's head from c, and its body when body is
// true; nil when c carries no request.
func (u *RawUpstream) ReadRequest(c net.Conn, body bool) *http.Request {
	req, err := http.ReadRequest(bufio.NewReader(c))
	if err != nil {
		return nil
	}
	u.reqs.Add(1)
	if body {
		_, _ = io.Copy(io.Discard, req.Body)
	}
	return req
}

// reset closes c with an RST rather than a FIN.
func reset(c net.Conn) {
	_ = c.(*net.TCPConn).SetLinger(0)
	_ = c.Close()
}

func readAll(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestWrittenThenDroppedIsNotResent: an upstream that reads the request and
// hangs up without a status may be doing the work; the POST goes to no
// upstream again, and the caller learns it was written.
func TestWrittenThenDroppedIsNotResent(t *testing.T) {
	t.Parallel()
	for name, hangUp := range map[string]func(net.Conn){"eof": func(net.Conn) {}, "reset": reset} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			drop := NewRawUpstream(t, func(u *RawUpstream, c net.Conn) {
				if u.ReadRequest(c, true) != nil {
					hangUp(c)
				}
			})
			f, backup := newFake(t)
			obs := &recObserver{}
			tr := mustNew(t, Options{Observer: obs, Upstreams: []Config{
				{Name: "primary", URL: drop.URL, APIKey: secretKey, MaxRetries: 3},
				{Name: "backup", URL: backup, APIKey: secretKey, MaxRetries: 3},
			}})
			resp, info, err := post(t, tr, `{"model":"m"}`)
			if resp != nil {
				_ = resp.Body.Close()
				t.Fatalf("got a response: %d", resp.StatusCode)
			}
			de := domain.AsError(err)
			if de == nil || de.Kind != domain.KindUpstream || de.Reason != domain.ReasonUpstreamConnection {
				t.Fatalf("want a 502, got %v", err)
			}
			if drop.Requests() != 1 || drop.Conns() != 1 || f.Count() != 0 {
				t.Fatalf("primary saw %d requests on %d connections; backup %d", drop.Requests(), drop.Conns(), f.Count())
			}
			if info.Attempts != 1 || !info.Written || info.Outcome != OutcomeConnectError || obs.retries != 0 {
				t.Fatalf("info %+v, retries observed %d", info, obs.retries)
			}
			if strings.Contains(err.Error(), secretKey) || strings.Contains(de.Message, "127.0.0.1") {
				t.Fatalf("message %q", de.Message)
			}
		})
	}
}

// TestRefusedConnectionFailsOver: a refused dial reached nobody, so the
// request goes to the next upstream; Written stays false until one gets it.
func TestRefusedConnectionFailsOver(t *testing.T) {
	t.Parallel()
	f, backup := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{
		{Name: "primary", URL: deadURL(t), APIKey: secretKey, MaxRetries: 3},
		{Name: "backup", URL: backup, APIKey: secretKey, MaxRetries: 3},
	}})
	resp, info, err := post(t, tr, `{"x":1}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || info.Upstream != "backup" || info.Attempts != 2 || info.Failovers != 1 || !info.Written ||
		len(info.Tried) != 1 || info.Tried[0] == info.UpstreamID {
		t.Fatalf("status %d info %+v", resp.StatusCode, info)
	}
	if f.Count() != 1 || string(f.Last().Body) != `{"x":1}` {
		t.Fatalf("backup saw %d, body %q", f.Count(), f.Last().Body)
	}
	// Refused alone: retried, never written.
	dead := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: deadURL(t), APIKey: secretKey, MaxRetries: 2}}})
	_, info, err = post(t, dead, `{}`)
	if domain.KindOf(err) != domain.KindUpstream || info.Attempts != 3 || info.Written {
		t.Fatalf("err %v info %+v", err, info)
	}
}

// TestFailedTLSHandshakeFailsOver: no request is written before the
// handshake completes, so its failure is safe to retry elsewhere.
func TestFailedTLSHandshakeFailsOver(t *testing.T) {
	t.Parallel()
	notTLS := NewRawUpstream(t, func(_ *RawUpstream, c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
	})
	f, backup := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{
		{Name: "primary", URL: strings.Replace(notTLS.URL, "http:", "https:", 1), APIKey: secretKey},
		{Name: "backup", URL: backup, APIKey: secretKey},
	}})
	resp, info, err := post(t, tr, `{}`)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || info.Upstream != "backup" || info.Attempts != 2 || f.Count() != 1 || notTLS.Conns() != 1 {
		t.Fatalf("status %d info %+v, backup %d, primary connections %d", resp.StatusCode, info, f.Count(), notTLS.Conns())
	}
	// TLS alone: the message names the failure, not the address.
	alone := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: strings.Replace(notTLS.URL, "http:", "https:", 1), APIKey: secretKey}}})
	_, info, err = post(t, alone, `{}`)
	de := domain.AsError(err)
	if de == nil || de.Kind != domain.KindUpstream || info.Written || !strings.Contains(de.Message, "TLS") {
		t.Fatalf("err %v info %+v", err, info)
	}
}

// TestUnfinishedWriteIsRetried: an upstream that hangs up while the body is
// still being sent never had the whole request; the retry goes elsewhere.
func TestUnfinishedWriteIsRetried(t *testing.T) {
	t.Parallel()
	cut := NewRawUpstream(t, func(u *RawUpstream, c net.Conn) {
		if u.ReadRequest(c, false) != nil {
			reset(c)
		}
	})
	f, backup := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{
		{Name: "primary", URL: cut.URL, APIKey: secretKey},
		{Name: "backup", URL: backup, APIKey: secretKey},
	}})
	// Far more than the socket buffers hold, so the write meets the reset.
	body := `{"pad":"` + strings.Repeat("x", 20<<20) + `"}`
	resp, info, err := post(t, tr, body)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || info.Upstream != "backup" || info.Attempts != 2 || !info.Written {
		t.Fatalf("status %d info %+v", resp.StatusCode, info)
	}
	if cut.Requests() != 1 || f.Count() != 1 || len(f.Last().Body) != len(body) {
		t.Fatalf("primary saw %d, backup %d", cut.Requests(), f.Count())
	}
}

// TestRateLimitRetries: a 429 is retried only when it says when (retry-after
// or retry-after-ms) and does not name a spend limit.
func TestRateLimitRetries(t *testing.T) {
	t.Parallel()
	spent := `{"type":"error","error":{"type":"rate_limit_error","message":"enforced_spend_limit_reached"}}`
	phrase := `{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your Spend Limit."},"pad":"` +
		strings.Repeat("p", 100<<10) + `"}`
	cases := []struct {
		name   string
		step   fakeanthropic.Step
		repeat bool // answered to every attempt
		want   int  // attempts
	}{
		{"no retry-after", fakeanthropic.Step{Status: 429}, true, 1},
		{"retry-after 0", fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"0"}}}, false, 2},
		{"retry-after-ms", fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After-Ms": {"1"}}}, false, 2},
		{"spend limit body", fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"0"}}, Body: spent}, true, 1},
		{"spend limit phrase", fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"0"}}, Body: phrase}, true, 1},
		{"spend limit header", fakeanthropic.Step{Status: 429, Header: http.Header{"Retry-After": {"0"}, "X-Limit-Kind": {"Spend_Limit"}}}, true, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f, url := newFake(t)
			tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, MaxRetries: 3}}})
			f.Script(c.step)
			if c.repeat {
				f.Script(c.step, c.step, c.step)
			}
			resp, info, err := post(t, tr, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := readAll(resp)
			if err != nil {
				t.Fatal(err)
			}
			if int(f.Count()) != c.want || info.Attempts != c.want {
				t.Fatalf("upstream saw %d, info %+v", f.Count(), info)
			}
			if c.want == 1 {
				// The 429 goes back whole, though its start was read ahead.
				want := c.step.Body
				if want == "" {
					want = fakeanthropic.ErrorBody(429, "req_fake_1")
				}
				if resp.StatusCode != 429 || b != want {
					t.Fatalf("got %d, %d bytes, want %d", resp.StatusCode, len(b), len(want))
				}
			} else if resp.StatusCode != http.StatusOK {
				t.Fatalf("got %d %s", resp.StatusCode, b)
			}
		})
	}
}

// TestIdempotentRetriedAfterDrop: a GET whose connection drops after it was
// written is sent again, as Caddy does; a POST is not.
func TestIdempotentRetriedAfterDrop(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		method string
		body   string
		want   int64 // requests the upstream reads
	}{
		{http.MethodGet, "", 2}, {http.MethodHead, "", 2}, {http.MethodOptions, "", 2},
		{http.MethodPost, "{}", 1}, {http.MethodPut, "{}", 1}, {http.MethodDelete, "", 1},
	} {
		t.Run(c.method, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			flaky := NewRawUpstream(t, func(u *RawUpstream, c net.Conn) {
				if u.ReadRequest(c, true) == nil || n.Add(1) == 1 {
					return // the first connection is dropped
				}
				_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
			})
			tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: flaky.URL, APIKey: secretKey, MaxRetries: 2}}})
			resp, info, err := send(t, tr, c.method, "/v1/models", c.body)
			if flaky.Requests() != c.want || info.Attempts != int(c.want) || !info.Written {
				t.Fatalf("upstream read %d requests, info %+v, err %v", flaky.Requests(), info, err)
			}
			if c.want == 1 {
				if domain.KindOf(err) != domain.KindUpstream {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
}

// TestWrittenFailureIsNotMaskedByAnEarlierAnswer: after a 529, a retry that
// is written and times out ends the request with the timeout, not the 529:
// the upstream may be doing the work this time.
func TestWrittenFailureIsNotMaskedByAnEarlierAnswer(t *testing.T) {
	t.Parallel()
	f, url := newFake(t)
	tr := mustNew(t, Options{Upstreams: []Config{{Name: "primary", URL: url, APIKey: secretKey, Timeout: 200 * time.Millisecond, MaxRetries: 3}}})
	f.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{Stall: 10 * time.Second})
	resp, info, err := post(t, tr, `{}`)
	if resp != nil {
		_ = resp.Body.Close()
		t.Fatalf("got %d", resp.StatusCode)
	}
	if domain.KindOf(err) != domain.KindTimeout || info.Attempts != 2 || f.Count() != 2 || !info.Written {
		t.Fatalf("err %v info %+v, upstream saw %d", err, info, f.Count())
	}
}
