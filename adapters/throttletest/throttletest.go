// Package throttletest is the contract suite every ports.LoginThrottle
// adapter must pass. Adapters call Run from their own tests; adapters that
// share state between processes also call RunReplicas with several
// instances over the same backing store, to show that replicas throttle
// together. The suite uses real time (the Redis adapter takes time from the
// server), with short TTLs and bounds that hold on a slow machine.
package throttletest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/ports"
)

// Run runs the suite against stores from newStore. Each call must return a
// store with no counters (or counters only under keys no other call uses).
func Run(t *testing.T, newStore func(tb testing.TB) ports.LoginThrottle) {
	t.Helper()
	RunReplicas(t, func(tb testing.TB) []ports.LoginThrottle {
		return []ports.LoginThrottle{newStore(tb)}
	})
}

// RunReplicas runs the suite against sets of stores that share one backing
// store, as replicas do. Concurrent tests spread their calls across them.
func RunReplicas(t *testing.T, newReplicas func(tb testing.TB) []ports.LoginThrottle) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ss []ports.LoginThrottle)
	}{
		{"AbsentIsZero", testAbsentIsZero},
		{"RoundTrip", testRoundTrip},
		{"ZeroTTLDeletes", testZeroTTLDeletes},
		{"TTLExpires", testTTLExpires},
		{"NoUpdatesWritesNothing", testNoUpdates},
		{"UnreadKeyIsRefused", testUnreadKey},
		{"NowIsTheStoresTime", testNow},
		{"ConcurrentUpdatesSerialized", testSerialized},
		{"ReadKeysAreCheckedToo", testWriteSkew},
		{"PolicyPerAddress", testPolicyPerAddress},
		{"PolicyParallelGuesses", testPolicyParallel},
		{"PolicyKnownAddress", testPolicyKnownAddress},
		{"PolicyBackoffEnds", testPolicyBackoffEnds},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ss := newReplicas(t)
			if len(ss) == 0 {
				t.Fatal("newReplicas returned no stores")
			}
			tc.fn(t, ss)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

type decideFunc = func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate

// read returns the counters under keys, writing nothing.
func read(t *testing.T, s ports.LoginThrottle, keys ...string) []ports.LoginCounter {
	t.Helper()
	var out []ports.LoginCounter
	if err := s.Update(ctxT(t), keys, func(_ time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
		out = append(out[:0], cur...)
		return nil
	}); err != nil {
		t.Fatalf("Update: %v", err)
	}
	return out
}

func update(t *testing.T, s ports.LoginThrottle, keys []string, decide decideFunc) {
	t.Helper()
	if err := s.Update(ctxT(t), keys, decide); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func put(key string, c ports.LoginCounter, ttl time.Duration) decideFunc {
	return func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate {
		return []ports.LoginCounterUpdate{{Key: key, Counter: c, TTL: ttl}}
	}
}

func equal(a, b ports.LoginCounter) bool {
	return a.Count == b.Count && a.At.Equal(b.At) && a.InFlight == b.InFlight && a.Lease.Equal(b.Lease)
}

func testAbsentIsZero(t *testing.T, ss []ports.LoginThrottle) {
	for _, s := range ss {
		for i, c := range read(t, s, "a", "b") {
			if !equal(c, ports.LoginCounter{}) || !c.At.IsZero() || !c.Lease.IsZero() {
				t.Fatalf("absent key %d: %+v, want the zero counter", i, c)
			}
		}
	}
}

func testRoundTrip(t *testing.T, ss []ports.LoginThrottle) {
	at := time.Date(2026, 5, 1, 10, 0, 0, 123456789, time.UTC)
	want := ports.LoginCounter{Count: 3.25, At: at, InFlight: 2, Lease: at.Add(time.Minute)}
	update(t, ss[0], []string{"a"}, put("a", want, time.Minute))
	// A counter with zero times keeps them zero (not the epoch).
	update(t, ss[0], []string{"b"}, put("b", ports.LoginCounter{Count: 1}, time.Minute))
	for _, s := range ss {
		got := read(t, s, "a", "b")
		if !equal(got[0], want) {
			t.Fatalf("read back %+v, want %+v", got[0], want)
		}
		if got[1].Count != 1 || !got[1].At.IsZero() || !got[1].Lease.IsZero() {
			t.Fatalf("zero times read back as %+v", got[1])
		}
	}
}

func testZeroTTLDeletes(t *testing.T, ss []ports.LoginThrottle) {
	update(t, ss[0], []string{"a"}, put("a", ports.LoginCounter{Count: 1}, time.Minute))
	update(t, ss[len(ss)-1], []string{"a"}, put("a", ports.LoginCounter{Count: 2}, 0))
	if c := read(t, ss[0], "a")[0]; c.Count != 0 {
		t.Fatalf("deleted counter reads %+v", c)
	}
}

func testTTLExpires(t *testing.T, ss []ports.LoginThrottle) {
	update(t, ss[0], []string{"short", "long"}, func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate {
		return []ports.LoginCounterUpdate{
			{Key: "short", Counter: ports.LoginCounter{Count: 1}, TTL: 150 * time.Millisecond},
			{Key: "long", Counter: ports.LoginCounter{Count: 1}, TTL: time.Minute},
		}
	})
	time.Sleep(400 * time.Millisecond)
	for _, s := range ss {
		got := read(t, s, "short", "long")
		if got[0].Count != 0 || got[1].Count != 1 {
			t.Fatalf("after the short TTL: short %+v, long %+v", got[0], got[1])
		}
	}
}

func testNoUpdates(t *testing.T, ss []ports.LoginThrottle) {
	calls := 0
	update(t, ss[0], []string{"a"}, func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate {
		calls++
		return nil
	})
	if calls < 1 {
		t.Fatal("decide was never called")
	}
	if c := read(t, ss[0], "a")[0]; c.Count != 0 || !c.At.IsZero() {
		t.Fatalf("a refusal wrote %+v", c)
	}
}

// testUnreadKey: an update of a key that was not read is an error, and
// nothing of that Update is written.
func testUnreadKey(t *testing.T, ss []ports.LoginThrottle) {
	err := ss[0].Update(ctxT(t), []string{"a"}, func(time.Time, []ports.LoginCounter) []ports.LoginCounterUpdate {
		return []ports.LoginCounterUpdate{
			{Key: "a", Counter: ports.LoginCounter{Count: 1}, TTL: time.Minute},
			{Key: "b", Counter: ports.LoginCounter{Count: 1}, TTL: time.Minute},
		}
	})
	if err == nil {
		t.Fatal("an update of an unread key was accepted")
	}
	if got := read(t, ss[0], "a", "b"); got[0].Count != 0 || got[1].Count != 0 {
		t.Fatalf("a refused Update wrote %+v", got)
	}
}

func testNow(t *testing.T, ss []ports.LoginThrottle) {
	for _, s := range ss {
		update(t, s, []string{"a"}, func(now time.Time, _ []ports.LoginCounter) []ports.LoginCounterUpdate {
			if d := time.Since(now); d < -5*time.Second || d > 5*time.Second {
				t.Errorf("store time %v is %v from this machine's", now, d)
			}
			return nil
		})
	}
}

// testSerialized: concurrent read-modify-writes of the same keys, spread
// across replicas, lose no increment.
func testSerialized(t *testing.T, ss []ports.LoginThrottle) {
	const n = 60
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := ss[i%len(ss)].Update(ctxT(t), []string{"a", "b"}, func(now time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
				return []ports.LoginCounterUpdate{
					{Key: "a", Counter: ports.LoginCounter{Count: cur[0].Count + 1, At: now}, TTL: time.Minute},
					{Key: "b", Counter: ports.LoginCounter{Count: cur[1].Count + 2, At: now}, TTL: time.Minute},
				}
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
		})
	}
	wg.Wait()
	if got := read(t, ss[0], "a", "b"); got[0].Count != n || got[1].Count != 2*n {
		t.Fatalf("after %d increments: a=%v b=%v", n, got[0].Count, got[1].Count)
	}
}

// testWriteSkew: a decision that depends on a key it does not write still
// sees it unchanged when it writes. Each writer claims its own key only if
// no key is claimed yet; exactly one may win.
func testWriteSkew(t *testing.T, ss []ports.LoginThrottle) {
	const n = 20
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%d", i)
	}
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			won := false
			err := ss[i%len(ss)].Update(ctxT(t), keys, func(_ time.Time, cur []ports.LoginCounter) []ports.LoginCounterUpdate {
				won = false
				for _, c := range cur {
					if c.Count > 0 {
						return nil
					}
				}
				won = true
				return []ports.LoginCounterUpdate{{Key: keys[i], Counter: ports.LoginCounter{Count: 1}, TTL: time.Minute}}
			})
			if err != nil {
				t.Errorf("Update: %v", err)
			}
			if won {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	claimed := 0
	for _, c := range read(t, ss[0], keys...) {
		if c.Count > 0 {
			claimed++
		}
	}
	if wins.Load() != 1 || claimed != 1 {
		t.Fatalf("%d writers won and %d keys are claimed; want 1 and 1", wins.Load(), claimed)
	}
}

// policy is the domain's throttle with limits small enough for a test.
var policy = admin.LoginThrottlePolicy{PerAddress: 3, MaxBackoff: time.Minute, PerUsername: 100, Global: 100,
	Window: time.Hour, KnownAddressTTL: time.Hour}

func throttles(t *testing.T, ss []ports.LoginThrottle, p admin.LoginThrottlePolicy) []*admin.LoginThrottle {
	t.Helper()
	out := make([]*admin.LoginThrottle, len(ss))
	for i, s := range ss {
		th, err := admin.NewLoginThrottle(s, nil, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = th
	}
	return out
}

// tryLogin reserves an attempt, and reports the wait when it is refused.
func tryLogin(t *testing.T, th *admin.LoginThrottle, addr, user string) (*admin.LoginAttempt, time.Duration) {
	t.Helper()
	a, err := th.Reserve(ctxT(t), netip.MustParseAddr(addr), user)
	if err == nil {
		return a, 0
	}
	if !errors.Is(err, admin.ErrLoginThrottled) {
		t.Fatalf("Reserve: %v", err)
	}
	wait := domain.AsError(err).RetryAfter
	if wait <= 0 {
		t.Fatalf("a refusal without a wait: %v", err)
	}
	return nil, wait
}

// testPolicyPerAddress: failures on one replica hold the address back on
// every replica.
func testPolicyPerAddress(t *testing.T, ss []ports.LoginThrottle) {
	ths := throttles(t, ss, policy)
	ctx := ctxT(t)
	for i := range policy.PerAddress {
		a, _ := tryLogin(t, ths[i%len(ths)], "2001:db8::1", "admin")
		if a == nil {
			t.Fatalf("failure %d refused", i)
		}
		a.Failed(ctx)
	}
	for i, th := range ths {
		// The same /64.
		if a, _ := tryLogin(t, th, "2001:db8::2", "admin"); a != nil {
			t.Fatalf("replica %d admitted an address past its free failures", i)
		}
	}
}

// testPolicyParallel: parallel guesses from one address, spread across
// replicas, are never more than the free failures.
func testPolicyParallel(t *testing.T, ss []ports.LoginThrottle) {
	ths := throttles(t, ss, policy)
	var admitted atomic.Int32
	var mu sync.Mutex
	var attempts []*admin.LoginAttempt
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			if a, _ := tryLogin(t, ths[i%len(ths)], "192.0.2.1", "admin"); a != nil {
				admitted.Add(1)
				mu.Lock()
				attempts = append(attempts, a)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if admitted.Load() != int32(policy.PerAddress) {
		t.Fatalf("%d parallel attempts admitted, want %d", admitted.Load(), policy.PerAddress)
	}
	for _, a := range attempts {
		a.Release(ctxT(t))
	}
	if a, _ := tryLogin(t, ths[0], "192.0.2.1", "admin"); a == nil {
		t.Fatal("released attempts still count")
	}
}

// testPolicyKnownAddress: a login on one replica makes its address known on
// every replica, past a spent global budget.
func testPolicyKnownAddress(t *testing.T, ss []ports.LoginThrottle) {
	p := policy
	p.Global = 2
	ths := throttles(t, ss, p)
	ctx := ctxT(t)
	a, _ := tryLogin(t, ths[0], "192.0.2.10", "admin")
	if a == nil {
		t.Fatal("first login refused")
	}
	a.Succeeded(ctx)
	for i := range p.Global {
		a, _ := tryLogin(t, ths[i%len(ths)], fmt.Sprintf("203.0.113.%d", i), "admin")
		if a == nil {
			t.Fatalf("failure %d refused", i)
		}
		a.Failed(ctx)
	}
	last := ths[len(ths)-1]
	if a, _ := tryLogin(t, last, "198.51.100.1", "admin"); a != nil {
		t.Fatal("a fresh address got past the spent global budget")
	}
	a, _ = tryLogin(t, last, "192.0.2.10", "admin")
	if a == nil {
		t.Fatal("the known address was refused")
	}
	a.Succeeded(ctx)
}

// testPolicyBackoffEnds: the wait past the free failures ends when it says.
func testPolicyBackoffEnds(t *testing.T, ss []ports.LoginThrottle) {
	ths := throttles(t, ss, policy)
	ctx := ctxT(t)
	for range policy.PerAddress {
		a, _ := tryLogin(t, ths[0], "192.0.2.20", "admin")
		if a == nil {
			t.Fatal("a free failure was refused")
		}
		a.Failed(ctx)
	}
	_, wait := tryLogin(t, ths[len(ths)-1], "192.0.2.20", "admin")
	if wait == 0 || wait > time.Second {
		t.Fatalf("wait %v, want in (0, 1s]", wait)
	}
	time.Sleep(wait + 50*time.Millisecond)
	a, _ := tryLogin(t, ths[len(ths)-1], "192.0.2.20", "admin")
	if a == nil {
		t.Fatal("refused after waiting as told")
	}
	a.Succeeded(ctx)
}
