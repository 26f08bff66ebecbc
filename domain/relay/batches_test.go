package relay

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

type batchObjects struct {
	objectsFake
	polls   map[string]time.Time
	settled map[string]bool
}

func (f *batchObjects) UnsettledBatches(_ context.Context, now time.Time, _ int) ([]domain.OwnedObject, error) {
	var out []domain.OwnedObject
	for _, o := range f.objs {
		if o.Kind == domain.ObjectBatch && !f.settled[o.ID] && !f.polls[o.ID].After(now) {
			out = append(out, o)
		}
	}
	return out, nil
}
func (f *batchObjects) SetBatchPollAfter(_ context.Context, id string, at time.Time) error {
	f.polls[id] = at
	return nil
}
func (f *batchObjects) MarkBatchSettled(_ context.Context, id string, _ time.Time) error {
	f.settled[id] = true
	return nil
}

type batchUpstreamFake struct {
	ended   map[string]bool
	results map[string][]domain.BatchResult
}

func (f *batchUpstreamFake) BatchEnded(_ context.Context, id string) (bool, error) {
	e, ok := f.ended[id]
	if !ok {
		return false, domain.ErrNotFound
	}
	return e, nil
}
func (f *batchUpstreamFake) BatchResults(_ context.Context, id string, fn func(domain.BatchResult) error) error {
	for _, r := range f.results[id] {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

type usageStoreFake struct {
	ports.UsageStore
	byID map[string]domain.UsageRecord
}

func (f *usageStoreFake) InsertUsage(_ context.Context, recs []domain.UsageRecord) error {
	for _, r := range recs {
		f.byID[r.RequestID] = r
	}
	return nil
}

var (
	_ ports.BatchUpstream = (*batchUpstreamFake)(nil)
	_ ports.ObjectStore   = (*batchObjects)(nil)
)

// TestReconcilerSettlesEndedBatches: an unfinished batch is postponed; an
// ended one records each succeeded request (flagged batch) and settles the
// reservation with their total once; a batch the upstream forgot is billed
// its reservation.
func TestReconcilerSettlesEndedBatches(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	key := uuid.New()
	objs := &batchObjects{objectsFake: objectsFake{objs: map[string]domain.OwnedObject{}}, polls: map[string]time.Time{}, settled: map[string]bool{}}
	for _, id := range []string{"running", "done", "gone"} {
		_ = objs.PutObject(ctx, domain.OwnedObject{Kind: domain.ObjectBatch, ID: id, KeyID: key, ReservationID: "res_" + id, Reserved: 5000})
	}
	up := &batchUpstreamFake{ended: map[string]bool{"running": false, "done": true}, results: map[string][]domain.BatchResult{
		"done": {
			{CustomID: "a", Type: "succeeded", Model: "m", Usage: domain.Usage{InputTokens: 10, OutputTokens: 20}},
			{CustomID: "b", Type: "errored"},
			{CustomID: "c", Type: "succeeded", Model: "m", Usage: domain.Usage{InputTokens: 5, OutputTokens: 5},
				Iterations: []domain.Iteration{{Type: "compaction", Usage: domain.Usage{InputTokens: 100}}, {Type: "message", Usage: domain.Usage{InputTokens: 5, OutputTokens: 5}}}},
		},
	}}
	store := &usageStoreFake{byID: map[string]domain.UsageRecord{}}
	settled := map[string]int64{}
	w.ledger.settle = func(id string, actual int64) error { settled[id] += actual; return nil }
	s := w.service(t, func(c *ServiceConfig) { c.Objects, c.Batches, c.Store = objs, up, store })
	for range 2 { // twice: the second pass must change nothing
		if err := s.ReconcileBatches(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if settled["res_done"] != 30+110 || settled["res_gone"] != 5000 || settled["res_running"] != 0 {
		t.Fatalf("settled %v", settled)
	}
	if !objs.settled["done"] || !objs.settled["gone"] || objs.settled["running"] || objs.polls["running"].IsZero() {
		t.Fatalf("state settled=%v polls=%v", objs.settled, objs.polls)
	}
	a, c := store.byID["batch:done:a"], store.byID["batch:done:c"]
	if !a.Batch || a.KeyID != key || a.Usage.Total() != 30 || c.Usage.InputTokens != 105 || len(store.byID) != 3 {
		t.Fatalf("records %+v", store.byID)
	}
	if g := store.byID["batch:gone:unreadable"]; !g.Estimated || g.Usage.InputTokens != 5000 {
		t.Fatalf("forgotten batch %+v", g)
	}
}
