package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/ports"
)

// testPolicy is small enough to reach every limit in a few calls.
var testPolicy = admin.LoginThrottlePolicy{
	PerAddress: 5, MaxBackoff: 15 * time.Minute, PerUsername: 20, Global: 40,
	Window: time.Hour, KnownAddressTTL: 30 * 24 * time.Hour,
}

// fakeThrottleStore is a ports.LoginThrottle on a map, with a settable
// clock and a switch that makes it fail.
type fakeThrottleStore struct {
	mu      sync.Mutex
	now     time.Time
	entries map[string]fakeThrottleEntry
	failing bool
	updates int
}

type fakeThrottleEntry struct {
	c       ports.LoginCounter
	expires time.Time
}

var _ ports.LoginThrottle = (*fakeThrottleStore)(nil)

func newFakeThrottleStore() *fakeThrottleStore {
	return &fakeThrottleStore{now: testNow, entries: map[string]fakeThrottleEntry{}}
}

func (f *fakeThrottleStore) Update(_ context.Context, keys []string,
	decide func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failing {
		return errors.New("fake store down")
	}
	f.updates++
	cur := make([]ports.LoginCounter, len(keys))
	for i, k := range keys {
		if e, ok := f.entries[k]; ok && f.now.Before(e.expires) {
			cur[i] = e.c
		}
	}
	for _, u := range decide(f.now, cur) {
		if !slices.Contains(keys, u.Key) {
			return fmt.Errorf("update of unread key %q", u.Key)
		}
		if u.TTL <= 0 {
			delete(f.entries, u.Key)
		} else {
			f.entries[u.Key] = fakeThrottleEntry{c: u.Counter, expires: f.now.Add(u.TTL)}
		}
	}
	return nil
}

func (f *fakeThrottleStore) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func (f *fakeThrottleStore) setFailing(v bool) {
	f.mu.Lock()
	f.failing = v
	f.mu.Unlock()
}

func mustThrottle(t *testing.T, store, fallback ports.LoginThrottle, p admin.LoginThrottlePolicy) *admin.LoginThrottle {
	t.Helper()
	th, err := admin.NewLoginThrottle(store, fallback, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

var ctx = context.Background()

// reserve returns the attempt, or the wait of a throttled refusal.
func reserve(t *testing.T, th *admin.LoginThrottle, addr, user string) (*admin.LoginAttempt, time.Duration) {
	t.Helper()
	a, err := th.Reserve(ctx, netip.MustParseAddr(addr), user)
	if err == nil {
		return a, 0
	}
	de := domain.AsError(err)
	if !errors.Is(err, admin.ErrLoginThrottled) || de.Kind != domain.KindRateLimited || de.RetryAfter <= 0 {
		t.Fatalf("reserve %s %s: %v, want an attempt or a throttled refusal with a wait", addr, user, err)
	}
	return nil, de.RetryAfter
}

func mustAdmit(t *testing.T, th *admin.LoginThrottle, addr, user string) *admin.LoginAttempt {
	t.Helper()
	a, wait := reserve(t, th, addr, user)
	if a == nil {
		t.Fatalf("%s as %s refused for %v, want admitted", addr, user, wait)
	}
	return a
}

func mustRefuse(t *testing.T, th *admin.LoginThrottle, addr, user string) time.Duration {
	t.Helper()
	a, wait := reserve(t, th, addr, user)
	if a != nil {
		a.Release(ctx)
		t.Fatalf("%s as %s admitted, want refused", addr, user)
	}
	return wait
}

func fail(t *testing.T, th *admin.LoginThrottle, addr, user string) {
	t.Helper()
	mustAdmit(t, th, addr, user).Failed(ctx)
}

// TestThrottlePerAddressBackoff: the free failures, then a wait that
// doubles with each further failure up to the cap, forgotten after a quiet
// window; never a lock that outlives its wait.
func TestThrottlePerAddressBackoff(t *testing.T) {
	st := newFakeThrottleStore()
	th := mustThrottle(t, st, nil, testPolicy)
	const ip = "192.0.2.1"
	for range 5 {
		fail(t, th, ip, "admin")
	}
	want := time.Second
	for range 14 {
		if got := mustRefuse(t, th, ip, "admin"); got != want {
			t.Fatalf("wait %v, want %v", got, want)
		}
		st.advance(want - time.Millisecond)
		mustRefuse(t, th, ip, "admin")
		st.advance(time.Millisecond)
		fail(t, th, ip, "admin")
		want = min(2*want, testPolicy.MaxBackoff)
	}
	if want != testPolicy.MaxBackoff {
		t.Fatalf("the wait did not reach the cap: %v", want)
	}
	// Another address is not affected.
	mustAdmit(t, th, "192.0.2.2", "admin").Release(ctx)
	// A quiet window forgets the failures: five free ones again.
	st.advance(testPolicy.Window)
	for range 5 {
		fail(t, th, ip, "other")
	}
	if got := mustRefuse(t, th, ip, "other"); got != time.Second {
		t.Fatalf("wait after a fresh start %v, want 1s", got)
	}
}

// TestThrottleRightPasswordAfterTheWait: the right password is refused only
// during the wait, and a success forgets the address's failures.
func TestThrottleRightPasswordAfterTheWait(t *testing.T) {
	st := newFakeThrottleStore()
	th := mustThrottle(t, st, nil, testPolicy)
	const ip = "192.0.2.1"
	for i := range 7 {
		if i > 0 {
			st.advance(10 * time.Second)
		}
		fail(t, th, ip, "admin")
	}
	wait := mustRefuse(t, th, ip, "admin")
	st.advance(wait)
	mustAdmit(t, th, ip, "admin").Succeeded(ctx)
	for range 5 {
		fail(t, th, ip, "admin")
	}
	mustRefuse(t, th, ip, "admin")
}

func TestThrottleGroupsIPv6By64(t *testing.T) {
	th := mustThrottle(t, newFakeThrottleStore(), nil, testPolicy)
	for i := range 5 {
		fail(t, th, fmt.Sprintf("2001:db8:1:2::%x", i+1), "admin")
	}
	mustRefuse(t, th, "2001:db8:1:2:ffff:ffff:ffff:ffff", "admin")
	mustAdmit(t, th, "2001:db8:1:3::1", "admin").Release(ctx)
	// IPv4 is grouped per address, however it is spelled.
	for range 5 {
		fail(t, th, "::ffff:198.51.100.7", "admin")
	}
	mustRefuse(t, th, "198.51.100.7", "admin")
	mustAdmit(t, th, "198.51.100.8", "admin").Release(ctx)
}

// TestThrottlePerUsername: many addresses, one failure each, spend the
// username's budget; it refills steadily, and other usernames are not
// affected.
func TestThrottlePerUsername(t *testing.T) {
	st := newFakeThrottleStore()
	th := mustThrottle(t, st, nil, testPolicy)
	for i := range testPolicy.PerUsername {
		fail(t, th, fmt.Sprintf("203.0.113.%d", i), "admin")
	}
	interval := testPolicy.Window / time.Duration(testPolicy.PerUsername)
	if got := mustRefuse(t, th, "198.51.100.1", "admin"); got != interval {
		t.Fatalf("wait %v, want %v (one failure's refill)", got, interval)
	}
	mustAdmit(t, th, "198.51.100.1", "root").Release(ctx)
	st.advance(interval)
	fail(t, th, "198.51.100.1", "admin")
	mustRefuse(t, th, "198.51.100.2", "admin")
}

// TestThrottleGlobal: failures spread over addresses and usernames spend
// the global budget.
func TestThrottleGlobal(t *testing.T) {
	st := newFakeThrottleStore()
	th := mustThrottle(t, st, nil, testPolicy)
	for i := range testPolicy.Global {
		fail(t, th, fmt.Sprintf("203.0.113.%d", i), fmt.Sprintf("user%d", i))
	}
	interval := testPolicy.Window / time.Duration(testPolicy.Global)
	if got := mustRefuse(t, th, "198.51.100.1", "someone"); got != interval {
		t.Fatalf("wait %v, want %v", got, interval)
	}
	st.advance(interval)
	mustAdmit(t, th, "198.51.100.1", "someone").Release(ctx)
}

// TestThrottleKnownAddress: an address that logged in is not held back by
// spent username and global budgets (the admin is not locked out by an
// attacker with many addresses), but still by its own backoff.
func TestThrottleKnownAddress(t *testing.T) {
	st := newFakeThrottleStore()
	th := mustThrottle(t, st, nil, testPolicy)
	const home = "192.0.2.10"
	mustAdmit(t, th, home, "admin").Succeeded(ctx)
	for i := range testPolicy.Global {
		user := "admin"
		if i >= testPolicy.PerUsername {
			user = fmt.Sprintf("user%d", i)
		}
		fail(t, th, fmt.Sprintf("203.0.113.%d", i), user)
	}
	mustRefuse(t, th, "198.51.100.1", "admin")
	mustRefuse(t, th, "198.51.100.1", "root")
	mustAdmit(t, th, home, "admin").Succeeded(ctx)
	for range 5 {
		fail(t, th, home, "admin")
	}
	mustRefuse(t, th, home, "admin")
	// Known for KnownAddressTTL only.
	st.advance(testPolicy.KnownAddressTTL)
	th2 := mustThrottle(t, st, nil, admin.LoginThrottlePolicy{PerAddress: 5, MaxBackoff: time.Minute,
		PerUsername: 1, Global: 1, Window: time.Minute, KnownAddressTTL: time.Hour})
	fail(t, th2, "203.0.113.1", "admin")
	mustRefuse(t, th2, home, "admin")
}

// TestThrottleCountsChecksInFlight: parallel attempts count before their
// checks end, so no more than the free failures are ever being checked.
func TestThrottleCountsChecksInFlight(t *testing.T) {
	th := mustThrottle(t, newFakeThrottleStore(), nil, testPolicy)
	var admitted []*admin.LoginAttempt
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 30 {
		wg.Go(func() {
			a, err := th.Reserve(ctx, netip.MustParseAddr("192.0.2.1"), "admin")
			if err == nil {
				mu.Lock()
				admitted = append(admitted, a)
				mu.Unlock()
			} else if !errors.Is(err, admin.ErrLoginThrottled) {
				t.Errorf("reserve: %v", err)
			}
		})
	}
	wg.Wait()
	if len(admitted) != testPolicy.PerAddress {
		t.Fatalf("%d admitted in parallel, want %d", len(admitted), testPolicy.PerAddress)
	}
	if got := mustRefuse(t, th, "192.0.2.1", "admin"); got != time.Second {
		t.Fatalf("wait while checks are in flight %v, want 1s", got)
	}
	// Released attempts (no check happened) count for nothing.
	for _, a := range admitted {
		a.Release(ctx)
		a.Failed(ctx) // after the first end, a no-op
	}
	for range 5 {
		fail(t, th, "192.0.2.1", "admin")
	}
	mustRefuse(t, th, "192.0.2.1", "admin")
}

// TestThrottleLeaseFreesAbandonedAttempts: an attempt whose replica died
// mid-check stops counting after its lease.
func TestThrottleLeaseFreesAbandonedAttempts(t *testing.T) {
	st := newFakeThrottleStore()
	p := testPolicy
	p.PerUsername, p.Global = 1, 1
	th := mustThrottle(t, st, nil, p)
	mustAdmit(t, th, "192.0.2.1", "admin") // never ended
	mustRefuse(t, th, "192.0.2.2", "admin")
	st.advance(time.Minute)
	mustAdmit(t, th, "192.0.2.2", "admin").Release(ctx)
}

// TestThrottleFallback: while the store fails, the fallback decides; an
// attempt ends on the store that admitted it. Without a fallback, logins
// are refused with 503.
func TestThrottleFallback(t *testing.T) {
	st, fb := newFakeThrottleStore(), newFakeThrottleStore()
	th := mustThrottle(t, st, fb, testPolicy)
	a := mustAdmit(t, th, "192.0.2.1", "admin")
	st.setFailing(true)
	for range 5 {
		fail(t, th, "192.0.2.1", "admin")
	}
	mustRefuse(t, th, "192.0.2.1", "admin")
	st.setFailing(false)
	a.Failed(ctx)
	if fb.updates == 0 || len(st.entries) == 0 {
		t.Fatalf("fallback updates %d, store entries %d", fb.updates, len(st.entries))
	}
	// Back on the store, which saw one failure only.
	for range 4 {
		fail(t, th, "192.0.2.1", "admin")
	}
	mustRefuse(t, th, "192.0.2.1", "admin")

	st.setFailing(true)
	_, err := mustThrottle(t, st, nil, testPolicy).Reserve(ctx, netip.MustParseAddr("192.0.2.9"), "admin")
	if de := domain.AsError(err); de == nil || de.Kind != domain.KindOverloaded || de.RetryAfter <= 0 {
		t.Fatalf("store down, no fallback: %v, want overloaded with retry-after", err)
	}
}

func TestThrottlePolicyValidate(t *testing.T) {
	if err := testPolicy.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*admin.LoginThrottlePolicy){
		"no per-address":        func(p *admin.LoginThrottlePolicy) { p.PerAddress = 0 },
		"no per-username":       func(p *admin.LoginThrottlePolicy) { p.PerUsername = 0 },
		"no global":             func(p *admin.LoginThrottlePolicy) { p.Global = 0 },
		"tiny backoff":          func(p *admin.LoginThrottlePolicy) { p.MaxBackoff = time.Millisecond },
		"window under backoff":  func(p *admin.LoginThrottlePolicy) { p.Window = time.Minute },
		"negative known ttl":    func(p *admin.LoginThrottlePolicy) { p.KnownAddressTTL = -1 },
		"no store (NewService)": nil,
	} {
		p := testPolicy
		if mut == nil {
			if _, err := admin.NewLoginThrottle(nil, nil, p, nil); err == nil {
				t.Errorf("%s: accepted", name)
			}
			continue
		}
		mut(&p)
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestLoginIsThrottledBeforeTheCheck: through the use case, a throttled
// address is refused even with the right password, and gets in once its
// wait is over.
func TestLoginIsThrottledBeforeTheCheck(t *testing.T) {
	st := newFakeThrottleStore()
	s := newServiceWithThrottle(t, st)
	ip := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		if _, err := s.Login(ctx, admin.LoginInput{Username: "admin", Password: "nope", ClientIP: ip}); !errors.Is(err, domain.ErrUnauthenticated) {
			t.Fatalf("wrong password: %v", err)
		}
	}
	_, err := s.Login(ctx, admin.LoginInput{Username: "admin", Password: "pw", ClientIP: ip})
	if !errors.Is(err, admin.ErrLoginThrottled) {
		t.Fatalf("right password while throttled: %v, want throttled", err)
	}
	st.advance(time.Second)
	if sub, err := s.Login(ctx, admin.LoginInput{Username: "admin", Password: "pw", ClientIP: ip}); err != nil || sub != "admin" {
		t.Fatalf("right password after the wait: %q %v", sub, err)
	}
}

// TestBusyChecksAreNotFailures: a login refused because every check slot is
// taken is not counted against its address.
func TestBusyChecksAreNotFailures(t *testing.T) {
	st := newFakeThrottleStore()
	s := newServiceWithThrottle(t, st)
	ip := netip.MustParseAddr("192.0.2.1")
	var busy, wrong atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			_, err := s.Login(ctx, admin.LoginInput{Username: "admin", Password: "nope", ClientIP: ip})
			switch {
			case errors.Is(err, admin.ErrPasswordChecksBusy):
				busy.Add(1)
			case errors.Is(err, domain.ErrUnauthenticated):
				wrong.Add(1)
			case !errors.Is(err, admin.ErrLoginThrottled):
				t.Errorf("login: %v", err)
			}
		})
	}
	wg.Wait()
	st.mu.Lock()
	n := st.entries["addr:192.0.2.1"].c.Count
	st.mu.Unlock()
	if busy.Load() == 0 || n != float64(wrong.Load()) {
		t.Fatalf("%v failures recorded for %d wrong passwords (%d busy)", n, wrong.Load(), busy.Load())
	}
}

func newServiceWithThrottle(t *testing.T, st ports.LoginThrottle) *admin.Service {
	t.Helper()
	fs := &fakeStore{}
	s, err := admin.NewService(admin.Deps{Keys: fs, Tiers: fs, Usage: fs, Clock: fixedClock{testNow},
		Hasher: domain.NewKeyHasher([]byte("k")), LoginThrottle: st},
		admin.Config{AdminUsername: "admin", AdminPasswordHash: testHash, MaxPasswordChecks: 1, LoginThrottle: testPolicy})
	if err != nil {
		t.Fatal(err)
	}
	return s
}
