package storetest

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// batch returns an unsettled batch owned by key, created at `at` and due
// for reconciliation from then on.
func batch(key uuid.UUID, id string, at time.Time) domain.OwnedObject {
	return domain.OwnedObject{
		Kind:          domain.ObjectBatch,
		ID:            id,
		KeyID:         key,
		CreatedAt:     at,
		ReservationID: "batch-res-" + id,
		Reserved:      250_000,
		ReservedCost:  1_234_567_891,
		PollAfter:     at,
		Upstream:      "up_batches",
	}
}

func file(key uuid.UUID, id string, at time.Time) domain.OwnedObject {
	return domain.OwnedObject{Kind: domain.ObjectFile, ID: id, KeyID: key, CreatedAt: at}
}

// normObject is o as a store returns it: UTC, microsecond precision.
func normObject(o domain.OwnedObject) domain.OwnedObject {
	o.CreatedAt = normTime(o.CreatedAt)
	o.SettledAt = normTimePtr(o.SettledAt)
	o.PollAfter = normTime(o.PollAfter)
	return o
}

func mustPut(t *testing.T, s ports.Store, objs ...domain.OwnedObject) {
	t.Helper()
	for _, o := range objs {
		must(t, s.PutObject(ctxT(t), o), fmt.Sprintf("put %s %s", o.Kind, o.ID))
	}
}

func wantObject(t *testing.T, s ports.Store, want domain.OwnedObject, what string) {
	t.Helper()
	got, err := s.GetObject(ctxT(t), want.Kind, want.ID)
	must(t, err, what)
	if want = normObject(want); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if got.CreatedAt.Location() != time.UTC || got.PollAfter.Location() != time.UTC {
		t.Fatalf("%s: times not in UTC: %v, %v", what, got.CreatedAt, got.PollAfter)
	}
}

func objectIDs(objs []domain.OwnedObject) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = o.ID
	}
	return out
}

func testObjectRoundTrip(t *testing.T, s ports.Store) {
	// Nanoseconds and a non-UTC zone come back as UTC microseconds.
	at := time.Date(2025, 3, 10, 14, 15, 16, 123456789, time.FixedZone("CET", 3600))
	settled := at.Add(time.Hour + 999*time.Nanosecond)
	b := batch(uuid.New(), "msgbatch_01full", at)
	b.PollAfter = at.Add(5 * time.Minute)
	b.SettledAt = &settled
	// A file carries none of the batch fields; a zero PollAfter survives.
	f := file(uuid.New(), "file_011CNha8iCJcU1wXNR6q4V8w", at)
	f.Upstream = "primary"
	// Kinds are separate: a file may share a batch's id, with another owner
	// (and no upstream: recorded before the upstream pool).
	same := file(uuid.New(), b.ID, at)
	mustPut(t, s, b, f, same)

	wantObject(t, s, b, "get batch")
	wantObject(t, s, f, "get file")
	wantObject(t, s, same, "get file sharing a batch id")
}

func testObjectPutIdempotent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	owner, other := uuid.New(), uuid.New()
	b := batch(owner, "msgbatch_01a", base)
	mustPut(t, s, b)

	// Recording it again for the same key is a no-op, even with other
	// details: the first record stays.
	again := b
	again.Reserved = 1
	again.ReservationID = "another"
	again.CreatedAt = base.Add(time.Hour)
	again.Upstream = "up_other"
	must(t, s.PutObject(ctx, again), "put again for the same key")
	wantObject(t, s, b, "after repeated put")

	// Another key is refused, and the first owner stays.
	stolen := b
	stolen.KeyID = other
	err := s.PutObject(ctx, stolen)
	wantKind(t, err, domain.KindConflict, "put for another key")
	if !isErr(err, domain.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
	}
	wantObject(t, s, b, "after refused put")
	if got, err := s.OwnedAmong(ctx, domain.ObjectBatch, other, []string{b.ID}); err != nil || len(got) != 0 {
		t.Fatalf("the refused key owns %v (err %v)", got, err)
	}
}

func testObjectPutConcurrent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	keys := []uuid.UUID{uuid.New(), uuid.New()}
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			errs[i] = s.PutObject(ctx, batch(keys[i%2], "msgbatch_01race", base))
		})
	}
	wg.Wait()

	got, err := s.GetObject(ctx, domain.ObjectBatch, "msgbatch_01race")
	must(t, err, "get")
	for i, err := range errs {
		if keys[i%2] == got.KeyID {
			must(t, err, "put by the owner")
		} else {
			wantKind(t, err, domain.KindConflict, "put by the other key")
		}
	}
}

func testObjectNotFound(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	f := file(uuid.New(), "file_01", base)
	mustPut(t, s, f)

	_, err := s.GetObject(ctx, domain.ObjectBatch, "msgbatch_01missing")
	wantKind(t, err, domain.KindNotFound, "get missing batch")
	if !isErr(err, domain.ErrNotFound) {
		t.Fatalf("errors.Is(err, ErrNotFound) = false for %v", err)
	}
	_, err = s.GetObject(ctx, domain.ObjectBatch, f.ID)
	wantKind(t, err, domain.KindNotFound, "get a file's id as a batch")
	// Ids from a request path may hold anything; they were never recorded.
	_, err = s.GetObject(ctx, domain.ObjectFile, "file_\x00\xff")
	wantKind(t, err, domain.KindNotFound, "get hostile id")
	_, err = s.GetObject(ctx, "widget", f.ID)
	wantKind(t, err, domain.KindNotFound, "get unknown kind")

	for _, id := range []string{"msgbatch_01missing", f.ID, "msgbatch_\x00\xff"} {
		wantKind(t, s.MarkBatchSettled(ctx, id, base), domain.KindNotFound, "settle "+id)
		wantKind(t, s.SetBatchPollAfter(ctx, id, base), domain.KindNotFound, "postpone "+id)
	}
	wantObject(t, s, f, "file after batch-only updates")
}

func testObjectInvalid(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	for _, o := range []domain.OwnedObject{
		{Kind: "widget", ID: "w_1", KeyID: key, CreatedAt: base},
		{Kind: "", ID: "w_2", KeyID: key, CreatedAt: base},
		{Kind: domain.ObjectBatch, ID: "", KeyID: key, CreatedAt: base},
		{Kind: domain.ObjectFile, ID: "file_\x00", KeyID: key, CreatedAt: base},
		{Kind: domain.ObjectFile, ID: "file_\xff", KeyID: key, CreatedAt: base},
	} {
		wantKind(t, s.PutObject(ctx, o), domain.KindInvalid, fmt.Sprintf("put %q %q", o.Kind, o.ID))
	}
	got, err := s.UnsettledBatches(ctx, base.Add(time.Hour), 10)
	must(t, err, "unsettled")
	if len(got) != 0 {
		t.Fatalf("refused puts stored %v", objectIDs(got))
	}
}

func testObjectOwnedAmong(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	a, b := uuid.New(), uuid.New()
	mustPut(t, s,
		batch(a, "msgbatch_a1", base),
		batch(a, "msgbatch_a2", base.Add(time.Second)),
		file(a, "file_a1", base),
		batch(b, "msgbatch_b1", base),
		file(b, "file_b1", base),
	)
	listing := []string{"msgbatch_b1", "msgbatch_a2", "file_a1", "msgbatch_unknown", "msgbatch_a1", "msgbatch_a2", "msgbatch_\x00\xff", "file_b1"}
	cases := []struct {
		name string
		kind domain.ObjectKind
		key  uuid.UUID
		ids  []string
		want []string
	}{
		{"a's batches", domain.ObjectBatch, a, listing, []string{"msgbatch_a1", "msgbatch_a2"}},
		{"a's files", domain.ObjectFile, a, listing, []string{"file_a1"}},
		{"b's batches", domain.ObjectBatch, b, listing, []string{"msgbatch_b1"}},
		{"b's files", domain.ObjectFile, b, listing, []string{"file_b1"}},
		{"an unknown key", domain.ObjectBatch, uuid.New(), listing, nil},
		{"no ids", domain.ObjectBatch, a, nil, nil},
		{"only foreign ids", domain.ObjectBatch, a, []string{"msgbatch_b1"}, nil},
	}
	for _, tc := range cases {
		in := slices.Clone(tc.ids)
		got, err := s.OwnedAmong(ctx, tc.kind, tc.key, tc.ids)
		must(t, err, tc.name)
		slices.Sort(got)
		if len(got) != len(tc.want) || (len(got) > 0 && !slices.Equal(got, tc.want)) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
		if !slices.Equal(tc.ids, in) {
			t.Errorf("%s: OwnedAmong changed its argument to %q", tc.name, tc.ids)
		}
	}

	// A whole upstream page (and more) in one call.
	many := make([]string, 5000)
	for i := range many {
		many[i] = fmt.Sprintf("msgbatch_%05d", i)
	}
	many[4321] = "msgbatch_a1"
	got, err := s.OwnedAmong(ctx, domain.ObjectBatch, a, many)
	must(t, err, "many ids")
	if !slices.Equal(got, []string{"msgbatch_a1"}) {
		t.Fatalf("many ids: got %q", got)
	}
}

func testObjectUnsettledBatches(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	now := base.Add(10 * time.Hour)
	// Stored out of order, so only the query can order them.
	old := batch(key, "msgbatch_z_old", base.Add(time.Hour))
	mid := batch(uuid.New(), "msgbatch_a_mid", base.Add(2*time.Hour))
	mid.PollAfter = now // exactly now is due
	young := batch(key, "msgbatch_m_young", base.Add(3*time.Hour))
	young.PollAfter = time.Time{} // never postponed
	later := batch(key, "msgbatch_later", base)
	later.PollAfter = now.Add(time.Microsecond)
	settledAt := base.Add(5 * time.Hour)
	done := batch(key, "msgbatch_done", base)
	done.SettledAt = &settledAt
	mustPut(t, s, young, later, done, mid, old, file(key, "file_due", base))

	got, err := s.UnsettledBatches(ctx, now, 10)
	must(t, err, "unsettled")
	want := []domain.OwnedObject{normObject(old), normObject(mid), normObject(young)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("unsettled at now:\n got %+v\nwant %+v", got, want)
	}
	got, err = s.UnsettledBatches(ctx, now, 2)
	must(t, err, "unsettled, limit 2")
	if ids := objectIDs(got); !slices.Equal(ids, []string{old.ID, mid.ID}) {
		t.Fatalf("limit 2: %q", ids)
	}
	got, err = s.UnsettledBatches(ctx, now.In(time.FixedZone("X", -5*3600)).Add(time.Microsecond), 10)
	must(t, err, "unsettled a microsecond later")
	if ids := objectIDs(got); !slices.Equal(ids, []string{later.ID, old.ID, mid.ID, young.ID}) {
		t.Fatalf("a microsecond later, in another zone: %q", ids)
	}
	got, err = s.UnsettledBatches(ctx, base.Add(-time.Hour), 10)
	must(t, err, "unsettled before all")
	if ids := objectIDs(got); !slices.Equal(ids, []string{young.ID}) {
		t.Fatalf("before every poll time: %q", ids)
	}
}

func testObjectBatchSettlement(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	now := base.Add(time.Hour)
	b1 := batch(key, "msgbatch_01", base)
	b2 := batch(key, "msgbatch_02", base.Add(time.Minute))
	mustPut(t, s, b1, b2)
	due := func(at time.Time) []string {
		t.Helper()
		got, err := s.UnsettledBatches(ctx, at, 10)
		must(t, err, "unsettled")
		return objectIDs(got)
	}

	// Postponing takes a batch out until its new time.
	next := now.Add(time.Minute + 123*time.Nanosecond)
	must(t, s.SetBatchPollAfter(ctx, b1.ID, next), "postpone")
	if ids := due(now); !slices.Equal(ids, []string{b2.ID}) {
		t.Fatalf("after postponing b1: %q", ids)
	}
	if ids := due(next); !slices.Equal(ids, []string{b1.ID, b2.ID}) {
		t.Fatalf("at b1's new poll time: %q", ids)
	}
	b1.PollAfter = next
	wantObject(t, s, b1, "postponed batch")
	// It may also be brought forward.
	must(t, s.SetBatchPollAfter(ctx, b1.ID, base), "bring forward")
	b1.PollAfter = base
	wantObject(t, s, b1, "batch brought forward")

	// A settled batch is never due again, however it is postponed.
	at := now.Add(30*time.Second + 456*time.Nanosecond)
	must(t, s.MarkBatchSettled(ctx, b2.ID, at), "settle")
	b2.SettledAt = &at
	wantObject(t, s, b2, "settled batch")
	must(t, s.SetBatchPollAfter(ctx, b2.ID, base), "postpone settled batch")
	b2.PollAfter = base
	wantObject(t, s, b2, "settled batch after postponing")
	if ids := due(now.Add(24 * time.Hour)); !slices.Equal(ids, []string{b1.ID}) {
		t.Fatalf("after settling b2: %q", ids)
	}
}
