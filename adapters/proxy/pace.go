package proxy

import (
	"errors"
	"io"
	"net/http"
	"time"
)

// DefaultBodyMinRate extends the body deadline: a body must arrive within
// httpx.DefaultBodyReadTimeout, plus one second for every DefaultBodyMinRate
// bytes that have arrived, so a large upload on a slow link keeps going as
// long as it keeps moving, and a sender that stalls is cut off.
const DefaultBodyMinRate = 32 << 10

// paceStep is how many bytes arrive between two extensions of the
// deadline: often enough to follow the rate, rarely enough to cost nothing.
const paceStep = 256 << 10

// bodyPace is a request body under a read deadline that grows with the
// bytes received: start + timeout + received/minRate.
type bodyPace struct {
	r        io.Reader
	rc       *http.ResponseController
	start    time.Time
	timeout  time.Duration
	minRate  int64
	received int64
	next     int64 // received count at which the deadline is extended next
	// noDeadline: the connection takes no deadlines (a handler test's
	// recorder), so none is tried again.
	noDeadline bool
}

func (b *bodyPace) deadline(t time.Time) {
	if !b.noDeadline {
		b.noDeadline = errors.Is(b.rc.SetReadDeadline(t), http.ErrNotSupported)
	}
}

func (p *Handler) paceBody(rc *http.ResponseController, r *http.Request) *bodyPace {
	// The wall clock, not p.now: deadlines are the kernel's time.
	b := &bodyPace{r: r.Body, rc: rc, start: time.Now(),
		timeout: p.bodyWait, minRate: p.bodyRate, next: paceStep}
	b.deadline(b.start.Add(b.timeout))
	return b
}

func (b *bodyPace) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.received += int64(n)
	if b.received >= b.next && b.minRate > 0 {
		b.next = b.received + paceStep
		allowed := b.timeout + time.Duration(b.received)*time.Second/time.Duration(b.minRate)
		b.deadline(b.start.Add(allowed))
	}
	return n, err
}

// done lifts the deadline once the body is in: the answer may stream for
// an hour, and a read deadline left behind would make net/http's
// background read cancel the call.
func (b *bodyPace) done() { b.deadline(time.Time{}) }
