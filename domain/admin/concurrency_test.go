package admin_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/ports"
)

// versionedStore is a fakeStore over one key that honours UpdateKey's
// optimistic-concurrency contract, and can let another writer in just
// before the service's write (interfere).
type versionedStore struct {
	mu        sync.Mutex
	key       domain.APIKey
	writes    int
	stale     int
	prevs     []time.Time
	interfere func(*domain.APIKey) // runs once, before the first write
}

func (v *versionedStore) fake() *fakeStore {
	return &fakeStore{
		getKey: func(context.Context, uuid.UUID) (domain.APIKey, error) {
			v.mu.Lock()
			defer v.mu.Unlock()
			return v.key, nil
		},
		getTier: func(_ context.Context, n string) (domain.Tier, error) { return domain.Tier{Name: n}, nil },
		updateKey: func(_ context.Context, k domain.APIKey, prev time.Time) error {
			v.mu.Lock()
			defer v.mu.Unlock()
			v.prevs = append(v.prevs, prev)
			if f := v.interfere; f != nil {
				v.interfere = nil
				f(&v.key)
				v.key.UpdatedAt = v.key.UpdatedAt.Add(time.Microsecond)
			}
			if !v.key.UpdatedAt.Equal(prev) {
				v.stale++
				return ports.ErrStale
			}
			v.writes++
			v.key = k
			return nil
		},
	}
}

func TestUpdateKeyRetriesOnStaleWithoutUndoingADisable(t *testing.T) {
	v := &versionedStore{key: domain.APIKey{ID: uuid.New(), Name: "old", IsActive: true, UpdatedAt: testNow, RateLimitTier: "basic"}}
	// A disable commits between the PATCH's read and its write.
	v.interfere = func(k *domain.APIKey) { k.IsActive = false }
	cache := &fakeCache{}
	s := newService(t, v.fake(), cache, nil)
	name := "new"
	got, err := s.UpdateKey(context.Background(), admin.UpdateKeyInput{ID: v.key.ID, Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	if v.stale != 1 || v.writes != 1 {
		t.Fatalf("stale %d, writes %d; want one of each", v.stale, v.writes)
	}
	if got.IsActive || v.key.IsActive || v.key.Name != "new" {
		t.Errorf("after the retry: returned %+v, stored %+v; want disabled and renamed", got, v.key)
	}
	// The clock stands still, yet each write moves updated_at on.
	if !v.prevs[1].After(v.prevs[0]) || !v.key.UpdatedAt.After(v.prevs[1]) {
		t.Errorf("prevs %v, final updated_at %v: not strictly increasing", v.prevs, v.key.UpdatedAt)
	}
	if len(cache.invalidated) != 1 {
		t.Errorf("invalidated %d times, want once (after the write that landed)", len(cache.invalidated))
	}
}

func TestRotateKeyReturnsTheStoredSecret(t *testing.T) {
	v := &versionedStore{key: domain.APIKey{ID: uuid.New(), Name: "k", KeyHash: "old", IsActive: true, UpdatedAt: testNow}}
	v.interfere = func(k *domain.APIKey) { k.Name = "renamed meanwhile" }
	s := newService(t, v.fake(), nil, nil)
	ik, err := s.RotateKey(context.Background(), v.key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if v.stale != 1 || v.writes != 1 {
		t.Fatalf("stale %d, writes %d; want one of each", v.stale, v.writes)
	}
	if v.key.KeyHash != domain.NewKeyHasher([]byte("k")).Hash(ik.Secret) || ik.Key.KeyHash != v.key.KeyHash {
		t.Error("the returned secret is not the one stored")
	}
	if v.key.Name != "renamed meanwhile" {
		t.Errorf("the rotation undid a concurrent rename: %q", v.key.Name)
	}
}

func TestEnableGivesUpAfterRepeatedStaleWrites(t *testing.T) {
	var attempts int
	key := domain.APIKey{ID: uuid.New(), UpdatedAt: testNow}
	cache := &fakeCache{}
	st := &fakeStore{
		getKey: func(context.Context, uuid.UUID) (domain.APIKey, error) { return key, nil },
		updateKey: func(context.Context, domain.APIKey, time.Time) error {
			attempts++
			return ports.ErrStale
		},
	}
	s := newService(t, st, cache, nil)
	_, err := s.EnableKey(context.Background(), key.ID)
	if !errors.Is(err, ports.ErrStale) || !errors.Is(err, domain.ErrConflict) {
		t.Fatalf("err = %v, want ErrStale (a conflict)", err)
	}
	if attempts < 2 || attempts > 10 {
		t.Errorf("%d attempts", attempts)
	}
	if len(cache.invalidated) != 0 {
		t.Errorf("invalidated after no write landed")
	}
}

func TestDisableKeyDeletedMeanwhile(t *testing.T) {
	key := domain.APIKey{ID: uuid.New(), IsActive: true, UpdatedAt: testNow}
	st := &fakeStore{
		getKey: func(context.Context, uuid.UUID) (domain.APIKey, error) { return key, nil },
		updateKey: func(context.Context, domain.APIKey, time.Time) error {
			return &domain.Error{Kind: domain.KindNotFound, Message: "api key not found"}
		},
	}
	s := newService(t, st, nil, nil)
	if _, err := s.DisableKey(context.Background(), key.ID); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("err = %v, want not found", err)
	}
}

func TestHostileTextIsInvalid(t *testing.T) {
	st := &fakeStore{getTier: func(_ context.Context, n string) (domain.Tier, error) { return domain.Tier{Name: n}, nil }}
	s := newService(t, st, nil, nil)
	ctx := context.Background()
	for _, in := range []admin.IssueKeyInput{
		{Name: "a\x00b"}, {Name: "a\xffb"}, {Name: "n", Description: "d\x00"}, {Name: "n", Description: "\xfe"},
	} {
		if _, err := s.IssueKey(ctx, in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("issue %q/%q: %v, want invalid", in.Name, in.Description, err)
		}
	}
	nul := "x\x00"
	if _, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: uuid.New(), Description: &nul}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("patch with NUL: %v", err)
	}
	for _, name := range []string{"\x00", "\xff", "ab\xc3"} {
		if _, err := s.ListKeys(ctx, admin.ListKeysInput{Name: name}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("list name %q: %v, want invalid", name, err)
		}
	}
	cursor := func(id string) string {
		return base64.RawURLEncoding.EncodeToString([]byte("1741600000000000000|" + id))
	}
	for _, id := range []string{"req\x00x", "req\xffx", "req x", "req/x", strings.Repeat("r", 129)} {
		if err := (admin.LogsInput{Cursor: cursor(id)}).Validate(); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("log cursor with id %q: %v, want invalid", id, err)
		}
		if err := (admin.KeyLogsInput{KeyID: uuid.New(), Cursor: cursor(id)}).Validate(); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("key log cursor with id %q: %v, want invalid", id, err)
		}
	}
	if err := (admin.LogsInput{Cursor: cursor("req_AbC-1.2")}).Validate(); err != nil {
		t.Errorf("a well-formed cursor was refused: %v", err)
	}
}

func TestSeedTiersNeedsTheDefaultTier(t *testing.T) {
	stored := map[string]domain.Tier{}
	st := &fakeStore{
		seedTiers: func(_ context.Context, ts []domain.Tier) error {
			if len(stored) == 0 {
				for _, t := range ts {
					stored[t.Name] = t
				}
			}
			return nil
		},
		getTier: func(_ context.Context, n string) (domain.Tier, error) {
			if t, ok := stored[n]; ok {
				return t, nil
			}
			return domain.Tier{}, domain.ErrNotFound
		},
		listTiers: func(context.Context) ([]domain.Tier, error) {
			var out []domain.Tier
			for _, t := range stored {
				out = append(out, t)
			}
			return out, nil
		},
	}
	s := newService(t, st, nil, nil)
	err := s.SeedTiers(context.Background(), []domain.Tier{{Name: "gold", Requests: 1, Period: time.Second}})
	if err == nil || !strings.Contains(err.Error(), "rate_limit.default_tier") || !strings.Contains(err.Error(), `"basic"`) {
		t.Fatalf("seeding without the default tier: %v", err)
	}
	stored = map[string]domain.Tier{}
	if err := s.SeedTiers(context.Background(), nil); err != nil {
		t.Fatalf("seeding the default tiers: %v", err)
	}
}

func TestDeleteLastTier(t *testing.T) {
	st := &fakeStore{
		getTier:   func(_ context.Context, n string) (domain.Tier, error) { return domain.Tier{Name: n}, nil },
		listTiers: func(context.Context) ([]domain.Tier, error) { return []domain.Tier{{Name: "gold"}}, nil },
	}
	s := newService(t, st, nil, nil)
	err := s.DeleteTier(context.Background(), "gold")
	if de := domain.AsError(err); de == nil || de.Kind != domain.KindConflict || !strings.Contains(de.Message, "last") {
		t.Errorf("deleting the last tier: %v", err)
	}
}

func TestPutTierBounds(t *testing.T) {
	s := newService(t, &fakeStore{}, nil, nil)
	huge := 1 << 32
	for _, in := range []admin.PutTierInput{
		{Name: "gold", Requests: 4294967297, PeriodSeconds: 60},
		{Name: "gold", Requests: domain.MaxTierRequests + 1, PeriodSeconds: 60},
		{Name: "gold", Requests: 1, PeriodSeconds: 2592001},
		{Name: "gold", Requests: 1, PeriodSeconds: 1 << 62},
		{Name: "gold", Requests: 1, PeriodSeconds: 60, MaxConcurrency: &huge},
	} {
		if _, err := s.PutTier(context.Background(), in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", in, err)
		}
	}
}
