package upstream

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

// transports are the two ways a target's header timeout is enforced: by
// NewHTTPTransport's ResponseHeaderTimeout, or, for an injected Transport,
// on the attempt's context.
func transports(t *testing.T) map[string]func() http.RoundTripper {
	t.Helper()
	return map[string]func() http.RoundTripper{
		"tuned": func() http.RoundTripper { return nil },
		"injected": func() http.RoundTripper {
			tr := &http.Transport{DisableCompression: true}
			t.Cleanup(tr.CloseIdleConnections)
			return tr
		},
	}
}

// TestHangingUpstreamTimesOutOnce: an upstream that reads the request and
// never answers is given up at the attempt's own header timeout, exactly
// once: the request may be in the works there, so it goes to no upstream
// again.
func TestHangingUpstreamTimesOutOnce(t *testing.T) {
	t.Parallel()
	for name, rt := range transports(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			hang := NewRawUpstream(t, func(u *RawUpstream, c net.Conn) {
				if u.ReadRequest(c, true) != nil {
					<-u.Done // hold it open, say nothing
				}
			})
			f, backup := newFake(t)
			tr := mustNew(t, Options{Transport: rt(), Upstreams: []Config{
				{Name: "primary", URL: hang.URL, APIKey: secretKey, Timeout: 300 * time.Millisecond, MaxRetries: 3},
				{Name: "backup", URL: backup, APIKey: secretKey, MaxRetries: 3},
			}})
			start := time.Now()
			resp, info, err := post(t, tr, `{}`)
			took := time.Since(start)
			if resp != nil {
				_ = resp.Body.Close()
				t.Fatalf("got a response: %d", resp.StatusCode)
			}
			if de := domain.AsError(err); de == nil || de.Kind != domain.KindTimeout || de.Reason != domain.ReasonUpstreamTimeout {
				t.Fatalf("want a timeout (504), got %v", err)
			}
			if hang.Conns() != 1 || hang.Requests() != 1 || f.Count() != 0 {
				t.Fatalf("upstream saw %d connections, %d requests; backup %d", hang.Conns(), hang.Requests(), f.Count())
			}
			if info.Attempts != 1 || info.Retries != 0 || !info.Written || info.Outcome != OutcomeTimeout {
				t.Fatalf("info %+v", info)
			}
			if took > 5*time.Second {
				t.Fatalf("gave up after %v, the timeout is 300ms", took)
			}
		})
	}
}

// TestDeadlineDoesNotCutAStartedAttempt: the overall deadline keeps new
// attempts from starting; one already under way gets its answer.
func TestDeadlineDoesNotCutAStartedAttempt(t *testing.T) {
	t.Parallel()
	for name, rt := range transports(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f, url := newFake(t)
			tr := mustNew(t, Options{Transport: rt(), Deadline: 20 * time.Millisecond, Upstreams: []Config{
				{Name: "primary", URL: url, APIKey: secretKey, Timeout: 10 * time.Second, MaxRetries: 3},
			}})
			f.Script(fakeanthropic.Step{Stall: 200 * time.Millisecond})
			resp, info, err := post(t, tr, `{}`)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK || info.Attempts != 1 || f.Count() != 1 {
				t.Fatalf("status %d info %+v", resp.StatusCode, info)
			}
			// Past the deadline, a retryable answer is not retried.
			f.Script(fakeanthropic.Step{Stall: 50 * time.Millisecond, Status: 529})
			resp, info, _ = post(t, tr, `{}`)
			_ = resp.Body.Close()
			if resp.StatusCode != 529 || info.Attempts != 1 {
				t.Fatalf("after the deadline: status %d info %+v", resp.StatusCode, info)
			}
		})
	}
}

// TestInjectedTransportDoesNotCutAStream: the header timer of an injected
// transport stops when headers arrive; a body slower than it is whole.
func TestInjectedTransportDoesNotCutAStream(t *testing.T) {
	t.Parallel()
	const timeout = 250 * time.Millisecond
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("content-type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-time.After(3 * timeout):
		case <-r.Context().Done():
			return
		}
		_, _ = w.Write([]byte("event: message_stop\n\n"))
	}))
	t.Cleanup(s.Close)
	tr := mustNew(t, Options{Transport: transports(t)["injected"](), Upstreams: []Config{
		{Name: "primary", URL: s.URL, APIKey: secretKey, Timeout: timeout},
	}})
	resp, _, err := post(t, tr, `{"stream":true}`)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := readAll(resp)
	if err != nil || !strings.Contains(b, "message_stop") {
		t.Fatalf("body %q, err %v", b, err)
	}
}
