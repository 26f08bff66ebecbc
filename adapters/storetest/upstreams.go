package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// newUpstream returns an upstream with every field set, created at `at`.
func newUpstream(id, name string, priority int, at time.Time) ports.UpstreamRecord {
	return ports.UpstreamRecord{
		Upstream: pool.Upstream{
			ID: id, Name: name, Priority: priority, Weight: 3, MaxConcurrency: 16,
			Models: []string{"claude-sonnet-*", "claude-haiku-4-5"}, Group: "team-a", Enabled: true,
		},
		URL:       "https://api.anthropic.com",
		SealedKey: "v1:0a1b2c3d:sealed-" + id,
		KeyLast4:  "wxyz",
		CreatedAt: at,
		UpdatedAt: at,
	}
}

// normUpstream is u as a store returns it: UTC, microsecond precision, an
// empty model list as none.
func normUpstream(u ports.UpstreamRecord) ports.UpstreamRecord {
	u.CreatedAt, u.UpdatedAt = normTime(u.CreatedAt), normTime(u.UpdatedAt)
	if len(u.Models) == 0 {
		u.Models = nil
	}
	return u
}

func wantUpstream(t *testing.T, got, want ports.UpstreamRecord, what string) {
	t.Helper()
	if want = normUpstream(want); !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("%s: times not in UTC: %v, %v", what, got.CreatedAt, got.UpdatedAt)
	}
}

func mustUpstream(t *testing.T, s ports.Store, u ports.UpstreamRecord) ports.UpstreamRecord {
	t.Helper()
	must(t, s.CreateUpstream(ctxT(t), u), "create upstream "+u.ID)
	return u
}

func upstreamIDs(ups []ports.UpstreamRecord) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.ID
	}
	return out
}

func testUpstreamRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	list, err := s.ListUpstreams(ctx)
	must(t, err, "list empty")
	if len(list) != 0 {
		t.Fatalf("fresh store has %d upstreams", len(list))
	}
	// Nanoseconds and a non-UTC zone come back as UTC microseconds.
	at := time.Date(2025, 3, 10, 14, 15, 16, 123456789, time.FixedZone("CET", 3600))
	full := newUpstream("up_full", "full", 1, at)
	full.Enabled = false
	full.DisabledReason = "401 authentication_error: invalid x-api-key"
	// The least an upstream has: no cap, every model, the default group.
	bare := ports.UpstreamRecord{
		Upstream:  pool.Upstream{ID: "primary", Name: "primary", Weight: 1, Enabled: true},
		URL:       "http://127.0.0.1:9100",
		SealedKey: "v1:0a1b2c3d:x",
		CreatedAt: at,
	}
	mustUpstream(t, s, full)
	mustUpstream(t, s, bare)

	got, err := s.GetUpstream(ctx, "up_full")
	must(t, err, "get full")
	wantUpstream(t, got, full, "full upstream")
	got, err = s.GetUpstream(ctx, "primary")
	must(t, err, "get bare")
	want := bare
	want.UpdatedAt = bare.CreatedAt // a zero UpdatedAt is CreatedAt
	wantUpstream(t, got, want, "bare upstream")
	if got.Models != nil || got.MaxConcurrency != 0 || got.Group != "" || got.KeyLast4 != "" || got.DisabledReason != "" {
		t.Fatalf("bare upstream grew fields: %+v", got)
	}

	// By priority, then name.
	mustUpstream(t, s, newUpstream("up_a", "aardvark", 1, at))
	mustUpstream(t, s, newUpstream("up_z", "zebra", 0, at))
	list, err = s.ListUpstreams(ctx)
	must(t, err, "list")
	if ids := upstreamIDs(list); !reflect.DeepEqual(ids, []string{"primary", "up_z", "up_a", "up_full"}) {
		t.Fatalf("list order = %v, want priority then name", ids)
	}
	wantUpstream(t, list[3], full, "listed full upstream")

	for _, id := range []string{"ghost", "", "bad\x00", "bad\xff"} {
		_, err := s.GetUpstream(ctx, id)
		wantKind(t, err, domain.KindNotFound, fmt.Sprintf("get %q", id))
	}
}

func testUpstreamConflicts(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	u := mustUpstream(t, s, newUpstream("up_1", "one", 0, base))

	sameID := newUpstream("up_1", "another name", 0, base)
	err := s.CreateUpstream(ctx, sameID)
	wantKind(t, err, domain.KindConflict, "duplicate id")
	if !isErr(err, domain.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
	}
	wantKind(t, s.CreateUpstream(ctx, newUpstream("up_2", "one", 0, base)), domain.KindConflict, "duplicate name")

	// A rename onto another's name is refused too.
	mustUpstream(t, s, newUpstream("up_3", "three", 0, base))
	taken := newUpstream("up_3", "one", 0, base)
	taken.UpdatedAt = base.Add(time.Second)
	wantKind(t, s.UpdateUpstream(ctx, taken, base), domain.KindConflict, "rename onto a taken name")

	list, err := s.ListUpstreams(ctx)
	must(t, err, "list")
	if len(list) != 2 {
		t.Fatalf("after refused writes: %v, want up_1 and up_3", upstreamIDs(list))
	}
	got, err := s.GetUpstream(ctx, "up_1")
	must(t, err, "get")
	wantUpstream(t, got, u, "after refused writes")
}

func testUpstreamInvalid(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	for name, change := range map[string]func(*ports.UpstreamRecord){
		"empty id":        func(u *ports.UpstreamRecord) { u.ID = "" },
		"id with NUL":     func(u *ports.UpstreamRecord) { u.ID = "up\x00" },
		"name not UTF-8":  func(u *ports.UpstreamRecord) { u.Name = "n\xff" },
		"model with NUL":  func(u *ports.UpstreamRecord) { u.Models = []string{"claude\x00"} },
		"reason not UTF8": func(u *ports.UpstreamRecord) { u.DisabledReason = "\xc3" },
		"weight 0":        func(u *ports.UpstreamRecord) { u.Weight = 0 },
		"priority < 0":    func(u *ports.UpstreamRecord) { u.Priority = -1 },
		"weight too big":  func(u *ports.UpstreamRecord) { u.Weight = 1 << 40 },
		"negative cap":    func(u *ports.UpstreamRecord) { u.MaxConcurrency = -1 },
	} {
		u := newUpstream("up_bad", "bad", 0, base)
		change(&u)
		wantKind(t, s.CreateUpstream(ctx, u), domain.KindInvalid, "create: "+name)
		wantKind(t, s.SeedUpstreams(ctx, []ports.UpstreamRecord{u}), domain.KindInvalid, "seed: "+name)
	}
	good := mustUpstream(t, s, newUpstream("up_good", "good", 0, base))
	bad := good
	bad.Weight = 0
	bad.UpdatedAt = base.Add(time.Second)
	wantKind(t, s.UpdateUpstream(ctx, bad, good.UpdatedAt), domain.KindInvalid, "update to weight 0")
	list, err := s.ListUpstreams(ctx)
	must(t, err, "list")
	if len(list) != 1 || list[0].Weight != good.Weight {
		t.Fatalf("after refused writes: %+v", list)
	}
}

func testUpstreamUpdate(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	u := mustUpstream(t, s, newUpstream("up_1", "before", 0, base))
	other := mustUpstream(t, s, newUpstream("up_2", "other", 0, base))

	// Every mutable field changes; the id and created_at cannot.
	next := ports.UpstreamRecord{
		Upstream: pool.Upstream{
			ID: u.ID, Name: "after", Priority: 2, Weight: 1_000_000, MaxConcurrency: 0,
			Models: nil, Group: "", Enabled: false,
		},
		URL:            "https://example.test/anthropic",
		SealedKey:      "v1:ffffffff:resealed",
		KeyLast4:       "9876",
		DisabledReason: "disabled by admin",
		CreatedAt:      base.Add(-time.Hour),
		UpdatedAt:      base.Add(time.Hour),
	}
	must(t, s.UpdateUpstream(ctx, next, u.UpdatedAt), "update")
	got, err := s.GetUpstream(ctx, u.ID)
	must(t, err, "get updated")
	want := next
	want.CreatedAt = u.CreatedAt
	wantUpstream(t, got, want, "updated upstream")
	got, err = s.GetUpstream(ctx, other.ID)
	must(t, err, "get other")
	wantUpstream(t, got, other, "the other upstream")

	// A writer that read before the update is refused: stale while the
	// upstream exists, not found once it is gone.
	stale := u
	stale.Name = "lost update"
	stale.UpdatedAt = base.Add(2 * time.Hour)
	err = s.UpdateUpstream(ctx, stale, u.UpdatedAt)
	if !errors.Is(err, ports.ErrStale) {
		t.Fatalf("stale update: err = %v, want ports.ErrStale", err)
	}
	wantKind(t, err, domain.KindConflict, "stale update")
	got, err = s.GetUpstream(ctx, u.ID)
	must(t, err, "get after stale update")
	wantUpstream(t, got, want, "after a stale update")

	ghost := newUpstream("ghost", "ghost", 0, base)
	wantKind(t, s.UpdateUpstream(ctx, ghost, base), domain.KindNotFound, "update missing")
}

func testUpstreamUpdateConcurrent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	u := mustUpstream(t, s, newUpstream("up_1", "racy", 0, base))
	// Writers that all read the same row: exactly one wins.
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			w := u
			w.Weight = i + 1
			w.UpdatedAt = base.Add(time.Duration(i+1) * time.Second)
			errs[i] = s.UpdateUpstream(ctx, w, u.UpdatedAt)
		})
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Fatalf("writers %d and %d both won", won, i)
			}
			won = i
		case !errors.Is(err, ports.ErrStale):
			t.Fatalf("writer %d: %v, want ErrStale", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer won")
	}
	got, err := s.GetUpstream(ctx, u.ID)
	must(t, err, "get")
	if got.Weight != won+1 {
		t.Fatalf("weight = %d, want the winner's %d", got.Weight, won+1)
	}
}

func testUpstreamDelete(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustUpstream(t, s, newUpstream("up_1", "one", 0, base))
	keep := mustUpstream(t, s, newUpstream("up_2", "two", 0, base))
	must(t, s.DeleteUpstream(ctx, "up_1"), "delete")
	_, err := s.GetUpstream(ctx, "up_1")
	wantKind(t, err, domain.KindNotFound, "get deleted")
	for _, id := range []string{"up_1", "ghost", "x\x00"} {
		wantKind(t, s.DeleteUpstream(ctx, id), domain.KindNotFound, "delete "+id)
	}
	list, err := s.ListUpstreams(ctx)
	must(t, err, "list")
	if len(list) != 1 {
		t.Fatalf("after delete: %v", upstreamIDs(list))
	}
	wantUpstream(t, list[0], keep, "the one kept")
	// The name is free again.
	mustUpstream(t, s, newUpstream("up_3", "one", 0, base))
}

func testUpstreamSeed(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	primary := newUpstream("primary", "primary", 0, base)
	fallback := newUpstream("backup", "backup", 1, base)
	dupName := newUpstream("other-id", "primary", 2, base) // the first of a name stays
	must(t, s.SeedUpstreams(ctx, []ports.UpstreamRecord{primary, fallback, dupName}), "seed empty")
	list, err := s.ListUpstreams(ctx)
	must(t, err, "list")
	if ids := upstreamIDs(list); !reflect.DeepEqual(ids, []string{"primary", "backup"}) {
		t.Fatalf("seeded %v, want primary, backup", ids)
	}
	wantUpstream(t, list[0], primary, "seeded primary")

	// The database is authoritative after the first start: an operator's
	// change survives, and a second seed adds nothing, even concurrently.
	must(t, s.DeleteUpstream(ctx, "backup"), "operator deletes backup")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.SeedUpstreams(ctx, []ports.UpstreamRecord{primary, fallback, newUpstream(fmt.Sprintf("new-%d", i), fmt.Sprintf("new %d", i), 0, base)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		must(t, err, fmt.Sprintf("seed again %d", i))
	}
	list, err = s.ListUpstreams(ctx)
	must(t, err, "list after reseed")
	if ids := upstreamIDs(list); !reflect.DeepEqual(ids, []string{"primary"}) {
		t.Fatalf("after reseed: %v, want only primary", ids)
	}

	// Replicas starting together on an empty table seed it once.
	must(t, s.DeleteUpstream(ctx, "primary"), "empty the table")
	for i := range errs {
		wg.Go(func() {
			errs[i] = s.SeedUpstreams(ctx, []ports.UpstreamRecord{primary, fallback})
		})
	}
	wg.Wait()
	for i, err := range errs {
		must(t, err, fmt.Sprintf("concurrent seed %d", i))
	}
	list, err = s.ListUpstreams(ctx)
	must(t, err, "list after concurrent seeds")
	if ids := upstreamIDs(list); !reflect.DeepEqual(ids, []string{"primary", "backup"}) {
		t.Fatalf("after concurrent seeds: %v", ids)
	}
}
