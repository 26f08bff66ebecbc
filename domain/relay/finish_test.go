package relay

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// objectsFake is an in-memory ObjectStore double.
type objectsFake struct {
	ports.ObjectStore
	objs map[string]domain.OwnedObject
}

func (f *objectsFake) PutObject(_ context.Context, o domain.OwnedObject) error {
	f.objs[string(o.Kind)+o.ID] = o
	return nil
}
func (f *objectsFake) GetObject(_ context.Context, k domain.ObjectKind, id string) (domain.OwnedObject, error) {
	o, ok := f.objs[string(k)+id]
	if !ok {
		return domain.OwnedObject{}, domain.ErrNotFound
	}
	return o, nil
}

var _ ports.ObjectStore = (*objectsFake)(nil)

func limited(w *world, limit, used int64) {
	w.key.TokenLimit = &limit
	w.key.TokensUsed = used
}

func TestChargeRules(t *testing.T) {
	top := domain.Usage{InputTokens: 100, OutputTokens: 50}
	cases := []struct {
		name      string
		ep        Endpoint
		out       Outcome
		want      domain.Usage
		estimated bool
	}{
		{"complete", EndpointMessages, ok(top), top, false},
		{"never written", EndpointMessages, Outcome{Status: 502}, domain.Usage{}, false},
		{"written, no answer (timeout)", EndpointMessages, Outcome{Status: 504, Written: true}, domain.Usage{InputTokens: 50}, true},
		{"client gone before headers", EndpointMessages, Outcome{Status: 499, Written: true}, domain.Usage{InputTokens: 50}, true},
		{"upstream error answer", EndpointMessages, Outcome{Status: 400, Answered: true, UpstreamStatus: 400, Written: true}, domain.Usage{}, false},
		{"interrupted stream after message_start", EndpointMessages, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true, Stream: true,
			Reply: Reply{Usage: domain.Usage{InputTokens: 100, OutputTokens: 1}, InputReported: true, OutputEstimate: 30}},
			domain.Usage{InputTokens: 100, OutputTokens: 30}, true},
		{"interrupted stream before message_start", EndpointMessages, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true, Stream: true,
			Reply: Reply{OutputEstimate: 7}}, domain.Usage{InputTokens: 50, OutputTokens: 7}, true},
		{"unreadable answer bills the reservation", EndpointMessages, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true,
			Reply: Reply{Unreadable: true}}, domain.Usage{InputTokens: 180}, true},
		{"iterations", EndpointMessages, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true, Reply: Reply{
			Usage: top, Complete: true, InputReported: true, Iterations: []domain.Iteration{
				{Type: "compaction", Usage: domain.Usage{InputTokens: 1000, OutputTokens: 10}},
				{Type: "message", Usage: top},
			}}}, domain.Usage{InputTokens: 1100, OutputTokens: 60}, false},
		{"aux never bills", EndpointCountTokens, ok(top), domain.Usage{}, false},
		{"passthrough keeps reported usage", EndpointPassthrough, ok(top), top, false},
		{"batch results are not billed again", EndpointBatchResults, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true}, domain.Usage{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			limited(w, 1_000_000, 0)
			s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = &objectsFake{objs: map[string]domain.OwnedObject{}} })
			in := input()
			in.Route = Route{Endpoint: c.ep, Path: "/x"}
			a, err := s.Admit(context.Background(), w.key, in)
			if err != nil {
				t.Fatal(err)
			}
			rec := a.Finish(context.Background(), c.out)
			if rec.Usage != c.want || rec.Estimated != c.estimated {
				t.Fatalf("charged %+v estimated=%v, want %+v estimated=%v", rec.Usage, rec.Estimated, c.want, c.estimated)
			}
			if len(w.records) != 1 || w.records[0].Usage != c.want || w.records[0].Endpoint != c.ep.String() {
				t.Fatalf("records %+v", w.records)
			}
		})
	}
}

func TestReserveRules(t *testing.T) {
	ctx := context.Background()
	t.Run("persisted usage at the limit: refused, no retry, nothing estimated", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 1000)
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.Kind != domain.KindQuotaExceeded || !de.NoRetry || w.est.calls.Load() != 0 {
			t.Fatalf("err %+v, estimator calls %d", err, w.est.calls.Load())
		}
	})
	t.Run("max_tokens alone cannot fit: refused without tokenising", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 950)
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || !de.NoRetry || w.est.calls.Load() != 0 {
			t.Fatalf("err %+v, estimator calls %d", err, w.est.calls.Load())
		}
		for _, step := range w.log {
			if step == "reserve" {
				t.Fatal("reached the ledger")
			}
		}
	})
	t.Run("the cheap bound, then the tight estimate", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 0)
		var asked []int64
		w.ledger.reserve = func(_ string, est, limit, _ int64) (domain.QuotaState, error) {
			asked = append(asked, est)
			if est > 160 {
				return domain.QuotaState{Reserved: limit - 160}, domain.Errorf(domain.KindQuotaExceeded, "no room")
			}
			return domain.QuotaState{}, nil
		}
		a, err := w.service(t, nil).Admit(ctx, w.key, input())
		if err != nil || len(asked) != 2 || asked[0] != 180 || asked[1] != 150 || a.Reserved != 150 {
			t.Fatalf("err %v, asked %v, admission %+v", err, asked, a)
		}
	})
	t.Run("max_tokens 0 (a cache warm) reserves only the input", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 0)
		w.parser.req = domain.CallRequest{MaxTokens: 0, MaxTokensSet: true}
		a, err := w.service(t, nil).Admit(ctx, w.key, input())
		if err != nil || a.Reserved != 80 {
			t.Fatalf("err %v admission %+v", err, a)
		}
		// Absent, it reserves the default output bound.
		w.parser.req = domain.CallRequest{}
		if _, err := w.service(t, nil).Admit(ctx, w.key, input()); domain.KindOf(err) != domain.KindQuotaExceeded {
			t.Fatalf("absent max_tokens on a 1000-token key: %v", err)
		}
	})
	t.Run("in-flight reservations: retryable", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 0)
		w.ledger.reserve = func(string, int64, int64, int64) (domain.QuotaState, error) {
			return domain.QuotaState{Used: 100, Reserved: 850}, domain.Errorf(domain.KindQuotaExceeded, "no room")
		}
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || de.NoRetry || de.RetryAfter <= 0 {
			t.Fatalf("err %+v", err)
		}
	})
	t.Run("settled usage leaves no room: not retryable", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 1000, 0)
		w.ledger.reserve = func(string, int64, int64, int64) (domain.QuotaState, error) {
			return domain.QuotaState{Used: 900}, domain.Errorf(domain.KindQuotaExceeded, "no room")
		}
		_, err := w.service(t, nil).Admit(ctx, w.key, input())
		if de := domain.AsError(err); de == nil || !de.NoRetry {
			t.Fatalf("err %+v", err)
		}
	})
	t.Run("a batch reserves every request's bound", func(t *testing.T) {
		w := newWorld(t)
		limited(w, 100_000, 0)
		w.parser.items = []domain.BatchItem{
			{CustomID: "a", Request: domain.CallRequest{MaxTokens: 1000}, Params: []byte(`{}`)},
			{CustomID: "b", Request: domain.CallRequest{MaxTokens: 2000}, Params: []byte(`{}`)},
		}
		var leaseSeen int64
		w.ledger.reserve = func(_ string, est, _, _ int64) (domain.QuotaState, error) {
			leaseSeen = est
			return domain.QuotaState{}, nil
		}
		s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = &objectsFake{objs: map[string]domain.OwnedObject{}} })
		in := input()
		in.Route = Route{Endpoint: EndpointBatchCreate, Path: "/v1/messages/batches"}
		a, err := s.Admit(ctx, w.key, in)
		if err != nil || leaseSeen != 3000+2*80 {
			t.Fatalf("err %v reserved %d", err, leaseSeen)
		}
		// Accepted: the reservation stays for the reconciler, and the batch
		// is recorded as the key's.
		w.log = nil
		a.Finish(ctx, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true, Reply: Reply{ObjectID: "msgbatch_1"}})
		for _, step := range w.log {
			if step == "settle" {
				t.Fatal("an accepted batch's reservation was settled at creation")
			}
		}
		o, err := s.cfg.Objects.GetObject(ctx, domain.ObjectBatch, "msgbatch_1")
		if err != nil || o.KeyID != w.key.ID || o.Reserved != 3160 || o.ReservationID != "req_1" {
			t.Fatalf("object %+v %v", o, err)
		}
	})
}

func TestOwnershipIsChecked(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	objs := &objectsFake{objs: map[string]domain.OwnedObject{}}
	s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = objs })
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectFile, ID: "file_mine", KeyID: w.key.ID})
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectFile, ID: "file_theirs", KeyID: uuid.New()})
	for id, want := range map[string]domain.Kind{"file_mine": 0, "file_theirs": domain.KindNotFound, "file_unknown": domain.KindNotFound} {
		in := input()
		in.Route = Route{Endpoint: EndpointFileGet, Path: "/v1/files/" + id, ObjectID: id}
		a, err := s.Admit(ctx, w.key, in)
		if want == 0 && err != nil || want != 0 && domain.KindOf(err) != want {
			t.Errorf("%s: %v", id, err)
		}
		a.Finish(ctx, Outcome{})
	}
}

func TestRefusedRecordsKnownKeysOnly(t *testing.T) {
	w := newWorld(t)
	s := w.service(t, nil)
	s.Refused(context.Background(), Refusal{RequestID: "a", Status: 401, ErrorType: "authentication_error"})
	s.Refused(context.Background(), Refusal{RequestID: "b", Key: &w.key, Status: 429, ErrorType: "rate_limit_error", Start: time.Now()})
	s.Refused(context.Background(), Refusal{RequestID: "c", Key: &w.key, Status: 503, ErrorType: "overloaded_error"})
	if len(w.records) != 1 || w.records[0].RequestID != "b" || w.records[0].KeyID != w.key.ID || w.records[0].Usage.Total() != 0 {
		t.Fatalf("records %+v", w.records)
	}
}

func TestKeyFromHeaders(t *testing.T) {
	a, b := "sk-proxy-"+"A123456789012345678901234567890123456789012", "sk-proxy-"+"B123456789012345678901234567890123456789012"
	cases := []struct {
		xapi, bearer, want string
		fail               bool
	}{
		{a, "", a, false},
		{"", a, a, false},
		{a, a, a, false},
		{a, "sk-ant-real", a, false},
		{"sk-ant-real", a, a, false},
		{a, b, "", true},
	}
	for _, c := range cases {
		h := http.Header{}
		if c.xapi != "" {
			h.Set("x-api-key", c.xapi)
		}
		if c.bearer != "" {
			h.Set("Authorization", "Bearer "+c.bearer)
		}
		got, err := KeyFromHeaders(h)
		if (err != nil) != c.fail || got != c.want {
			t.Errorf("x-api-key %q bearer %q: %q %v", c.xapi, c.bearer, got, err)
		}
	}
}

func TestIsJSONMediaType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON": true, "application/json; charset=utf-8": true,
		"application/json ;charset=utf-8": true, "application/jsonx": false, "application/json; =bad": false,
		"text/plain": false, "": false, "application/x-www-form-urlencoded": false, " application/json": true,
	} {
		if got := isJSONMediaType(ct); got != want {
			t.Errorf("%q: %v", ct, got)
		}
	}
}

// TestFileReferencesAreOwnershipChecked: a body naming another key's file
// (or one the relay never saw) is refused as not found.
func TestFileReferencesAreOwnershipChecked(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	objs := &objectsFake{objs: map[string]domain.OwnedObject{}}
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectFile, ID: "file_mine", KeyID: w.key.ID})
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectFile, ID: "file_theirs", KeyID: uuid.New()})
	s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = objs })
	for ids, want := range map[string]domain.Kind{"file_mine": 0, "file_mine,file_theirs": domain.KindNotFound, "file_new": domain.KindNotFound} {
		w.parser.req = domain.CallRequest{MaxTokens: 10, MaxTokensSet: true, FileIDs: strings.Split(ids, ",")}
		a, err := s.Admit(ctx, w.key, input())
		if want == 0 && err != nil || want != 0 && domain.KindOf(err) != want {
			t.Errorf("%s: %v", ids, err)
		}
		a.Finish(ctx, Outcome{})
	}
	// In a batch's requests too.
	w.parser.req = domain.CallRequest{}
	w.parser.items = []domain.BatchItem{{CustomID: "a", Request: domain.CallRequest{MaxTokens: 1, MaxTokensSet: true, FileIDs: []string{"file_theirs"}}, Params: []byte(`{}`)}}
	in := input()
	in.Route = Route{Endpoint: EndpointBatchCreate, Path: "/v1/messages/batches"}
	if _, err := s.Admit(ctx, w.key, in); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("batch naming another key's file: %v", err)
	}
}

// TestKeepAliveExtendsTheReservation: a request still answering extends
// its reservation every third of a lease, and costs nothing in between.
func TestKeepAliveExtendsTheReservation(t *testing.T) {
	w := newWorld(t)
	limited(w, 1_000_000, 0)
	clock := &fakeClock{}
	clock.Advance(time.Hour)
	var extended []time.Duration
	w.ledger.extend = func(id string, lease time.Duration) error {
		if id != "req_1" {
			t.Errorf("extended %q", id)
		}
		extended = append(extended, lease)
		return nil
	}
	s := w.service(t, func(c *ServiceConfig) { c.Clock = clock; c.ReservationLease = 30 * time.Minute })
	a, err := s.Admit(context.Background(), w.key, input())
	if err != nil {
		t.Fatal(err)
	}
	for range 100 { // many chunks within the first third: no extension
		a.KeepAlive(context.Background())
	}
	if len(extended) != 0 {
		t.Fatalf("extended %d times within the first third of the lease", len(extended))
	}
	for range 4 { // two hours of streaming, a chunk every 11 minutes
		clock.Advance(11 * time.Minute)
		a.KeepAlive(context.Background())
		a.KeepAlive(context.Background())
	}
	if len(extended) != 4 || extended[0] != 30*time.Minute {
		t.Fatalf("extensions %v", extended)
	}
	// A call that reserved nothing never touches the ledger.
	w2 := newWorld(t)
	b, err := w2.service(t, nil).Admit(context.Background(), w2.key, input())
	if err != nil {
		t.Fatal(err)
	}
	b.KeepAlive(context.Background())
}
