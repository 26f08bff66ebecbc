package admin_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"
	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
)

var (
	testNow  = time.Date(2025, 3, 15, 12, 0, 0, 0, time.UTC)
	testHash = func() string {
		h, err := argon2id.CreateHash("pw", &argon2id.Params{Memory: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
		if err != nil {
			panic(err)
		}
		return h
	}()
)

func newService(t *testing.T, st *fakeStore, cache *fakeCache, ledger *fakeLedger) *admin.Service {
	t.Helper()
	d := admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}, Hasher: domain.NewKeyHasher([]byte("k")),
		LoginThrottle: newFakeThrottleStore()}
	if cache != nil {
		d.Cache = cache
	}
	if ledger != nil {
		d.Ledger = ledger
	}
	s, err := admin.NewService(d, admin.Config{AdminUsername: "admin", AdminPasswordHash: testHash, MaxPasswordChecks: 4,
		LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewServiceRejectsBadHash(t *testing.T) {
	st := &fakeStore{}
	_, err := admin.NewService(admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}},
		admin.Config{AdminUsername: "admin", AdminPasswordHash: "plaintext", MaxPasswordChecks: 4})
	if err == nil {
		t.Fatal("a non-argon2id hash was accepted")
	}
}

func TestLogin(t *testing.T) {
	s := newService(t, &fakeStore{}, nil, nil)
	if sub, err := s.Login(context.Background(), admin.LoginInput{Username: "admin", Password: "pw"}); err != nil || sub != "admin" {
		t.Fatalf("good login: %q %v", sub, err)
	}
	for _, in := range []admin.LoginInput{{Username: "admin", Password: "nope"}, {Username: "root", Password: "pw"}, {}, {Username: "admin", Password: strings.Repeat("p", 5000)}} {
		if _, err := s.Login(context.Background(), in); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Errorf("login %q: %v, want unauthenticated", in.Username, err)
		}
	}
}

func TestParseDomainPatterns(t *testing.T) {
	good := map[string]string{
		"app.example.com": "app.example.com", "*.Example.COM": "*.example.com", " localhost ": "localhost",
		"127.0.0.1": "127.0.0.1", "a-b.c": "a-b.c",
	}
	for in, want := range good {
		got, err := admin.ParseDomainPatterns([]string{in})
		if err != nil || len(got) != 1 || got[0] != want {
			t.Errorf("%q: %v %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "*.", "*", "http://x.com", "x.com/path", "x.com:8080", "a..com", ".x.com", "x.com.",
		"a.*.com", "**.x.com", "-x.com", "x_y.com", "x.com?q", "[::1]", strings.Repeat("a", 64) + ".com"} {
		if _, err := admin.ParseDomainPatterns([]string{in}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%q accepted: %v", in, err)
		}
	}
	got, _ := admin.ParseDomainPatterns([]string{"a.com", "A.com"})
	if len(got) != 1 {
		t.Errorf("duplicates kept: %v", got)
	}
}

func TestIssueKey(t *testing.T) {
	var created domain.APIKey
	st := &fakeStore{
		getTier: func(_ context.Context, name string) (domain.Tier, error) {
			if name == "basic" {
				return domain.Tier{Name: name}, nil
			}
			return domain.Tier{}, domain.ErrNotFound
		},
		createKey: func(_ context.Context, k domain.APIKey) error { created = k; return nil },
	}
	s := newService(t, st, nil, nil)
	ik, err := s.IssueKey(context.Background(), admin.IssueKeyInput{Name: "n", AllowedIPs: []string{"10.1.2.3/8"}})
	if err != nil {
		t.Fatal(err)
	}
	if created.KeyHash != domain.NewKeyHasher([]byte("k")).Hash(ik.Secret) || strings.Contains(created.KeyHash, ik.Secret) {
		t.Error("the stored hash is not the HMAC of the secret")
	}
	if created.RateLimitTier != "basic" || !created.IsActive || created.AllowedIPs[0].String() != "10.0.0.0/8" {
		t.Errorf("created %+v", created)
	}
	neg := int64(-1)
	past := testNow.Add(-time.Second)
	bad := []admin.IssueKeyInput{
		{Name: ""}, {Name: strings.Repeat("x", 201)}, {Name: "n", Description: strings.Repeat("d", 2001)},
		{Name: "n", TokenLimit: &neg}, {Name: "n", RateLimitTier: "gold"}, {Name: "n", AllowedIPs: []string{"1.2.3.4/40"}},
		{Name: "n", AllowedDomains: []string{"*."}}, {Name: "n", ExpiresAt: &past},
	}
	for _, in := range bad {
		if _, err := s.IssueKey(context.Background(), in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", in, err)
		}
	}
}

func TestRotateAndDeleteInvalidate(t *testing.T) {
	id := uuid.New()
	key := domain.APIKey{ID: id, Name: "k", KeyHash: "old", IsActive: true, RateLimitTier: "basic"}
	var saved domain.APIKey
	var resetID uuid.UUID
	st := &fakeStore{
		getKey:    func(context.Context, uuid.UUID) (domain.APIKey, error) { return key, nil },
		updateKey: func(_ context.Context, k domain.APIKey, _ time.Time) error { saved = k; return nil },
		deleteKey: func(context.Context, uuid.UUID, time.Time) error { return nil },
	}
	cache := &fakeCache{}
	ledger := &fakeLedger{reset: func(_ context.Context, id uuid.UUID) error { resetID = id; return nil }}
	s := newService(t, st, cache, ledger)
	ik, err := s.RotateKey(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if saved.KeyHash == "old" || saved.KeyHash != domain.NewKeyHasher([]byte("k")).Hash(ik.Secret) || len(cache.invalidated) != 1 {
		t.Errorf("rotate: hash %q, invalidated %v", saved.KeyHash, cache.invalidated)
	}
	if err := s.DeleteKey(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if len(cache.invalidated) != 2 || resetID != id {
		t.Errorf("delete: invalidated %v, ledger reset %v", cache.invalidated, resetID)
	}
	st.getKey = func(context.Context, uuid.UUID) (domain.APIKey, error) { return domain.APIKey{}, domain.ErrNotFound }
	if err := s.DeleteKey(context.Background(), id); !errors.Is(err, domain.ErrNotFound) {
		t.Errorf("delete unknown: %v", err)
	}
}

func TestDeleteTierInUse(t *testing.T) {
	st := &fakeStore{
		getTier: func(_ context.Context, n string) (domain.Tier, error) { return domain.Tier{Name: n}, nil },
		listTiers: func(context.Context) ([]domain.Tier, error) {
			return []domain.Tier{{Name: "basic"}, {Name: "gold"}}, nil
		},
		deleteTier: func(context.Context, string) error { return domain.ErrConflict },
	}
	s := newService(t, st, nil, nil)
	err := s.DeleteTier(context.Background(), "gold")
	if de := domain.AsError(err); de == nil || de.Kind != domain.KindConflict || !strings.Contains(de.Message, "gold") {
		t.Errorf("in use: %v", err)
	}
	if err := s.DeleteTier(context.Background(), "basic"); !errors.Is(err, domain.ErrConflict) {
		t.Errorf("default tier: %v", err)
	}
}

func TestKeyDailyZeroFills(t *testing.T) {
	var q domain.UsageQuery
	st := &fakeStore{usageTotals: func(_ context.Context, uq domain.UsageQuery) ([]domain.UsageTotals, error) {
		q = uq
		return []domain.UsageTotals{{Group: "2025-03-15", Requests: 2, Usage: domain.Usage{InputTokens: 7}}}, nil
	}}
	s := newService(t, st, nil, nil)
	r, err := s.KeyDaily(context.Background(), admin.KeyUsageInput{KeyID: uuid.New()})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Groups) != 30 || r.Groups[0].Group != "2025-02-14" || r.Groups[29].Group != "2025-03-15" || r.Groups[29].Requests != 2 {
		t.Errorf("days: %d, first %s, last %+v", len(r.Groups), r.Groups[0].Group, r.Groups[29])
	}
	if !q.To.Equal(time.Date(2025, 3, 16, 0, 0, 0, 0, time.UTC)) || q.GroupBy != domain.GroupDay || q.KeyID == nil {
		t.Errorf("query %+v", q)
	}
	if r.Totals.Requests != 2 || r.Totals.Usage.Total() != 7 {
		t.Errorf("totals %+v", r.Totals)
	}
	from, to := testNow, testNow.Add(-time.Hour)
	if _, err := s.KeyDaily(context.Background(), admin.KeyUsageInput{KeyID: uuid.New(), From: &from, To: &to}); !errors.Is(err, domain.ErrInvalid) {
		t.Errorf("from > to: %v", err)
	}
}

func TestKeyQuotaUsesLedger(t *testing.T) {
	limit := int64(100)
	key := domain.APIKey{ID: uuid.New(), TokenLimit: &limit, TokensUsed: 20, RateLimitTier: "basic", IsActive: true}
	st := &fakeStore{
		getKey:  func(context.Context, uuid.UUID) (domain.APIKey, error) { return key, nil },
		getTier: func(context.Context, string) (domain.Tier, error) { return domain.DefaultTiers()[0], nil },
	}
	ledger := &fakeLedger{state: func(_ context.Context, _ uuid.UUID, seed int64) (domain.QuotaState, error) {
		return domain.QuotaState{Used: seed + 5, Reserved: 10}, nil
	}}
	s := newService(t, st, nil, ledger)
	q, err := s.KeyQuota(context.Background(), key.ID)
	if err != nil {
		t.Fatal(err)
	}
	if q.TokensUsed != 25 || q.TokensReserved != 10 || *q.TokensRemaining != 65 || *q.UsageRatio != 0.25 ||
		q.Tier.Requests.Limit != 100 || q.Tier.Requests.Remaining != 100 {
		t.Errorf("quota %+v remaining %d", q, *q.TokensRemaining)
	}
}

func TestListKeysCursor(t *testing.T) {
	keys := make([]domain.APIKey, 3)
	for i := range keys {
		keys[i] = domain.APIKey{ID: uuid.New(), CreatedAt: testNow.Add(-time.Duration(i) * time.Minute)}
	}
	var got domain.KeyFilter
	st := &fakeStore{listKeys: func(_ context.Context, f domain.KeyFilter) ([]domain.APIKey, error) {
		got = f
		if f.After != nil {
			return keys[2:], nil
		}
		return keys[:f.Limit], nil
	}}
	s := newService(t, st, nil, nil)
	p, err := s.ListKeys(context.Background(), admin.ListKeysInput{Limit: 2})
	if err != nil || len(p.Keys) != 2 || p.NextCursor == "" || got.Limit != 3 {
		t.Fatalf("page 1: %+v %v", p, err)
	}
	p, err = s.ListKeys(context.Background(), admin.ListKeysInput{Limit: 2, Cursor: p.NextCursor})
	if err != nil || len(p.Keys) != 1 || p.NextCursor != "" || got.After == nil || got.After.ID != keys[1].ID ||
		!got.After.CreatedAt.Equal(keys[1].CreatedAt) {
		t.Fatalf("page 2: %+v %v %+v", p, err, got.After)
	}
	for _, in := range []admin.ListKeysInput{{Limit: 201}, {Limit: -1}, {Cursor: "%%"}, {Cursor: "bm9wZQ"}} {
		if _, err := s.ListKeys(context.Background(), in); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%+v: %v", in, err)
		}
	}
}

// TestPasswordChecksAreBounded: with one check slot, concurrent logins
// beyond it are refused at once with a retryable 429 kind, never queued,
// and a login after the burst still succeeds.
func TestPasswordChecksAreBounded(t *testing.T) {
	hash, err := argon2id.CreateHash("right", &argon2id.Params{Memory: 8 * 1024, Iterations: 3, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	st := &fakeStore{}
	s, err := admin.NewService(admin.Deps{Keys: st, Tiers: st, Usage: st, Clock: fixedClock{testNow}, Hasher: domain.NewKeyHasher([]byte("k")),
		LoginThrottle: newFakeThrottleStore()},
		admin.Config{AdminUsername: "admin", AdminPasswordHash: hash, MaxPasswordChecks: 1, LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	var busy, wrong atomic.Int32
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			// One address each, so that only the check slots refuse.
			ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
			_, err := s.Login(context.Background(), admin.LoginInput{Username: "admin", Password: "wrong", ClientIP: ip})
			switch {
			case errors.Is(err, admin.ErrPasswordChecksBusy):
				if de := domain.AsError(err); de.Kind != domain.KindRateLimited || de.RetryAfter <= 0 {
					t.Errorf("busy refusal %+v", de)
				}
				busy.Add(1)
			case domain.KindOf(err) == domain.KindUnauthenticated:
				wrong.Add(1)
			default:
				t.Errorf("login: %v", err)
			}
		})
	}
	wg.Wait()
	if busy.Load() == 0 || wrong.Load() == 0 {
		t.Fatalf("busy %d, checked %d: the bound did not bite", busy.Load(), wrong.Load())
	}
	if sub, err := s.Login(context.Background(), admin.LoginInput{Username: "admin", Password: "right"}); err != nil || sub != "admin" {
		t.Fatalf("login after the burst: %q %v", sub, err)
	}
}
