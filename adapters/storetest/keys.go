package storetest

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

func testPing(t *testing.T, s ports.Store) {
	must(t, s.Ping(ctxT(t)), "ping")
}

func testKeyRoundTrip(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")

	// Nanoseconds and a non-UTC zone must come back as UTC microseconds.
	at := time.Date(2025, 3, 10, 14, 15, 16, 123456789, time.FixedZone("CET", 3600))
	k := newKey("full", at)
	k.TokensUsed = 42
	last := at.Add(time.Minute)
	k.LastUsedAt = &last
	mustKey(t, s, k)

	got, err := s.GetKey(ctx, k.ID)
	must(t, err, "get key")
	equalKey(t, got, k, "GetKey")
	if got.CreatedAt.Location() != time.UTC {
		t.Fatalf("CreatedAt location = %v, want UTC", got.CreatedAt.Location())
	}

	byHash, err := s.GetKeyByHash(ctx, k.KeyHash)
	must(t, err, "get key by hash")
	equalKey(t, byHash, k, "GetKeyByHash")

	// The minimal key: unlimited, no tier, no expiry, no allow-lists.
	m := domain.APIKey{ID: uuid.New(), Name: "minimal", KeyHash: "hash-minimal", KeyPrefix: "sk-proxy-m…", IsActive: false, CreatedAt: at, UpdatedAt: at}
	mustKey(t, s, m)
	gotM, err := s.GetKey(ctx, m.ID)
	must(t, err, "get minimal key")
	equalKey(t, gotM, m, "minimal key")
	if gotM.TokenLimit != nil || gotM.ExpiresAt != nil || gotM.AllowedIPs != nil || gotM.AllowedDomains != nil ||
		gotM.AllowedModels != nil || gotM.Budgets != nil {
		t.Fatalf("minimal key grew optional fields: %s", fmtKey(gotM))
	}
}

func testKeyCreateConflicts(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k := mustKey(t, s, newKey("a", base))

	sameID := newKey("b", base)
	sameID.ID = k.ID
	wantKind(t, s.CreateKey(ctx, sameID), domain.KindConflict, "duplicate id")

	sameHash := newKey("c", base)
	sameHash.KeyHash = k.KeyHash
	err := s.CreateKey(ctx, sameHash)
	wantKind(t, err, domain.KindConflict, "duplicate hash")
	if !isErr(err, domain.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
	}

	list, err := s.ListKeys(ctx, domain.KeyFilter{})
	must(t, err, "list")
	if len(list) != 1 {
		t.Fatalf("after refused creates: %d keys, want 1", len(list))
	}
}

func testKeyUnknownTier(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	k := newKey("orphan", base)
	k.RateLimitTier = "no-such-tier"
	wantKind(t, s.CreateKey(ctx, k), domain.KindInvalid, "create with unknown tier")

	mustTier(t, s, "basic")
	k = mustKey(t, s, newKey("ok", base))
	k.RateLimitTier = "no-such-tier"
	wantKind(t, s.UpdateKey(ctx, k, k.UpdatedAt), domain.KindInvalid, "update to unknown tier")
}

func testKeyNotFound(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	_, err := s.GetKey(ctx, uuid.New())
	wantKind(t, err, domain.KindNotFound, "GetKey missing")
	if !isErr(err, domain.ErrNotFound) {
		t.Fatalf("errors.Is(err, ErrNotFound) = false for %v", err)
	}
	_, err = s.GetKeyByHash(ctx, "nope")
	wantKind(t, err, domain.KindNotFound, "GetKeyByHash missing")
	wantKind(t, s.UpdateKey(ctx, newKey("ghost", base), base), domain.KindNotFound, "UpdateKey missing")
	wantKind(t, s.DeleteKey(ctx, uuid.New(), base), domain.KindNotFound, "DeleteKey missing")
}

func testKeyUpdate(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	mustTier(t, s, "premium")
	k := newKey("before", base)
	k.TokensUsed = 7
	mustKey(t, s, k)
	other := mustKey(t, s, newKey("other", base))

	u := k
	u.Name = "after"
	u.Description = "changed"
	u.KeyHash = "hash-rotated"
	u.KeyPrefix = "sk-proxy-ROT…"
	u.TokenLimit = nil
	u.RateLimitTier = "premium"
	u.IsActive = false
	u.ExpiresAt = nil
	u.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("192.168.1.7/32")}
	u.AllowedDomains = nil
	u.AllowedModels = []string{"claude-opus-*"}
	u.Budgets = []domain.KeyBudget{{Window: "month", Limit: 1, TimeZone: "America/New_York"}, {Window: "week", Limit: 7_000_000_000}}
	u.UpstreamGroup = "team-b"
	u.UpdatedAt = base.Add(time.Hour)
	// Fields UpdateKey must not touch.
	u.TokensUsed = 999
	u.CreatedAt = base.Add(-time.Hour)
	must(t, s.UpdateKey(ctx, u, k.UpdatedAt), "update")

	got, err := s.GetKey(ctx, k.ID)
	must(t, err, "get updated")
	want := u
	want.TokensUsed = k.TokensUsed
	want.CreatedAt = k.CreatedAt
	equalKey(t, got, want, "updated key")

	if _, err := s.GetKeyByHash(ctx, k.KeyHash); !isErr(err, domain.ErrNotFound) {
		t.Fatalf("old hash still resolves after rotation: %v", err)
	}
	listed, err := s.ListKeys(ctx, domain.KeyFilter{NameContains: "after"})
	must(t, err, "list updated")
	if len(listed) != 1 {
		t.Fatalf("list updated: %d keys", len(listed))
	}
	equalKey(t, listed[0], want, "listed updated key")

	// Clearing the model list and the budgets stores none.
	cleared := got
	cleared.AllowedModels, cleared.Budgets = nil, []domain.KeyBudget{}
	cleared.UpdatedAt = got.UpdatedAt.Add(time.Second)
	must(t, s.UpdateKey(ctx, cleared, got.UpdatedAt), "clear models and budgets")
	got, err = s.GetKey(ctx, k.ID)
	must(t, err, "get cleared")
	equalKey(t, got, cleared, "cleared key")
	if got.AllowedModels != nil || got.Budgets != nil {
		t.Fatalf("cleared key reads back models %#v, budgets %#v; want nil", got.AllowedModels, got.Budgets)
	}

	dup := got
	dup.KeyHash = other.KeyHash
	err = s.UpdateKey(ctx, dup, got.UpdatedAt)
	wantKind(t, err, domain.KindConflict, "update to another key's hash")
	if isErr(err, ports.ErrStale) {
		t.Fatalf("a duplicate hash was reported as a stale write: %v", err)
	}

	must(t, s.DeleteKey(ctx, k.ID, base.Add(2*time.Hour)), "delete")
	err = s.UpdateKey(ctx, got, got.UpdatedAt)
	wantKind(t, err, domain.KindNotFound, "update deleted key")
	if isErr(err, ports.ErrStale) {
		t.Fatalf("an update of a deleted key was reported as stale: %v", err)
	}
}

// testKeyUpdateStale checks the optimistic-concurrency contract: a write
// whose prevUpdatedAt no longer matches changes nothing and is ErrStale.
func testKeyUpdateStale(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	// Nanoseconds: the store compares at microsecond precision.
	at := base.Add(123456789 * time.Nanosecond)
	k := mustKey(t, s, newKey("original", at))

	first := k
	first.Name = "first"
	first.UpdatedAt = at.Add(time.Second)
	must(t, s.UpdateKey(ctx, first, k.UpdatedAt), "update with the fresh prev")

	// A writer that read the key before the first update loses.
	second := k
	second.IsActive = false
	second.UpdatedAt = at.Add(2 * time.Second)
	err := s.UpdateKey(ctx, second, k.UpdatedAt)
	wantKind(t, err, domain.KindConflict, "update with a stale prev")
	if !isErr(err, ports.ErrStale) {
		t.Fatalf("errors.Is(err, ports.ErrStale) = false for %v", err)
	}
	got, err := s.GetKey(ctx, k.ID)
	must(t, err, "get after stale write")
	equalKey(t, got, first, "key after a refused stale write")

	// Re-read, re-apply: it works, with the prev exactly as the store returned it.
	got.IsActive = false
	prev := got.UpdatedAt
	got.UpdatedAt = prev.Add(time.Microsecond)
	must(t, s.UpdateKey(ctx, got, prev), "update with the re-read prev")
	again, err := s.GetKey(ctx, k.ID)
	must(t, err, "get after retry")
	equalKey(t, again, got, "key after the retried write")

	// A stale prev on a deleted key is not found, not stale.
	must(t, s.DeleteKey(ctx, k.ID, at.Add(time.Hour)), "delete")
	wantKind(t, s.UpdateKey(ctx, second, k.UpdatedAt), domain.KindNotFound, "stale update of a deleted key")
}

// testKeyUpdateConcurrent runs read-modify-write loops (retrying on
// ErrStale) in parallel: none may undo another. Each writer appends a mark
// to the description, and one disables the key; at the end every mark is
// there and the key is disabled.
func testKeyUpdateConcurrent(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k := newKey("contended", base)
	k.Description = ""
	mustKey(t, s, k)

	const writers = 8
	update := func(change func(*domain.APIKey)) error {
		for attempt := 0; ; attempt++ {
			if attempt > 1000 {
				return fmt.Errorf("no progress after %d attempts", attempt)
			}
			cur, err := s.GetKey(ctx, k.ID)
			if err != nil {
				return err
			}
			prev := cur.UpdatedAt
			change(&cur)
			cur.UpdatedAt = prev.Add(time.Microsecond)
			err = s.UpdateKey(ctx, cur, prev)
			if isErr(err, ports.ErrStale) {
				time.Sleep(time.Duration(attempt%5) * 100 * time.Microsecond)
				continue
			}
			return err
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	for i := range writers {
		wg.Go(func() {
			errs <- update(func(c *domain.APIKey) {
				c.Name = fmt.Sprintf("patched-%d", i)
				c.Description += fmt.Sprintf("[%d]", i)
			})
		})
	}
	wg.Go(func() { errs <- update(func(c *domain.APIKey) { c.IsActive = false }) })
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, err, "concurrent update")
	}
	got, err := s.GetKey(ctx, k.ID)
	must(t, err, "get after concurrent updates")
	if got.IsActive {
		t.Fatal("a concurrent update undid the disable")
	}
	for i := range writers {
		if !strings.Contains(got.Description, fmt.Sprintf("[%d]", i)) {
			t.Fatalf("update %d was lost: description %q", i, got.Description)
		}
	}
}

func testKeySoftDelete(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	k := mustKey(t, s, newKey("doomed", base))
	keep := mustKey(t, s, newKey("kept", base.Add(time.Second)))

	at := base.Add(time.Hour)
	must(t, s.DeleteKey(ctx, k.ID, at), "delete")

	_, err := s.GetKey(ctx, k.ID)
	wantKind(t, err, domain.KindNotFound, "GetKey after delete")

	got, err := s.GetKeyByHash(ctx, k.KeyHash)
	must(t, err, "GetKeyByHash after delete")
	if got.DeletedAt == nil || !got.DeletedAt.Equal(at) {
		t.Fatalf("DeletedAt = %v, want %v", got.DeletedAt, at)
	}
	if ok, why := got.Usable(at); ok || why != "deleted" {
		t.Fatalf("deleted key usable=%v reason=%q", ok, why)
	}

	list, err := s.ListKeys(ctx, domain.KeyFilter{})
	must(t, err, "list")
	if !slices.Equal(ids(list), []uuid.UUID{keep.ID}) {
		t.Fatalf("list after delete = %v, want only %s", ids(list), keep.ID)
	}
	wantKind(t, s.DeleteKey(ctx, k.ID, at), domain.KindNotFound, "delete twice")
}

func testKeyListFilters(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	mk := func(name string, i int, active bool) domain.APIKey {
		k := newKey(name, base.Add(time.Duration(i)*time.Minute))
		k.IsActive = active
		return mustKey(t, s, k)
	}
	a := mk("Team-Alpha", 1, true)
	b := mk("beta", 2, false)
	c := mk("my-ALPHA-2", 3, false)
	d := mk("100%_real", 4, true)

	cases := []struct {
		name string
		f    domain.KeyFilter
		want []domain.APIKey
	}{
		{"all newest first", domain.KeyFilter{}, []domain.APIKey{d, c, b, a}},
		{"active", domain.KeyFilter{Active: ptr(true)}, []domain.APIKey{d, a}},
		{"inactive", domain.KeyFilter{Active: ptr(false)}, []domain.APIKey{c, b}},
		{"name case-insensitive", domain.KeyFilter{NameContains: "alpha"}, []domain.APIKey{c, a}},
		{"name upper", domain.KeyFilter{NameContains: "ALPHA"}, []domain.APIKey{c, a}},
		{"name and active", domain.KeyFilter{NameContains: "Alpha", Active: ptr(false)}, []domain.APIKey{c}},
		{"percent is literal", domain.KeyFilter{NameContains: "%"}, []domain.APIKey{d}},
		{"underscore is literal", domain.KeyFilter{NameContains: "_"}, []domain.APIKey{d}},
		{"no match", domain.KeyFilter{NameContains: "gamma"}, nil},
		{"limit", domain.KeyFilter{Limit: 2}, []domain.APIKey{d, c}},
	}
	for _, tc := range cases {
		got, err := s.ListKeys(ctx, tc.f)
		must(t, err, tc.name)
		if !slices.Equal(ids(got), ids(tc.want)) {
			t.Errorf("%s: got %v, want %v", tc.name, names(got), names(tc.want))
		}
	}
	got, err := s.ListKeys(ctx, domain.KeyFilter{NameContains: "beta"})
	must(t, err, "list beta")
	if len(got) != 1 {
		t.Fatalf("beta: %d keys", len(got))
	}
	equalKey(t, got[0], b, "listed key")
}

func testKeyListPagination(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	mustTier(t, s, "basic")
	var want []domain.APIKey
	for i := range 11 {
		// Pairs share a created_at, so the id must break ties.
		want = append(want, mustKey(t, s, newKey(fmt.Sprintf("k%02d", i), base.Add(time.Duration(i/2)*time.Second))))
	}
	slices.SortFunc(want, func(x, y domain.APIKey) int {
		if c := y.CreatedAt.Compare(x.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(y.ID.String(), x.ID.String())
	})

	var got []domain.APIKey
	f := domain.KeyFilter{Limit: 3}
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatal("pagination does not terminate")
		}
		list, err := s.ListKeys(ctx, f)
		must(t, err, "list page")
		if len(list) > 3 {
			t.Fatalf("page of %d, limit 3", len(list))
		}
		got = append(got, list...)
		if len(list) < 3 {
			break
		}
		last := list[len(list)-1]
		f.After = &domain.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if !slices.Equal(ids(got), ids(want)) {
		t.Fatalf("paged listing:\n got %v\nwant %v", names(got), names(want))
	}
}

func names(keys []domain.APIKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.Name
	}
	return out
}

func ptr[T any](v T) *T { return &v }
