package storetest

import (
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// filterFixture stores records over two keys, three models and three
// upstreams ("" being none: the relay answered itself), with statuses on
// both sides of the refusal boundary, and returns the keys and records.
func filterFixture(t *testing.T, s ports.Store) (k1, k2 uuid.UUID, recs []domain.UsageRecord) {
	t.Helper()
	k1, k2 = uuid.New(), uuid.New()
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Minute) }
	mk := func(i int, key uuid.UUID, model, upstream string, status int) domain.UsageRecord {
		r := rec(key, at(i), model, int64(i+1))
		r.Upstream, r.Status = upstream, status
		return r
	}
	recs = []domain.UsageRecord{
		mk(0, k1, "opus", "primary", 200),
		mk(1, k1, "sonnet", "backup", 200),
		mk(2, k2, "sonnet", "", 429), // refused: the relay's own rate limit
		mk(3, k1, "opus", "", 400),   // refused: an invalid request
		mk(4, k2, "opus", "primary", 529),
		mk(5, k2, "haiku", "", 200), // no upstream, but no refusal either
		mk(6, k1, "haiku", "", 399), // just below the boundary
		mk(7, k2, "opus", "backup", 400),
		mk(8, k1, "sonnet", "", 500),
		mk(9, k1, "opus", "primary", 200),
	}
	recs[5].Time = recs[4].Time // shared timestamps: the id breaks ties
	must(t, s.InsertUsage(ctxT(t), recs), "insert filter fixture")
	return k1, k2, recs
}

func refused(r domain.UsageRecord) bool { return r.Status >= 400 && r.Upstream == "" }

func testUsageLogsFilters(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	k1, k2, recs := filterFixture(t, s)
	from, to := recs[2].Time, recs[8].Time
	cases := []struct {
		name string
		q    domain.LogQuery
		keep func(domain.UsageRecord) bool
	}{
		{"model", domain.LogQuery{Model: ptr("opus")}, func(r domain.UsageRecord) bool { return r.Model == "opus" }},
		{"model absent", domain.LogQuery{Model: ptr("claude-none")}, func(domain.UsageRecord) bool { return false }},
		{"model is exact", domain.LogQuery{Model: ptr("OPUS")}, func(domain.UsageRecord) bool { return false }},
		{"upstream", domain.LogQuery{Upstream: ptr("backup")}, func(r domain.UsageRecord) bool { return r.Upstream == "backup" }},
		{"no upstream", domain.LogQuery{Upstream: ptr("")}, func(r domain.UsageRecord) bool { return r.Upstream == "" }},
		{"refusals", domain.LogQuery{RefusalsOnly: true}, refused},
		{"refusals and model", domain.LogQuery{RefusalsOnly: true, Model: ptr("opus")}, func(r domain.UsageRecord) bool {
			return refused(r) && r.Model == "opus"
		}},
		{"refusals and key", domain.LogQuery{RefusalsOnly: true, KeyID: &k2}, func(r domain.UsageRecord) bool { return refused(r) && r.KeyID == k2 }},
		{"refusals and status", domain.LogQuery{RefusalsOnly: true, Status: ptr(400)}, func(r domain.UsageRecord) bool {
			return refused(r) && r.Status == 400
		}},
		{"refusals and an upstream", domain.LogQuery{RefusalsOnly: true, Upstream: ptr("backup")}, func(domain.UsageRecord) bool { return false }},
		{"key and model", domain.LogQuery{KeyID: &k1, Model: ptr("opus")}, func(r domain.UsageRecord) bool { return r.KeyID == k1 && r.Model == "opus" }},
		{"model and upstream", domain.LogQuery{Model: ptr("opus"), Upstream: ptr("primary")}, func(r domain.UsageRecord) bool {
			return r.Model == "opus" && r.Upstream == "primary"
		}},
		{"upstream and status", domain.LogQuery{Upstream: ptr("primary"), Status: ptr(200)}, func(r domain.UsageRecord) bool {
			return r.Upstream == "primary" && r.Status == 200
		}},
		{"every filter and a range", domain.LogQuery{KeyID: &k1, Model: ptr("opus"), RefusalsOnly: true, Status: ptr(400), From: &from, To: &to},
			func(r domain.UsageRecord) bool {
				return r.KeyID == k1 && r.Model == "opus" && refused(r) && r.Status == 400 && !r.Time.Before(from) && r.Time.Before(to)
			}},
		{"model and a range", domain.LogQuery{Model: ptr("sonnet"), From: &from, To: &to}, func(r domain.UsageRecord) bool {
			return r.Model == "sonnet" && !r.Time.Before(from) && r.Time.Before(to)
		}},
		// Each status is read by its own index but 200, which nearly every
		// request has; with a key, a model or an upstream too.
		{"status", domain.LogQuery{Status: ptr(400)}, func(r domain.UsageRecord) bool { return r.Status == 400 }},
		{"status 200", domain.LogQuery{Status: ptr(200)}, func(r domain.UsageRecord) bool { return r.Status == 200 }},
		{"status absent", domain.LogQuery{Status: ptr(404)}, func(domain.UsageRecord) bool { return false }},
		{"status and key", domain.LogQuery{Status: ptr(400), KeyID: &k2}, func(r domain.UsageRecord) bool { return r.Status == 400 && r.KeyID == k2 }},
		{"status 200 and key", domain.LogQuery{Status: ptr(200), KeyID: &k1}, func(r domain.UsageRecord) bool { return r.Status == 200 && r.KeyID == k1 }},
		{"status and model", domain.LogQuery{Status: ptr(529), Model: ptr("opus")}, func(r domain.UsageRecord) bool { return r.Status == 529 && r.Model == "opus" }},
		{"status and a range", domain.LogQuery{Status: ptr(400), From: &from, To: &to}, func(r domain.UsageRecord) bool {
			return r.Status == 400 && !r.Time.Before(from) && r.Time.Before(to)
		}},
		// Stored text is always valid UTF-8 without NUL: such a filter
		// matches nothing, and is no error.
		{"model with NUL", domain.LogQuery{Model: ptr("opus\x00")}, func(domain.UsageRecord) bool { return false }},
		{"upstream not UTF-8", domain.LogQuery{Upstream: ptr("primary\xff")}, func(domain.UsageRecord) bool { return false }},
	}
	for _, tc := range cases {
		got, err := s.UsageLogs(ctx, tc.q)
		must(t, err, tc.name)
		want := newestFirst(filterRecs(recs, tc.keep))
		if !slices.Equal(logIDs(got), logIDs(want)) {
			t.Errorf("%s:\n got %v\nwant %v", tc.name, logIDs(got), logIDs(want))
		}
		if got == nil {
			t.Errorf("%s: nil list, want an empty one", tc.name)
		}
	}
	// The filtered records come back whole.
	got, err := s.UsageLogs(ctx, domain.LogQuery{RefusalsOnly: true, KeyID: &k2})
	must(t, err, "refusals of k2")
	if len(got) != 1 || !reflect.DeepEqual(got[0], normRec(recs[2])) {
		t.Fatalf("refusal of k2 = %+v, want %+v", got, normRec(recs[2]))
	}
}

// pageAll reads every page of q, size records at a time, following the
// cursor as a client does.
func pageAll(t *testing.T, s ports.Store, q domain.LogQuery, size int) []domain.UsageRecord {
	t.Helper()
	q.Limit = size
	var got []domain.UsageRecord
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("pagination does not terminate")
		}
		list, err := s.UsageLogs(ctxT(t), q)
		must(t, err, "page")
		if len(list) > size {
			t.Fatalf("page of %d, limit %d", len(list), size)
		}
		got = append(got, list...)
		if len(list) < size {
			return got
		}
		last := list[len(list)-1]
		q.After = &domain.LogCursor{Time: last.Time, RequestID: last.RequestID}
	}
}

func testUsageLogsFilterPagination(t *testing.T, s ports.Store) {
	key := uuid.New()
	models := []string{"target", "other", "third"}
	upstreams := []string{"primary", "backup", ""}
	var recs []domain.UsageRecord
	for i := range 60 {
		// Triples share a timestamp, so the request id must break ties,
		// and every filter's matches straddle page boundaries.
		r := rec(key, base.Add(time.Duration(i/3)*time.Second), models[i%3], int64(i))
		r.Upstream = upstreams[(i/2)%3]
		if i%5 != 0 {
			r.Status = 429
		}
		recs = append(recs, r)
	}
	must(t, s.InsertUsage(ctxT(t), recs), "insert")
	cases := []struct {
		name string
		q    domain.LogQuery
		keep func(domain.UsageRecord) bool
	}{
		{"model", domain.LogQuery{Model: ptr("target")}, func(r domain.UsageRecord) bool { return r.Model == "target" }},
		{"upstream", domain.LogQuery{Upstream: ptr("backup")}, func(r domain.UsageRecord) bool { return r.Upstream == "backup" }},
		{"refusals", domain.LogQuery{RefusalsOnly: true}, refused},
		{"refusals of a model", domain.LogQuery{RefusalsOnly: true, Model: ptr("other")}, func(r domain.UsageRecord) bool {
			return refused(r) && r.Model == "other"
		}},
		{"key and upstream", domain.LogQuery{KeyID: &key, Upstream: ptr("")}, func(r domain.UsageRecord) bool { return r.Upstream == "" }},
	}
	for _, tc := range cases {
		want := newestFirst(filterRecs(recs, tc.keep))
		if len(want) < 8 {
			t.Fatalf("%s: fixture too small (%d matches)", tc.name, len(want))
		}
		for _, size := range []int{1, 4, 7} {
			got := pageAll(t, s, tc.q, size)
			if !slices.Equal(logIDs(got), logIDs(want)) {
				t.Errorf("%s, pages of %d:\n got %v\nwant %v", tc.name, size, logIDs(got), logIDs(want))
			}
		}
	}
}

// testUsageLogsTimeBounds checks From (inclusive), To (exclusive) and the
// cursor at and around stored times, including bounds finer than the
// stored microsecond.
func testUsageLogsTimeBounds(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	key := uuid.New()
	var recs []domain.UsageRecord
	for i := range 6 {
		recs = append(recs, rec(key, base.Add(time.Duration(i)*time.Second), "m", int64(i)))
	}
	recs[3].Time = recs[2].Time
	must(t, s.InsertUsage(ctx, recs), "insert")
	t2 := recs[2].Time
	ns := func(t time.Time, d time.Duration) *time.Time { v := t.Add(d); return &v }
	// The cursor after the newer of the two records at t2.
	mid := newestFirst(recs[2:4])
	after := &domain.LogCursor{Time: t2, RequestID: mid[0].RequestID}
	cases := []struct {
		name string
		q    domain.LogQuery
		keep func(domain.UsageRecord) bool
	}{
		{"from is inclusive", domain.LogQuery{From: &t2}, func(r domain.UsageRecord) bool { return !r.Time.Before(t2) }},
		{"to is exclusive", domain.LogQuery{To: &t2}, func(r domain.UsageRecord) bool { return r.Time.Before(t2) }},
		{"from a nanosecond later", domain.LogQuery{From: ns(t2, time.Nanosecond)}, func(r domain.UsageRecord) bool { return r.Time.After(t2) }},
		{"to a nanosecond later", domain.LogQuery{To: ns(t2, time.Nanosecond)}, func(r domain.UsageRecord) bool { return !r.Time.After(t2) }},
		{"to in another zone", domain.LogQuery{To: ns(t2.In(time.FixedZone("X", -7*3600)), 0)}, func(r domain.UsageRecord) bool { return r.Time.Before(t2) }},
		{"empty range", domain.LogQuery{From: &t2, To: &t2}, func(domain.UsageRecord) bool { return false }},
		{"inverted range", domain.LogQuery{From: ns(t2, time.Second), To: &t2}, func(domain.UsageRecord) bool { return false }},
		{"cursor between records sharing a time", domain.LogQuery{After: after}, func(r domain.UsageRecord) bool {
			return r.Time.Before(t2) || r.RequestID == mid[1].RequestID
		}},
		{"cursor a nanosecond after a time", domain.LogQuery{After: &domain.LogCursor{Time: t2.Add(time.Nanosecond), RequestID: ""}},
			func(r domain.UsageRecord) bool { return !r.Time.After(t2) }},
		{"cursor beyond to", domain.LogQuery{After: &domain.LogCursor{Time: recs[5].Time, RequestID: recs[5].RequestID}, To: &t2},
			func(r domain.UsageRecord) bool { return r.Time.Before(t2) }},
		{"to beyond the cursor", domain.LogQuery{After: after, To: ns(t2, time.Hour)}, func(r domain.UsageRecord) bool {
			return r.Time.Before(t2) || r.RequestID == mid[1].RequestID
		}},
		{"cursor before from", domain.LogQuery{After: &domain.LogCursor{Time: recs[1].Time, RequestID: recs[1].RequestID}, From: &t2},
			func(domain.UsageRecord) bool { return false }},
	}
	for _, tc := range cases {
		for _, model := range []*string{nil, ptr("m")} { // the time index and the model's
			q := tc.q
			q.Model = model
			got, err := s.UsageLogs(ctx, q)
			must(t, err, tc.name)
			want := newestFirst(filterRecs(recs, tc.keep))
			if !slices.Equal(logIDs(got), logIDs(want)) {
				t.Errorf("%s (model filter %v):\n got %v\nwant %v", tc.name, model != nil, logIDs(got), logIDs(want))
			}
		}
	}
}
