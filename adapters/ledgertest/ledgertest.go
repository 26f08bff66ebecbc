// Package ledgertest is the contract suite every ports.QuotaLedger adapter
// must pass. Adapters call Run from their own tests; adapters that share state
// between processes also call RunReplicas with several instances over the
// same backing store, to show that replicas never overspend together.
package ledgertest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Run runs the suite, in parallel, against ledgers from newLedger. Each call
// must return a ledger with no state (or state only for keys no other call
// uses).
func Run(t *testing.T, newLedger func(tb testing.TB) ports.QuotaLedger) {
	t.Helper()
	RunReplicas(t, func(tb testing.TB) []ports.QuotaLedger {
		return []ports.QuotaLedger{newLedger(tb)}
	})
}

// RunReplicas runs the suite against sets of ledgers that share one store,
// as replicas do. Concurrent tests spread their calls across the replicas,
// and settle on a different replica than the one that reserved.
func RunReplicas(t *testing.T, newReplicas func(tb testing.TB) []ports.QuotaLedger) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ls []ports.QuotaLedger)
	}{
		{"ReserveWithinLimit", testReserveWithinLimit},
		{"SeedOnce", testSeedOnce},
		{"SettleReplacesReservation", testSettleReplacesReservation},
		{"SettleIdempotent", testSettleIdempotent},
		{"SettleUnknownReservationAddsActual", testSettleUnknownReservation},
		{"SettleUnknownKeyIsReseeded", testSettleUnknownKey},
		{"ReserveRetrySafe", testReserveRetrySafe},
		{"Reset", testReset},
		{"KeysIndependent", testKeysIndependent},
		{"RejectsNegative", testRejectsNegative},
		{"LeaseExpiryFreesCrashedReservation", testLeaseExpiry},
		{"ExtendKeepsALiveReservation", testExtend},
		{"ConcurrentReservationsNeverOverspend", testNoOverspend},
		{"ConcurrentSmallRequestsExactSum", testExactSum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ls := newReplicas(t)
			if len(ls) == 0 {
				t.Fatal("newReplicas returned no ledgers")
			}
			tc.fn(t, ls)
		})
	}
}

const lease = time.Minute

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustState(t *testing.T, l ports.QuotaLedger, key uuid.UUID, seed int64) domain.QuotaState {
	t.Helper()
	s, err := l.State(ctxT(t), key, seed)
	if err != nil {
		t.Fatalf("State: %v", err)
	}
	return s
}

func wantState(t *testing.T, l ports.QuotaLedger, key uuid.UUID, want domain.QuotaState) {
	t.Helper()
	if got := mustState(t, l, key, 0); got != want {
		t.Fatalf("state = %+v, want %+v", got, want)
	}
}

func mustReserve(t *testing.T, l ports.QuotaLedger, key uuid.UUID, id string, est, limit, seed int64) domain.QuotaState {
	t.Helper()
	s, err := l.Reserve(ctxT(t), key, id, est, limit, seed, lease)
	if err != nil {
		t.Fatalf("Reserve(%s, %d): %v", id, est, err)
	}
	return s
}

func mustSettle(t *testing.T, l ports.QuotaLedger, key uuid.UUID, id string, actual int64) {
	t.Helper()
	if err := l.Settle(ctxT(t), key, id, actual); err != nil {
		t.Fatalf("Settle(%s, %d): %v", id, actual, err)
	}
}

func testReserveWithinLimit(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	if s := mustReserve(t, l, key, "a", 60, 100, 0); s != (domain.QuotaState{Reserved: 60}) {
		t.Fatalf("after first reserve: %+v", s)
	}
	s, err := l.Reserve(ctxT(t), key, "b", 41, 100, 0, lease)
	if domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("Reserve past the limit: err = %v, want kind quota_exceeded", err)
	}
	if de := domain.AsError(err); de == nil || de.Message == "" {
		t.Fatalf("refusal carries no caller-safe message: %v", err)
	}
	if s != (domain.QuotaState{Reserved: 60}) {
		t.Fatalf("refused Reserve reported %+v, want the state it saw", s)
	}
	// Exactly filling the limit is allowed.
	if s := mustReserve(t, l, key, "c", 40, 100, 0); s.Reserved != 100 || s.Remaining(100) != 0 {
		t.Fatalf("after filling the limit: %+v", s)
	}
	wantState(t, l, key, domain.QuotaState{Reserved: 100})
}

func testSeedOnce(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	if s := mustState(t, l, key, 40); s.Used != 40 {
		t.Fatalf("seeded state = %+v, want used 40", s)
	}
	// Seeded already: a lower seed is ignored (the ledger has settled more
	// than is persisted yet).
	mustReserve(t, l, key, "a", 10, 100, 7)
	if s := mustState(t, ls[len(ls)-1], key, 7); s != (domain.QuotaState{Used: 40, Reserved: 10}) {
		t.Fatalf("state = %+v, want used 40 reserved 10", s)
	}
	// A higher persisted figure is usage the ledger never settled (recorded
	// while the key had no limit, say): it raises used, and a reservation
	// that no longer fits is refused.
	if _, err := l.Reserve(ctxT(t), key, "b", 10, 100, 95, lease); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("Reserve after persisted usage rose to 95 of 100 with 10 reserved: %v", err)
	}
	if s := mustState(t, ls[len(ls)-1], key, 0); s != (domain.QuotaState{Used: 95, Reserved: 10}) {
		t.Fatalf("state = %+v, want used 95 reserved 10", s)
	}
	// A seed at the limit refuses everything.
	full := uuid.New()
	if _, err := l.Reserve(ctxT(t), full, "x", 1, 100, 100, lease); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("Reserve on a key seeded at its limit: %v", err)
	}
}

func testSettleReplacesReservation(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	mustReserve(t, l, key, "a", 50, 100, 10)
	mustReserve(t, l, key, "b", 20, 100, 10)
	mustSettle(t, ls[len(ls)-1], key, "a", 30)
	wantState(t, l, key, domain.QuotaState{Used: 40, Reserved: 20})
	// Actual above the estimate is still counted in full: the tokens were spent.
	mustSettle(t, l, key, "b", 25)
	wantState(t, l, key, domain.QuotaState{Used: 65})
}

func testSettleIdempotent(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	mustReserve(t, l, key, "a", 50, 100, 0)
	mustSettle(t, l, key, "a", 30)
	mustSettle(t, l, key, "a", 30)
	mustSettle(t, l, key, "a", 45)
	wantState(t, l, key, domain.QuotaState{Used: 30})

	// Concurrent duplicates, across replicas, count once too.
	mustReserve(t, l, key, "b", 50, 100, 0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- ls[i%len(ls)].Settle(context.Background(), key, "b", 10)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}
	wantState(t, l, key, domain.QuotaState{Used: 40})
}

func testSettleUnknownReservation(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	mustState(t, l, key, 5)
	mustSettle(t, l, key, "never-reserved", 7)
	wantState(t, l, key, domain.QuotaState{Used: 12})
}

func testSettleUnknownKey(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	// The ledger has no entry, so it cannot know the persisted base; the
	// usage reaches storage and comes back through the seed.
	mustSettle(t, l, key, "a", 7)
	if s := mustState(t, l, key, 107); s != (domain.QuotaState{Used: 107}) {
		t.Fatalf("state after settling on an unseeded key = %+v, want used 107 from the seed", s)
	}
}

func testReserveRetrySafe(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	mustReserve(t, l, key, "a", 60, 100, 0)
	// A retried Reserve of the same id must not hold twice, nor be refused.
	if s := mustReserve(t, ls[len(ls)-1], key, "a", 60, 100, 0); s.Reserved != 60 {
		t.Fatalf("retried Reserve: %+v, want reserved 60", s)
	}
	mustSettle(t, l, key, "a", 60)
	mustReserve(t, l, key, "a", 60, 100, 0)
	wantState(t, l, key, domain.QuotaState{Used: 60})
}

func testReset(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	mustReserve(t, l, key, "a", 30, 100, 50)
	if err := ls[len(ls)-1].Reset(ctxT(t), key); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if s := mustState(t, l, key, 5); s != (domain.QuotaState{Used: 5}) {
		t.Fatalf("state after Reset = %+v, want re-seeded used 5", s)
	}
	if err := l.Reset(ctxT(t), uuid.New()); err != nil {
		t.Fatalf("Reset of an unknown key: %v", err)
	}
}

func testKeysIndependent(t *testing.T, ls []ports.QuotaLedger) {
	l, a, b := ls[0], uuid.New(), uuid.New()
	mustReserve(t, l, a, "x", 100, 100, 0)
	mustReserve(t, l, b, "x", 100, 100, 0)
	mustSettle(t, l, a, "x", 1)
	wantState(t, l, a, domain.QuotaState{Used: 1})
	wantState(t, l, b, domain.QuotaState{Reserved: 100})
}

func testRejectsNegative(t *testing.T, ls []ports.QuotaLedger) {
	l, key := ls[0], uuid.New()
	if _, err := l.Reserve(ctxT(t), key, "a", -1, 100, 0, lease); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("negative estimate: err = %v, want kind invalid", err)
	}
	mustState(t, l, key, 0)
	if err := l.Settle(ctxT(t), key, "a", -1); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("negative actual: err = %v, want kind invalid", err)
	}
	wantState(t, l, key, domain.QuotaState{})
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testExtend: a reservation extended before its lease ends keeps holding
// quota past the original lease; extending what is not held changes nothing.
func testExtend(t *testing.T, ls []ports.QuotaLedger) {
	const short = 400 * time.Millisecond
	l, key := ls[0], uuid.New()
	if _, err := l.Reserve(ctxT(t), key, "live", 100, 100, 0, short); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	// Another replica extends it (the stream is still running).
	if err := ls[len(ls)-1].Extend(ctxT(t), key, "live", time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	time.Sleep(2 * short)
	if _, err := l.Reserve(ctxT(t), key, "other", 1, 100, 0, lease); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("the extended reservation stopped holding quota: %v", err)
	}
	mustSettle(t, l, key, "live", 30)
	wantState(t, l, key, domain.QuotaState{Used: 30})
	// Extending a settled or unknown reservation, or an unknown key, is a no-op.
	if err := l.Extend(ctxT(t), key, "live", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Extend(ctxT(t), uuid.New(), "nothing", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantState(t, l, key, domain.QuotaState{Used: 30})
}

func testLeaseExpiry(t *testing.T, ls []ports.QuotaLedger) {
	const short = 500 * time.Millisecond
	l, key := ls[0], uuid.New()
	// A replica reserves the whole quota with a short lease, then crashes.
	start := time.Now()
	if _, err := ls[len(ls)-1].Reserve(ctxT(t), key, "crashed", 100, 100, 0, short); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	_, err := l.Reserve(ctxT(t), key, "blocked", 1, 100, 0, lease)
	switch {
	case domain.KindOf(err) == domain.KindQuotaExceeded:
	case err == nil && time.Since(start) >= short:
		// The machine stalled past the lease; tidy up and go on.
		mustSettle(t, l, key, "blocked", 0)
	default:
		t.Fatalf("Reserve while the quota is held: %v", err)
	}
	eventually(t, 10*time.Second, "lease expiry", func() bool {
		return mustState(t, l, key, 0).Reserved == 0
	})
	mustReserve(t, l, key, "after", 100, 100, 0)
	// A late settlement of the expired reservation still counts what was spent.
	mustSettle(t, l, key, "crashed", 3)
	wantState(t, l, key, domain.QuotaState{Used: 3, Reserved: 100})
}

func testNoOverspend(t *testing.T, ls []ports.QuotaLedger) {
	const limit = 100_000
	for round := range 3 {
		key := uuid.New()
		seed := int64(round * 7_000) // some rounds start part-used
		mustState(t, ls[0], key, seed)

		// Phase 1: 50 concurrent reservations of about L/10 each.
		type outcome struct {
			id       string
			est      int64
			admitted bool
			err      error
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		out := make([]outcome, 50)
		for i := range out {
			out[i] = outcome{id: fmt.Sprintf("r%d", i), est: int64(limit/10 - 1_000 + rand.IntN(2_000))}
			wg.Go(func() {
				<-start
				_, err := ls[i%len(ls)].Reserve(context.Background(), key, out[i].id, out[i].est, limit, seed, lease)
				if domain.KindOf(err) == domain.KindQuotaExceeded {
					return
				}
				out[i].admitted, out[i].err = err == nil, err
			})
		}
		close(start)
		wg.Wait()
		var admitted, nAdmitted int64
		for _, o := range out {
			if o.err != nil {
				t.Fatalf("round %d: Reserve: %v", round, o.err)
			}
			if o.admitted {
				admitted += o.est
				nAdmitted++
			}
		}
		if seed+admitted > limit {
			t.Fatalf("round %d: admitted %d tokens on top of %d used: %d exceeds limit %d", round, admitted, seed, seed+admitted, limit)
		}
		if nAdmitted == 0 || nAdmitted == 50 {
			t.Fatalf("round %d: %d of 50 admitted; want some admitted and some refused", round, nAdmitted)
		}
		s := mustState(t, ls[0], key, 0)
		if s != (domain.QuotaState{Used: seed, Reserved: admitted}) {
			t.Fatalf("round %d: state %+v after admitting %d", round, s, admitted)
		}
		// Reservations only grew during phase 1, so nothing refused would
		// have fitted even at the end: no request was refused wrongly.
		for _, o := range out {
			if !o.admitted && o.est <= s.Remaining(limit) {
				t.Fatalf("round %d: %s (%d tokens) refused although %d remain", round, o.id, o.est, s.Remaining(limit))
			}
		}

		// Phase 2: settle every admitted one concurrently, actual <= estimate.
		var actual atomic.Int64
		errs := make(chan error, len(out))
		for i, o := range out {
			if !o.admitted {
				continue
			}
			wg.Go(func() {
				act := rand.Int64N(o.est + 1)
				actual.Add(act)
				errs <- ls[(i+1)%len(ls)].Settle(context.Background(), key, o.id, act)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: Settle: %v", round, err)
			}
		}
		s = mustState(t, ls[0], key, 0)
		if want := (domain.QuotaState{Used: seed + actual.Load()}); s != want {
			t.Fatalf("round %d: final state %+v, want %+v", round, s, want)
		}
		if s.Used > limit {
			t.Fatalf("round %d: used %d past limit %d", round, s.Used, limit)
		}
	}
}

func testExactSum(t *testing.T, ls []ports.QuotaLedger) {
	key := uuid.New()
	const n = 500
	mustState(t, ls[0], key, 1_000)
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		sum   atomic.Int64
	)
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			id := fmt.Sprintf("s%d", i)
			if _, err := ls[i%len(ls)].Reserve(context.Background(), key, id, 50, 1<<40, 0, lease); err != nil {
				errs <- err
				return
			}
			act := int64(1 + i%37)
			sum.Add(act)
			if err := ls[(i+1)%len(ls)].Settle(context.Background(), key, id, act); err != nil {
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantState(t, ls[0], key, domain.QuotaState{Used: 1_000 + sum.Load()})
}
