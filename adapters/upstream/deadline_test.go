package upstream

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
)

// TestDeadlineBoundsAHangingUpstream: an upstream that accepts connections
// but never answers is given up at the overall deadline, not after its own
// (longer) header timeout.
func TestDeadlineBoundsAHangingUpstream(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	tr, err := New(Options{
		Upstreams: []Config{{Name: "primary", URL: "http://" + ln.Addr().String(), APIKey: "k", Timeout: time.Minute, MaxRetries: 3}},
		Deadline:  300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://relay/v1/messages", strings.NewReader(`{}`))
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	took := time.Since(start)
	if resp != nil {
		resp.Body.Close()
		t.Fatalf("got a response: %d", resp.StatusCode)
	}
	if domain.KindOf(err) != domain.KindTimeout {
		t.Fatalf("want a timeout (504), got %v", err)
	}
	if took > 2*time.Second {
		t.Fatalf("gave up after %v, the deadline is 300ms", took)
	}
}
