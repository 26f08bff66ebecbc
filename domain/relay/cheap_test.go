package relay

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// notingParser notes each read of a body in the world's log.
type notingParser struct {
	ports.RequestParser
	w *world
}

func (p notingParser) ParseRequest(b []byte, f domain.WireFormat) (domain.CallRequest, error) {
	p.w.note("parse")
	return p.RequestParser.ParseRequest(b, f)
}

func (p notingParser) ParseBatch(b []byte) ([]domain.BatchItem, error) {
	p.w.note("parse")
	return p.RequestParser.ParseBatch(b)
}

var _ ports.RequestParser = notingParser{}

// TestCheapRefusalsComeBeforeTheBody: every refusal that needs nothing
// from the body (origin, rate, tokens per period, a spent quota,
// concurrency) comes before the body is read, so it costs the same for a
// 32 MB body as for an empty one; a refusal of the body gives back the
// concurrency slot taken before it.
func TestCheapRefusalsComeBeforeTheBody(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cases := []struct {
		name  string
		setup func(w *world, in *Call)
		steps string
		kind  domain.Kind
		check func(t *testing.T, de *domain.Error)
	}{
		{"origin", func(w *world, in *Call) {
			w.key.AllowedDomains = []string{"app.example.com"}
			in.Origin = "https://evil.example.com"
		}, "", domain.KindForbidden, nil},
		{"requests", func(w *world, _ *Call) {
			w.rate.allow = func(string, domain.Limit, int64) (domain.RateDecision, error) {
				w.note("allow")
				return domain.RateDecision{RetryAfter: time.Second}, nil
			}
		}, "allow", domain.KindRateLimited, nil},
		{"tokens per period", func(w *world, _ *Call) {
			w.rate.peek = func(string, domain.Limit) (domain.RateDecision, error) {
				w.note("peek")
				return domain.RateDecision{RetryAfter: time.Second}, nil
			}
		}, "allow req:,peek", domain.KindRateLimited, nil},
		{"spent quota", func(w *world, _ *Call) { limited(w, 1000, 1000) },
			"allow req:,peek tok:", domain.KindQuotaExceeded, func(t *testing.T, de *domain.Error) {
				if !de.NoRetry || !strings.Contains(de.Message, "exhausted") {
					t.Fatalf("refusal %+v: want no retry", de)
				}
			}},
		{"spent quota, batch", func(w *world, in *Call) {
			limited(w, 1000, 1200)
			in.Route = Route{Endpoint: EndpointBatchCreate, Path: "/v1/messages/batches"}
		}, "allow req:", domain.KindQuotaExceeded, nil},
		{"concurrency", func(w *world, _ *Call) {
			w.conc.acquire = func(string, int) (func(), bool, error) { w.note("acquire"); return nil, false, nil }
		}, "allow req:,peek tok:,acquire", domain.KindRateLimited, nil},
		{"the body, after the slot", func(w *world, _ *Call) { w.parser.err = domain.Invalidf("not JSON") },
			"allow req:,peek tok:,acquire,parse,release", domain.KindInvalid, nil},
		{"the media type, after the slot", func(_ *world, in *Call) { in.ContentType = "text/plain" },
			"allow req:,peek tok:,acquire,release", domain.KindUnsupportedMedia, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			in := input()
			c.setup(w, &in)
			s := w.service(t, func(cfg *ServiceConfig) {
				cfg.Parser = notingParser{w.parser, w}
				cfg.Objects = &objectsFake{objs: map[string]domain.OwnedObject{}}
			})
			_, err := s.Admit(ctx, w.key, in)
			de := domain.AsError(err)
			if de == nil || de.Kind != c.kind {
				t.Fatalf("err %v, want kind %v", err, c.kind)
			}
			if c.check != nil {
				c.check(t, de)
			}
			if got := strings.Join(w.log, ","); got != c.steps {
				t.Fatalf("steps %q, want %q", got, c.steps)
			}
			if n := w.est.calls.Load(); n != 0 {
				t.Fatalf("the estimator ran %d times", n)
			}
		})
	}
	// Admitted, the body is read after the slot and before the reservation.
	w := newWorld(t)
	limited(w, 10_000, 0)
	s := w.service(t, func(cfg *ServiceConfig) { cfg.Parser = notingParser{w.parser, w} })
	if _, err := s.Admit(ctx, w.key, input()); err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(w.log, ","), "allow req:,peek tok:,acquire,parse,reserve"; got != want {
		t.Fatalf("steps %q, want %q", got, want)
	}
}

// TestBusyEstimatorIsAnOverloadRefusal: when the tokenising estimate is
// needed and the estimator has no slot free for estimateWait, the call is
// refused 503 overloaded_error with retry-after (not as a spent quota,
// which it may well not be), and its concurrency slot is given back.
func TestBusyEstimatorIsAnOverloadRefusal(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	limited(w, 1000, 0)
	w.est.busy = true
	w.ledger.reserve = func(_ string, est, limit, _ int64) (domain.QuotaState, error) {
		w.note("reserve")
		return domain.QuotaState{Reserved: limit - 150}, domain.Errorf(domain.KindQuotaExceeded, "no room")
	}
	start := time.Now()
	_, err := w.service(t, nil).Admit(context.Background(), w.key, input())
	de := domain.AsError(err)
	if de == nil || de.Kind != domain.KindOverloaded || de.Reason != "estimator" || de.RetryAfter <= 0 || de.NoRetry {
		t.Fatalf("err %+v", err)
	}
	if waited := time.Since(start); waited < estimateWait {
		t.Fatalf("refused after %v, before waiting %v for the estimator", waited, estimateWait)
	}
	if got := strings.Join(w.log, ","); got != "allow req:,peek tok:,acquire,reserve,release" {
		t.Fatalf("steps %q", got)
	}
}

// TestNoEstimateWhenTheLedgerHasNoRoomForTheOutput: when the ledger (which
// may know of usage settled after the key was read) has no room for even
// the output bound, the tokenising estimate cannot help and is not run:
// the refusal says no retry can succeed when settled usage is the cause,
// and is retryable when in-flight reservations are.
func TestNoEstimateWhenTheLedgerHasNoRoomForTheOutput(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		st      domain.QuotaState
		noRetry bool
	}{
		{"settled", domain.QuotaState{Used: 950}, true},
		{"in flight", domain.QuotaState{Used: 100, Reserved: 850}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			limited(w, 1000, 0) // the key read shows room; the ledger knows better
			w.ledger.reserve = func(string, int64, int64, int64) (domain.QuotaState, error) {
				return c.st, domain.Errorf(domain.KindQuotaExceeded, "no room")
			}
			_, err := w.service(t, nil).Admit(context.Background(), w.key, input())
			de := domain.AsError(err)
			if de == nil || de.Kind != domain.KindQuotaExceeded || de.NoRetry != c.noRetry || !c.noRetry && de.RetryAfter <= 0 {
				t.Fatalf("err %+v", err)
			}
			if n := w.est.calls.Load(); n != 1 {
				t.Fatalf("%d estimator calls, want the cheap bound only", n)
			}
		})
	}
}
