package relay

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// TestObjectUpstream: a call naming a batch or file must go to the upstream
// that created it; objects of two upstreams cannot be served together;
// objects recorded before the pool require nothing.
func TestObjectUpstream(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	objs := &objectsFake{objs: map[string]domain.OwnedObject{}}
	s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = objs })
	for _, o := range []domain.OwnedObject{
		{Kind: domain.ObjectBatch, ID: "msgbatch_b", KeyID: w.key.ID, Upstream: "up-b"},
		{Kind: domain.ObjectFile, ID: "file_b", KeyID: w.key.ID, Upstream: "up-b"},
		{Kind: domain.ObjectFile, ID: "file_b2", KeyID: w.key.ID, Upstream: "up-b"},
		{Kind: domain.ObjectFile, ID: "file_c", KeyID: w.key.ID, Upstream: "up-c"},
		{Kind: domain.ObjectFile, ID: "file_old", KeyID: w.key.ID},
	} {
		_ = objs.PutObject(ctx, o)
	}
	for _, ep := range []Endpoint{EndpointBatchGet, EndpointBatchResults} {
		in := input()
		in.Route = Route{Endpoint: ep, Path: "/v1/messages/batches/msgbatch_b", ObjectID: "msgbatch_b"}
		a, err := s.Admit(ctx, w.key, in)
		if err != nil || a.ObjectUpstream() != "up-b" {
			t.Fatalf("%v: %v, upstream %q", ep, err, a.ObjectUpstream())
		}
		a.Finish(ctx, Outcome{})
	}
	for _, c := range []struct {
		files []string
		want  string
		kind  domain.Kind
	}{
		{[]string{"file_b", "file_b2"}, "up-b", 0},
		{[]string{"file_old", "file_c"}, "up-c", 0},
		{[]string{"file_old"}, "", 0},
		{[]string{"file_b", "file_c"}, "", domain.KindInvalid},
	} {
		w.parser.req = domain.CallRequest{MaxTokens: 10, MaxTokensSet: true, FileIDs: c.files}
		a, err := s.Admit(ctx, w.key, input())
		if c.kind != 0 {
			if de := domain.AsError(err); de == nil || de.Kind != c.kind || de.Reason != domain.ReasonObject {
				t.Fatalf("%v: %v, want a %v refusal", c.files, err, c.kind)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%v: %v", c.files, err)
		}
		if a.ObjectUpstream() != c.want {
			t.Fatalf("%v: upstream %q, want %q", c.files, a.ObjectUpstream(), c.want)
		}
		a.Finish(ctx, Outcome{})
	}
}

// TestCreatedObjectsRecordTheirUpstream: the upstream that answered a
// create is recorded on the object.
func TestCreatedObjectsRecordTheirUpstream(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	objs := &objectsFake{objs: map[string]domain.OwnedObject{}}
	s := w.service(t, func(cfg *ServiceConfig) { cfg.Objects = objs })
	in := input()
	in.Route = Route{Endpoint: EndpointFileUpload, Path: "/v1/files"}
	a, err := s.Admit(ctx, w.key, in)
	if err != nil {
		t.Fatal(err)
	}
	rec := a.Finish(ctx, Outcome{Status: 200, Answered: true, UpstreamStatus: 200, Written: true, Upstream: "up-b",
		Reply: Reply{ObjectID: "file_new", Complete: true}})
	o, err := objs.GetObject(ctx, domain.ObjectFile, "file_new")
	if err != nil || o.Upstream != "up-b" || o.KeyID != w.key.ID || rec.Upstream != "up-b" {
		t.Fatalf("object %+v %v, record upstream %q", o, err, rec.Upstream)
	}
}

// upstreamRecorder records the upstream each batch read was required to go to.
type upstreamRecorder struct {
	batchUpstreamFake
	seen map[string][]string
}

func (f *upstreamRecorder) BatchEnded(ctx context.Context, id string) (bool, error) {
	f.seen[id] = append(f.seen[id], RequiredUpstream(ctx))
	return f.batchUpstreamFake.BatchEnded(ctx, id)
}

func (f *upstreamRecorder) BatchResults(ctx context.Context, id string, fn func(domain.BatchResult) error) error {
	f.seen[id] = append(f.seen[id], RequiredUpstream(ctx))
	return f.batchUpstreamFake.BatchResults(ctx, id, fn)
}

// TestReconcilerReadsBatchesFromTheirUpstream: only the upstream that
// created a batch knows it; another would answer 404 and the batch would be
// billed as unreadable.
func TestReconcilerReadsBatchesFromTheirUpstream(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	objs := &batchObjects{objectsFake: objectsFake{objs: map[string]domain.OwnedObject{}}, polls: map[string]time.Time{}, settled: map[string]bool{}}
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectBatch, ID: "on_b", KeyID: uuid.New(), Upstream: "up-b"})
	_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectBatch, ID: "before_pool", KeyID: uuid.New()})
	up := &upstreamRecorder{batchUpstreamFake: batchUpstreamFake{ended: map[string]bool{"on_b": true, "before_pool": true}}, seen: map[string][]string{}}
	s := w.service(t, func(c *ServiceConfig) {
		c.Objects, c.Batches, c.Store = objs, up, &usageStoreFake{byID: map[string]domain.UsageRecord{}}
	})
	if err := s.ReconcileBatches(ctx); err != nil {
		t.Fatal(err)
	}
	if got := up.seen["on_b"]; len(got) != 2 || got[0] != "up-b" || got[1] != "up-b" {
		t.Fatalf("on_b read from %q", got)
	}
	if got := up.seen["before_pool"]; len(got) != 2 || got[0] != "" || got[1] != "" {
		t.Fatalf("before_pool read from %q", got)
	}
	if RequiredUpstream(WithRequiredUpstream(ctx, "")) != "" || RequiredUpstream(ctx) != "" {
		t.Fatal("an empty requirement requires something")
	}
}
