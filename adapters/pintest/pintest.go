// Package pintest is the contract suite every ports.SessionPins adapter
// must pass. Adapters call Run from their own tests; adapters that share
// pins between processes also call RunReplicas with several instances over
// one backing store, to show that replicas pin a session alike. The suite
// uses real time (the Redis adapter expires pins on the server's clock),
// with TTLs and margins that hold on a slow machine.
package pintest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/ports"
)

// Run runs the suite against stores from newPins. Each call must return a
// store holding no pins (or pins only under sessions no other call uses).
func Run(t *testing.T, newPins func(tb testing.TB) ports.SessionPins) {
	t.Helper()
	RunReplicas(t, func(tb testing.TB) []ports.SessionPins {
		return []ports.SessionPins{newPins(tb)}
	})
}

// RunReplicas runs the suite against sets of stores that share one backing
// store, as replicas do. Each test writes on one replica and reads on the
// others.
func RunReplicas(t *testing.T, newReplicas func(tb testing.TB) []ports.SessionPins) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ss []ports.SessionPins)
	}{
		{"AbsentIsNotPinned", testAbsent},
		{"SetThenGetOnEveryReplica", testSetGet},
		{"SetReplaces", testReplace},
		{"ZeroTTLRemoves", testZeroTTL},
		{"SessionsAreIndependent", testIndependent},
		{"PinExpires", testExpires},
		{"SetRenews", testRenews},
		{"ConcurrentMovesAgree", testConcurrentMoves},
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

func ctx(tb testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	tb.Cleanup(cancel)
	return c
}

func mustSet(tb testing.TB, s ports.SessionPins, session, upstream string, ttl time.Duration) {
	tb.Helper()
	if err := s.Set(ctx(tb), session, upstream, ttl); err != nil {
		tb.Fatalf("Set(%q, %q, %v): %v", session, upstream, ttl, err)
	}
}

func get(tb testing.TB, s ports.SessionPins, session string) (string, bool) {
	tb.Helper()
	up, ok, err := s.Get(ctx(tb), session)
	if err != nil {
		tb.Fatalf("Get(%q): %v", session, err)
	}
	return up, ok
}

// mustPinnedEverywhere checks that every replica sees session pinned to want.
func mustPinnedEverywhere(tb testing.TB, ss []ports.SessionPins, session, want string) {
	tb.Helper()
	for i, s := range ss {
		if got, ok := get(tb, s, session); !ok || got != want {
			tb.Fatalf("replica %d: Get(%q) = %q, %v; want %q", i, session, got, ok, want)
		}
	}
}

func mustUnpinnedEverywhere(tb testing.TB, ss []ports.SessionPins, session string) {
	tb.Helper()
	for i, s := range ss {
		if got, ok := get(tb, s, session); ok {
			tb.Fatalf("replica %d: Get(%q) = %q; want no pin", i, session, got)
		}
	}
}

func last(ss []ports.SessionPins) ports.SessionPins { return ss[len(ss)-1] }

func testAbsent(t *testing.T, ss []ports.SessionPins) {
	mustUnpinnedEverywhere(t, ss, "c.never-pinned")
}

func testSetGet(t *testing.T, ss []ports.SessionPins) {
	// Upstream ids are opaque: a UUID, or a name with spaces and colons.
	for i, up := range []string{"0b6c1f7e-2f4a-4c1e-9a57-5b0d7c2e9f10", "primary key: org A"} {
		session := fmt.Sprintf("c.session-%d", i)
		mustSet(t, ss[0], session, up, time.Minute)
		mustPinnedEverywhere(t, ss, session, up)
	}
}

// testReplace: a failover re-pins the session, on whichever replica served it.
func testReplace(t *testing.T, ss []ports.SessionPins) {
	mustSet(t, ss[0], "c.s", "a", time.Minute)
	mustSet(t, last(ss), "c.s", "b", time.Minute)
	mustPinnedEverywhere(t, ss, "c.s", "b")
}

func testZeroTTL(t *testing.T, ss []ports.SessionPins) {
	for i, ttl := range []time.Duration{0, -time.Second} {
		session := fmt.Sprintf("c.s%d", i)
		mustSet(t, ss[0], session, "a", time.Minute)
		mustSet(t, last(ss), session, "a", ttl)
		mustUnpinnedEverywhere(t, ss, session)
	}
	mustSet(t, ss[0], "c.absent", "a", 0) // removing no pin is fine
}

func testIndependent(t *testing.T, ss []ports.SessionPins) {
	const n = 50
	for i := range n {
		mustSet(t, ss[i%len(ss)], fmt.Sprint("u.s", i), fmt.Sprint("up-", i%7), time.Minute)
	}
	for i := range n {
		if got, ok := get(t, ss[(i+1)%len(ss)], fmt.Sprint("u.s", i)); !ok || got != fmt.Sprint("up-", i%7) {
			t.Fatalf("session %d: %q, %v; want up-%d", i, got, ok, i%7)
		}
	}
}

// waitUnpinned polls until no replica holds session, failing after limit.
func waitUnpinned(t *testing.T, ss []ports.SessionPins, session string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		pinned := false
		for _, s := range ss {
			if _, ok := get(t, s, session); ok {
				pinned = true
			}
		}
		if !pinned {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %q still pinned %v after its TTL", session, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testExpires(t *testing.T, ss []ports.SessionPins) {
	const ttl = 400 * time.Millisecond
	mustSet(t, ss[0], "c.s", "a", ttl)
	mustPinnedEverywhere(t, ss, "c.s", "a")
	waitUnpinned(t, ss, "c.s", ttl+2*time.Second)
}

// testRenews: a pin set again before it expires lasts a TTL from the
// renewal. Timings leave 400 ms either side.
func testRenews(t *testing.T, ss []ports.SessionPins) {
	const ttl = 1600 * time.Millisecond
	mustSet(t, ss[0], "c.s", "a", ttl)
	time.Sleep(800 * time.Millisecond)
	mustSet(t, last(ss), "c.s", "a", ttl) // renewed: now expires 2.4 s in
	time.Sleep(1200 * time.Millisecond)   // 2.0 s in: past the first expiry (1.6 s)
	mustPinnedEverywhere(t, ss, "c.s", "a")
	waitUnpinned(t, ss, "c.s", ttl+2*time.Second)
}

// testConcurrentMoves: replicas moving one session at once end up agreeing
// on one of the upstreams written.
func testConcurrentMoves(t *testing.T, ss []ports.SessionPins) {
	const n = 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			if err := ss[i%len(ss)].Set(ctx(t), "c.s", fmt.Sprint("up-", i), time.Minute); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent Set: %v", err)
	}
	want, ok := get(t, ss[0], "c.s")
	if !ok {
		t.Fatal("no pin after concurrent moves")
	}
	mustPinnedEverywhere(t, ss, "c.s", want)
	var i int
	if _, err := fmt.Sscanf(want, "up-%d", &i); err != nil || i < 0 || i >= n {
		t.Fatalf("pin %q is none of the upstreams written", want)
	}
}
