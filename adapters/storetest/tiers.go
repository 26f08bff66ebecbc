package storetest

import (
	"reflect"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

func testTierCRUD(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	list, err := s.ListTiers(ctx)
	must(t, err, "list empty")
	if len(list) != 0 {
		t.Fatalf("fresh store has %d tiers", len(list))
	}
	_, err = s.GetTier(ctx, "basic")
	wantKind(t, err, domain.KindNotFound, "get missing tier")

	tokens, conc := int64(50_000), 4
	full := domain.Tier{Name: "zeta", Requests: 1000, Period: time.Hour, Tokens: &tokens, MaxConcurrency: &conc, CreatedAt: base, UpdatedAt: base}
	bare := domain.Tier{Name: "alpha", Requests: 5, Period: time.Second, CreatedAt: base, UpdatedAt: base}
	must(t, s.UpsertTier(ctx, full), "upsert full")
	must(t, s.UpsertTier(ctx, bare), "upsert bare")

	got, err := s.GetTier(ctx, "zeta")
	must(t, err, "get full")
	if !reflect.DeepEqual(got, full) {
		t.Fatalf("full tier:\n got %+v\nwant %+v", got, full)
	}
	list, err = s.ListTiers(ctx)
	must(t, err, "list")
	if len(list) != 2 || list[0].Name != "alpha" || list[1].Name != "zeta" {
		t.Fatalf("list = %+v, want alpha, zeta", list)
	}
	if !reflect.DeepEqual(list[0], bare) {
		t.Fatalf("bare tier:\n got %+v\nwant %+v", list[0], bare)
	}

	// Replacing keeps created_at and clears fields set to nil.
	repl := domain.Tier{Name: "zeta", Requests: 7, Period: 2 * time.Minute, CreatedAt: base.Add(time.Hour), UpdatedAt: base.Add(time.Hour)}
	must(t, s.UpsertTier(ctx, repl), "replace")
	got, err = s.GetTier(ctx, "zeta")
	must(t, err, "get replaced")
	want := repl
	want.CreatedAt = base
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replaced tier:\n got %+v\nwant %+v", got, want)
	}
}

func testTierDeleteConflict(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	wantKind(t, s.DeleteTier(ctx, "ghost"), domain.KindNotFound, "delete missing tier")

	mustTier(t, s, "basic")
	mustTier(t, s, "spare")
	k := mustKey(t, s, newKey("user", base))

	err := s.DeleteTier(ctx, "basic")
	wantKind(t, err, domain.KindConflict, "delete tier in use")
	if !isErr(err, domain.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) = false for %v", err)
	}
	if _, err := s.GetTier(ctx, "basic"); err != nil {
		t.Fatalf("tier gone after refused delete: %v", err)
	}

	must(t, s.DeleteTier(ctx, "spare"), "delete unused tier")
	_, err = s.GetTier(ctx, "spare")
	wantKind(t, err, domain.KindNotFound, "get deleted tier")

	// Soft-deleted keys do not hold a tier.
	must(t, s.DeleteKey(ctx, k.ID, base.Add(time.Hour)), "delete key")
	must(t, s.DeleteTier(ctx, "basic"), "delete tier used only by a deleted key")
	got, err := s.GetKeyByHash(ctx, k.KeyHash)
	must(t, err, "deleted key still readable")
	if got.DeletedAt == nil {
		t.Fatal("deleted key lost its DeletedAt")
	}
}

func testTierSeed(t *testing.T, s ports.Store) {
	ctx := ctxT(t)
	seed := domain.DefaultTiers()
	must(t, s.SeedTiers(ctx, seed), "seed empty")
	list, err := s.ListTiers(ctx)
	must(t, err, "list")
	if len(list) != len(seed) {
		t.Fatalf("seeded %d tiers, want %d", len(list), len(seed))
	}
	for i := range seed {
		if list[i].Name != seed[i].Name || list[i].Requests != seed[i].Requests || list[i].Period != seed[i].Period {
			t.Fatalf("seeded tier %d = %+v, want %+v", i, list[i], seed[i])
		}
	}

	// The database is authoritative after the first start: an operator's
	// change survives, and a second seed adds nothing.
	must(t, s.DeleteTier(ctx, "premium"), "operator deletes premium")
	must(t, s.SeedTiers(ctx, append(seed, domain.Tier{Name: "gold", Requests: 1, Period: time.Second})), "seed again")
	list, err = s.ListTiers(ctx)
	must(t, err, "list after reseed")
	if len(list) != 1 || list[0].Name != "basic" {
		t.Fatalf("after reseed: %+v, want only basic", list)
	}
}
