// Package budgettest is the contract suite every ports.BudgetLedger adapter
// must pass. Adapters call Run from their own tests; adapters that share
// state between processes also call RunReplicas with several instances over
// the same backing store, to show that replicas never overspend together.
//
// Windows run on fake time: each test passes the request times it wants
// (the port takes them from the caller), so a test moves hours, days or
// months in a step, on every adapter. Leases follow the ledger's own clock
// and are tested in real time, with short leases.
package budgettest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

// Run runs the suite against ledgers from newLedger. Each call must return a
// ledger with no state (or state only for keys no other call uses).
func Run(t *testing.T, newLedger func(tb testing.TB) ports.BudgetLedger) {
	t.Helper()
	RunReplicas(t, func(tb testing.TB) []ports.BudgetLedger {
		return []ports.BudgetLedger{newLedger(tb)}
	})
}

// RunReplicas runs the suite against sets of ledgers that share one store,
// as replicas do. Tests settle on another replica than the one that
// reserved, and concurrent tests spread their calls across the replicas.
func RunReplicas(t *testing.T, newReplicas func(tb testing.TB) []ports.BudgetLedger) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, ls []ports.BudgetLedger)
	}{
		{"UnseededKeyAsksForSeed", testUnseeded},
		{"ReserveIsAllOrNothingAcrossWindows", testAllOrNothing},
		{"SettleReplacesReservation", testSettleReplaces},
		{"SettleIdempotent", testSettleIdempotent},
		{"SettleUnknownReservationAddsActual", testSettleUnknownReservation},
		{"ReserveRetrySafe", testReserveRetrySafe},
		{"RollingWindowForgetsUsageOlderThan5h", testRolling},
		{"DayWindowResetsAtLocalMidnightAcrossDST", testDayDST},
		{"WeekAndMonthBoundariesInQuarterHourZones", testWeekMonth},
		{"TotalNeverResets", testTotal},
		{"RefusalNamesTheBindingWindow", testRefusalBinding},
		{"AmountOverLimitIsNoRetry", testOverLimit},
		{"AddingABudgetMeasuresExistingSpend", testAddBudget},
		{"SeedMeasuresPersistedSpendByMaximum", testSeed},
		{"ReservationBelongsToItsWindow", testReservationWindow},
		{"ClockFarAheadCannotPruneTheRollingWindow", testClockAhead},
		{"SeedFullHistory", testSeedFull},
		{"Reset", testReset},
		{"KeysIndependent", testKeysIndependent},
		{"RejectsInvalid", testRejectsInvalid},
		{"LeaseExpiryFreesCrashedReservation", testLeaseExpiry},
		{"ExtendKeepsALiveReservation", testExtend},
		{"ConcurrentReservationsNeverOverspend", testNoOverspend},
		{"ConcurrentSettlementsExactSum", testExactSum},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ls := newReplicas(t)
			if len(ls) == 0 {
				t.Fatal("newReplicas returned no ledgers")
			}
			tc.fn(t, ls)
		})
	}
}

const lease = time.Minute

// USD reads a decimal dollar amount; it panics on a malformed one.
func USD(s string) pricing.Nanodollars {
	n, err := pricing.ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return n
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustTime(s string) time.Time {
	at, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return at
}

func zone(name string) *time.Location {
	loc, err := budget.LoadZone(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func mustSeed(t *testing.T, l ports.BudgetLedger, key uuid.UUID, h budget.History) {
	t.Helper()
	if err := l.Seed(ctxT(t), key, h); err != nil {
		t.Fatalf("Seed: %v", err)
	}
}

// newKey returns a key seeded with no history.
func newKey(t *testing.T, l ports.BudgetLedger, at time.Time) uuid.UUID {
	t.Helper()
	key := uuid.New()
	mustSeed(t, l, key, budget.History{AsOf: at})
	return key
}

func mustReserve(t *testing.T, l ports.BudgetLedger, key uuid.UUID, id string, bs []budget.Budget, amount pricing.Nanodollars, at time.Time) []budget.Status {
	t.Helper()
	sts, err := l.Reserve(ctxT(t), key, id, bs, amount, at, lease)
	if err != nil {
		t.Fatalf("Reserve(%s, %s at %s): %v", id, amount, at.Format(time.RFC3339), err)
	}
	// What a reservation answers is the windows as they are after it.
	if len(bs) > 0 {
		now, err := l.State(ctxT(t), key, bs, at)
		if err != nil {
			t.Fatalf("State after Reserve(%s): %v", id, err)
		}
		if !reflect.DeepEqual(statusText(sts), statusText(now)) {
			t.Fatalf("Reserve(%s, %s at %s) answered\n%v\nbut State then says\n%v", id, amount, at.Format(time.RFC3339), statusText(sts), statusText(now))
		}
	}
	return sts
}

// statusText renders statuses with their times as instants, so that two
// ledgers' answers compare whatever *time.Location they carry.
func statusText(sts []budget.Status) []string {
	out := make([]string, len(sts))
	for i, s := range sts {
		out[i] = fmt.Sprintf("%v used=%d reserved=%d [%d, %d) resets=%d", s.Budget, s.Used, s.Reserved,
			s.Start.UnixNano(), s.End.UnixNano(), s.ResetsAt.UnixNano())
	}
	return out
}

// mustRefuse reserves and wants a refusal; it returns the error and the
// refusal it carries.
func mustRefuse(t *testing.T, l ports.BudgetLedger, key uuid.UUID, id string, bs []budget.Budget, amount pricing.Nanodollars, at time.Time) (*domain.Error, *budget.Refusal) {
	t.Helper()
	_, err := l.Reserve(ctxT(t), key, id, bs, amount, at, lease)
	if domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("Reserve(%s, %s at %s): err = %v, want kind quota_exceeded", id, amount, at.Format(time.RFC3339), err)
	}
	var r *budget.Refusal
	if !errors.As(err, &r) || len(r.Shortfalls) == 0 {
		t.Fatalf("refusal %v carries no *budget.Refusal with shortfalls", err)
	}
	de := domain.AsError(err)
	if de.Message == "" {
		t.Fatalf("refusal carries no caller-safe message: %v", err)
	}
	return de, r
}

func mustSettle(t *testing.T, l ports.BudgetLedger, key uuid.UUID, id string, actual pricing.Nanodollars, at time.Time) {
	t.Helper()
	if err := l.Settle(ctxT(t), key, id, actual, at); err != nil {
		t.Fatalf("Settle(%s, %s): %v", id, actual, err)
	}
}

func mustState(t *testing.T, l ports.BudgetLedger, key uuid.UUID, bs []budget.Budget, at time.Time) []budget.Status {
	t.Helper()
	sts, err := l.State(ctxT(t), key, bs, at)
	if err != nil {
		t.Fatalf("State at %s: %v", at.Format(time.RFC3339), err)
	}
	if len(sts) != len(bs) {
		t.Fatalf("State returned %d statuses for %d budgets", len(sts), len(bs))
	}
	return sts
}

// wantUsed checks used and reserved of every window of bs at at.
func wantUsed(t *testing.T, l ports.BudgetLedger, key uuid.UUID, bs []budget.Budget, at time.Time, used, reserved []pricing.Nanodollars) []budget.Status {
	t.Helper()
	sts := mustState(t, l, key, bs, at)
	for i, s := range sts {
		if s.Used != used[i] || s.Reserved != reserved[i] {
			t.Fatalf("%s window at %s: used %s reserved %s, want used %s reserved %s",
				bs[i], at.Format(time.RFC3339), s.Used, s.Reserved, used[i], reserved[i])
		}
	}
	return sts
}

func amounts(vs ...string) []pricing.Nanodollars {
	out := make([]pricing.Nanodollars, len(vs))
	for i, v := range vs {
		out[i] = USD(v)
	}
	return out
}

func last(ls []ports.BudgetLedger) ports.BudgetLedger { return ls[len(ls)-1] }

var t0 = mustTime("2026-05-04T10:02:00Z")

func testUnseeded(t *testing.T, ls []ports.BudgetLedger) {
	l, key := ls[0], uuid.New()
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	if _, err := l.Reserve(ctxT(t), key, "a", bs, USD("0.1"), t0, lease); !errors.Is(err, ports.ErrUnseeded) {
		t.Fatalf("Reserve on an unseeded key: %v, want ErrUnseeded", err)
	}
	if _, err := l.State(ctxT(t), key, bs, t0); !errors.Is(err, ports.ErrUnseeded) {
		t.Fatalf("State on an unseeded key: %v, want ErrUnseeded", err)
	}
	// A settlement before the seed is left to the seed: storage has it.
	mustSettle(t, l, key, "a", USD("0.3"), t0)
	if err := l.Extend(ctxT(t), key, "a", lease); err != nil {
		t.Fatalf("Extend on an unseeded key: %v", err)
	}
	mustSeed(t, last(ls), key, budget.History{AsOf: t0, Total: USD("0.3"),
		Buckets: []budget.Spend{{Start: budget.BucketStart(t0), Amount: USD("0.3")}}})
	wantUsed(t, l, key, bs, t0, amounts("0.3"), amounts("0"))
	mustReserve(t, l, key, "b", bs, USD("0.7"), t0)
}

func testAllOrNothing(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{
		{Window: budget.Rolling5h, Limit: USD("1")},
		{Window: budget.Day, Limit: USD("2"), TimeZone: "America/New_York"},
		{Window: budget.Total, Limit: USD("3")},
	}
	sts := mustReserve(t, l, key, "a", bs, USD("0.8"), t0)
	for i, s := range sts {
		if s.Reserved != USD("0.8") || s.Used != 0 || s.Budget != bs[i] {
			t.Fatalf("after the first reservation, window %d: %+v", i, s)
		}
	}
	if r := sts[0].Remaining(); r != USD("0.2") {
		t.Fatalf("5h remaining %s, want 0.2", r)
	}
	_, ref := mustRefuse(t, last(ls), key, "b", bs, USD("0.3"), t0)
	if len(ref.Shortfalls) != 1 || ref.Shortfalls[0].Budget.Window != budget.Rolling5h {
		t.Fatalf("refusal names %+v, want only the 5h window", ref.Shortfalls)
	}
	// Nothing of the refused reservation was held in the windows that had
	// room.
	wantUsed(t, l, key, bs, t0, amounts("0", "0", "0"), amounts("0.8", "0.8", "0.8"))
	// Filling a window exactly is allowed.
	mustReserve(t, l, key, "c", bs, USD("0.2"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0", "0", "0"), amounts("1", "1", "1"))
	mustRefuse(t, l, key, "d", bs, 1, t0)
}

func testSettleReplaces(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}, {Window: budget.Total, Limit: USD("10")}}
	mustReserve(t, l, key, "a", bs, USD("0.5"), t0)
	mustReserve(t, l, key, "b", bs, USD("0.2"), t0)
	mustSettle(t, last(ls), key, "a", USD("0.3"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.3", "0.3"), amounts("0.2", "0.2"))
	// An actual above the reservation is counted in full: it was spent.
	mustSettle(t, l, key, "b", USD("0.25"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.55", "0.55"), amounts("0", "0"))
}

func testSettleIdempotent(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Total, Limit: USD("10")}}
	mustReserve(t, l, key, "a", bs, USD("0.5"), t0)
	mustSettle(t, l, key, "a", USD("0.3"), t0)
	mustSettle(t, l, key, "a", USD("0.3"), t0)
	mustSettle(t, last(ls), key, "a", USD("0.45"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.3"), amounts("0"))

	// Concurrent duplicates, across replicas, count once too.
	mustReserve(t, l, key, "b", bs, USD("0.5"), t0)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			errs <- ls[i%len(ls)].Settle(context.Background(), key, "b", USD("0.1"), t0)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}
	wantUsed(t, l, key, bs, t0, amounts("0.4"), amounts("0"))
}

func testSettleUnknownReservation(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: USD("1")}}
	mustSettle(t, l, key, "never-reserved", USD("0.07"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.07"), amounts("0"))
}

func testReserveRetrySafe(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	mustReserve(t, l, key, "a", bs, USD("0.6"), t0)
	// A retried Reserve of the same id neither holds twice nor is refused.
	if sts := mustReserve(t, last(ls), key, "a", bs, USD("0.6"), t0); sts[0].Reserved != USD("0.6") {
		t.Fatalf("retried Reserve: %+v, want reserved 0.6", sts[0])
	}
	mustSettle(t, l, key, "a", USD("0.6"), t0)
	mustReserve(t, l, key, "a", bs, USD("0.6"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.6"), amounts("0"))
}

// testRolling: usage in a 5-minute bucket counts until the bucket's start
// plus 5h05m, so for at least 5 hours, and the window slides bucket by
// bucket.
func testRolling(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0) // 10:02, in the bucket starting 10:00
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: USD("1")}}
	mustSettle(t, l, key, "a", USD("0.4"), t0)
	mustSettle(t, l, key, "b", USD("0.3"), mustTime("2026-05-04T12:00:00Z"))
	mustSettle(t, l, key, "c", USD("0.2"), mustTime("2026-05-04T14:00:00Z"))

	sts := wantUsed(t, l, key, bs, t0.Add(5*time.Hour), amounts("0.9"), amounts("0"))
	if want := mustTime("2026-05-04T15:05:00Z"); !sts[0].ResetsAt.Equal(want) {
		t.Fatalf("5h resets_at %s, want %s (the oldest bucket's start + 5h05m)", sts[0].ResetsAt, want)
	}
	if want := mustTime("2026-05-04T10:00:00Z"); !sts[0].Start.Equal(want) {
		t.Fatalf("5h window at 15:02 starts %s, want %s", sts[0].Start, want)
	}
	wantUsed(t, l, key, bs, mustTime("2026-05-04T15:04:59Z"), amounts("0.9"), amounts("0"))
	sts = wantUsed(t, l, key, bs, mustTime("2026-05-04T15:05:00Z"), amounts("0.5"), amounts("0"))
	if want := mustTime("2026-05-04T17:05:00Z"); !sts[0].ResetsAt.Equal(want) {
		t.Fatalf("5h resets_at %s, want %s", sts[0].ResetsAt, want)
	}

	// A refusal says when enough has left: the 10:00 bucket frees 0.4.
	at := mustTime("2026-05-04T14:30:00Z")
	de, ref := mustRefuse(t, l, key, "d", bs, USD("0.5"), at)
	b := ref.Binding()
	if b.NoRetry || b.Busy || !b.RetryAt.Equal(mustTime("2026-05-04T15:05:00Z")) || de.RetryAfter != 35*time.Minute || de.NoRetry {
		t.Fatalf("refusal of 0.5: %+v, retry-after %v", b, de.RetryAfter)
	}
	// 0.6 needs the 12:00 bucket to leave too.
	if _, ref := mustRefuse(t, l, key, "e", bs, USD("0.6"), at); !ref.Binding().RetryAt.Equal(mustTime("2026-05-04T17:05:00Z")) {
		t.Fatalf("refusal of 0.6: %+v", ref.Binding())
	}
	mustReserve(t, l, key, "f", bs, USD("0.5"), mustTime("2026-05-04T15:05:00Z"))

	// After more than 5h05m with no spend the window is empty.
	sts = wantUsed(t, l, key, bs, mustTime("2026-05-04T20:10:00Z"), amounts("0"), amounts("0"))
	if !sts[0].ResetsAt.IsZero() {
		t.Fatalf("an empty 5h window resets at %s, want zero", sts[0].ResetsAt)
	}
}

// testDayDST: a day in America/New_York lasts 23 hours on 2026-03-08 and
// 25 on 2026-11-01, and each resets at local midnight.
func testDayDST(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	ny := zone("America/New_York")
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1"), TimeZone: "America/New_York"}}

	// Spring forward: 2026-03-08 00:00 EST is 05:00Z; 03-09 00:00 EDT is 04:00Z.
	key := newKey(t, l, mustTime("2026-03-08T05:00:00Z"))
	mustSettle(t, l, key, "a", USD("0.6"), time.Date(2026, 3, 8, 0, 30, 0, 0, ny))
	mustSettle(t, l, key, "b", USD("0.1"), time.Date(2026, 3, 8, 23, 59, 59, 0, ny))
	mustSettle(t, l, key, "c", USD("0.05"), time.Date(2026, 3, 7, 23, 59, 59, 0, ny))
	sts := wantUsed(t, l, key, bs, time.Date(2026, 3, 8, 23, 59, 59, 0, ny), amounts("0.7"), amounts("0"))
	start, end := mustTime("2026-03-08T05:00:00Z"), mustTime("2026-03-09T04:00:00Z")
	if !sts[0].Start.Equal(start) || !sts[0].End.Equal(end) || !sts[0].ResetsAt.Equal(end) {
		t.Fatalf("day of 2026-03-08: %s to %s resets %s, want %s to %s", sts[0].Start, sts[0].End, sts[0].ResetsAt, start, end)
	}
	if d := end.Sub(start); d != 23*time.Hour {
		t.Fatalf("day of 2026-03-08 lasts %v, want 23h", d)
	}
	de, ref := mustRefuse(t, l, key, "d", bs, USD("0.5"), time.Date(2026, 3, 8, 20, 0, 0, 0, ny))
	if b := ref.Binding(); !b.RetryAt.Equal(end) || de.RetryAfter != 4*time.Hour || de.NoRetry {
		t.Fatalf("refusal on 2026-03-08 at 20:00 EDT: %+v, retry-after %v", b, de.RetryAfter)
	}
	wantUsed(t, l, key, bs, end, amounts("0"), amounts("0"))
	mustReserve(t, l, key, "e", bs, USD("1"), end)

	// Fall back: 2026-11-01 00:00 EDT is 04:00Z; 11-02 00:00 EST is 05:00Z.
	key = newKey(t, l, mustTime("2026-11-01T04:00:00Z"))
	mustSettle(t, l, key, "a", USD("0.2"), mustTime("2026-11-01T05:30:00Z")) // 01:30 EDT
	mustSettle(t, l, key, "b", USD("0.3"), mustTime("2026-11-01T06:30:00Z")) // 01:30 EST
	mustSettle(t, l, key, "c", USD("0.4"), mustTime("2026-11-02T04:59:59Z")) // 23:59:59 EST
	sts = wantUsed(t, l, key, bs, mustTime("2026-11-02T04:59:59Z"), amounts("0.9"), amounts("0"))
	start, end = mustTime("2026-11-01T04:00:00Z"), mustTime("2026-11-02T05:00:00Z")
	if !sts[0].Start.Equal(start) || !sts[0].End.Equal(end) || end.Sub(start) != 25*time.Hour {
		t.Fatalf("day of 2026-11-01: %s to %s, want the 25 hours %s to %s", sts[0].Start, sts[0].End, start, end)
	}
	wantUsed(t, l, key, bs, end, amounts("0"), amounts("0"))
}

// testWeekMonth uses zones whose midnight is off the UTC hour, so the
// window edges fall on 15-minute buckets: a week in Asia/Kolkata (+5:30)
// starts on Monday 00:00, Sunday 18:30Z; a month in Asia/Kathmandu
// (+5:45) starts on the 1st at 00:00, the previous day 18:15Z.
func testWeekMonth(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	week := []budget.Budget{{Window: budget.Week, Limit: USD("1"), TimeZone: "Asia/Kolkata"}}
	key := newKey(t, l, mustTime("2026-05-31T00:00:00Z"))
	mustSettle(t, l, key, "a", USD("0.1"), mustTime("2026-05-31T18:29:59Z")) // Sunday 23:59:59 IST
	mustSettle(t, l, key, "b", USD("0.2"), mustTime("2026-05-31T18:30:00Z")) // Monday 00:00 IST
	mustSettle(t, l, key, "c", USD("0.3"), mustTime("2026-06-07T18:29:59Z")) // Sunday 23:59:59 IST
	sts := wantUsed(t, l, key, week, mustTime("2026-06-03T09:00:00Z"), amounts("0.5"), amounts("0"))
	if want := mustTime("2026-06-07T18:30:00Z"); !sts[0].Start.Equal(mustTime("2026-05-31T18:30:00Z")) || !sts[0].ResetsAt.Equal(want) {
		t.Fatalf("week: %s to %s resets %s, want from 2026-05-31T18:30Z to %s", sts[0].Start, sts[0].End, sts[0].ResetsAt, want)
	}
	wantUsed(t, l, key, week, mustTime("2026-05-31T18:29:59Z"), amounts("0.1"), amounts("0"))
	wantUsed(t, l, key, week, mustTime("2026-06-07T18:30:00Z"), amounts("0"), amounts("0"))

	month := []budget.Budget{{Window: budget.Month, Limit: USD("1"), TimeZone: "Asia/Kathmandu"}}
	key = newKey(t, l, mustTime("2026-05-31T00:00:00Z"))
	mustSettle(t, l, key, "a", USD("0.3"), mustTime("2026-05-31T18:14:59Z")) // May 31 23:59:59 NPT
	mustSettle(t, l, key, "b", USD("0.4"), mustTime("2026-05-31T18:15:00Z")) // June 1 00:00 NPT
	mustSettle(t, l, key, "c", USD("0.05"), mustTime("2026-06-30T18:14:59Z"))
	mustSettle(t, l, key, "d", USD("0.07"), mustTime("2026-06-30T18:15:00Z")) // July 1 00:00 NPT
	sts = wantUsed(t, l, key, month, mustTime("2026-06-30T18:14:59Z"), amounts("0.45"), amounts("0"))
	if start, end := mustTime("2026-05-31T18:15:00Z"), mustTime("2026-06-30T18:15:00Z"); !sts[0].Start.Equal(start) || !sts[0].End.Equal(end) {
		t.Fatalf("month of June: %s to %s, want %s to %s (30 days)", sts[0].Start, sts[0].End, start, end)
	}
	wantUsed(t, l, key, month, mustTime("2026-06-30T18:15:00Z"), amounts("0.07"), amounts("0"))
	wantUsed(t, l, key, month, mustTime("2026-05-15T00:00:00Z"), amounts("0.3"), amounts("0"))
}

// testTotal: the total window never resets, even after every bucket of
// the spend has passed its retention.
func testTotal(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	bs := []budget.Budget{{Window: budget.Total, Limit: USD("1")}}
	key := newKey(t, l, mustTime("2026-01-10T00:00:00Z"))
	mustSettle(t, l, key, "a", USD("0.6"), mustTime("2026-01-10T00:00:00Z"))
	mustSettle(t, l, key, "b", USD("0.3"), mustTime("2026-06-10T00:00:00Z"))
	sts := wantUsed(t, l, key, bs, mustTime("2026-09-01T00:00:00Z"), amounts("0.9"), amounts("0"))
	if !sts[0].ResetsAt.IsZero() || !sts[0].Start.IsZero() {
		t.Fatalf("total window %+v has a span or a reset", sts[0])
	}
	at := mustTime("2026-09-01T00:00:00Z")
	de, ref := mustRefuse(t, l, key, "c", bs, USD("0.2"), at)
	if b := ref.Binding(); !b.NoRetry || !de.NoRetry || de.RetryAfter != 0 || !b.RetryAt.IsZero() {
		t.Fatalf("total spent by settled usage: %+v, error %+v; want NoRetry and no retry-after", b, de)
	}
	// Settled usage leaves room; only a reservation is in the way: busy.
	mustReserve(t, l, key, "d", bs, USD("0.05"), at)
	de, ref = mustRefuse(t, l, key, "e", bs, USD("0.08"), at)
	if b := ref.Binding(); b.NoRetry || !b.Busy || de.NoRetry || de.RetryAfter != budget.BusyRetryAfter {
		t.Fatalf("total held by a reservation: %+v, error %+v; want busy with retry-after %v", b, de, budget.BusyRetryAfter)
	}
}

// testRefusalBinding: with several windows short, the refusal names the
// one that frees last.
func testRefusalBinding(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	bs := []budget.Budget{
		{Window: budget.Rolling5h, Limit: USD("1")},
		{Window: budget.Day, Limit: USD("1"), TimeZone: "Europe/Paris"},
		{Window: budget.Month, Limit: USD("5"), TimeZone: "Europe/Paris"},
	}
	at := mustTime("2026-05-04T10:00:00Z") // 12:00 in Paris
	key := newKey(t, l, at)
	mustSettle(t, l, key, "a", USD("0.9"), at)
	de, ref := mustRefuse(t, l, key, "b", bs, USD("0.2"), at.Add(time.Hour))
	if len(ref.Shortfalls) != 2 {
		t.Fatalf("shortfalls %+v, want the 5h and day windows", ref.Shortfalls)
	}
	b := ref.Binding()
	if want := mustTime("2026-05-04T22:00:00Z"); b.Budget.Window != budget.Day || !b.RetryAt.Equal(want) {
		t.Fatalf("binding window %+v, want the day, freeing at %s (Paris midnight)", b, want)
	}
	if de.RetryAfter != 11*time.Hour || de.NoRetry {
		t.Fatalf("retry-after %v no-retry %v, want 11h and retryable", de.RetryAfter, de.NoRetry)
	}
}

func testOverLimit(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	de, ref := mustRefuse(t, l, key, "a", bs, USD("1.5"), t0)
	if !de.NoRetry || !ref.Binding().NoRetry || de.RetryAfter != 0 {
		t.Fatalf("a request over the whole limit: %+v; want NoRetry", de)
	}
}

// testAddBudget: budgets come with each call, so one added, changed or
// removed takes effect at once, measured against the spend already there.
func testAddBudget(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	at := mustTime("2026-05-06T12:00:00Z") // a Wednesday
	key := newKey(t, l, at)
	// Spend while the key had no budget at all.
	mustReserve(t, l, key, "a", nil, USD("0.2"), at.Add(-time.Hour))
	mustSettle(t, l, key, "a", USD("0.2"), at.Add(-time.Hour))
	mustSettle(t, l, key, "b", USD("0.1"), at.Add(-8*time.Hour)) // 04:00Z, the same Paris day
	mustSettle(t, l, key, "c", USD("0.05"), mustTime("2026-05-04T08:00:00Z"))
	mustSettle(t, l, key, "d", USD("0.15"), mustTime("2026-05-02T08:00:00Z"))
	mustSettle(t, l, key, "e", USD("0.5"), mustTime("2026-04-30T08:00:00Z"))
	all := []budget.Budget{
		{Window: budget.Rolling5h, Limit: USD("10")},
		{Window: budget.Day, Limit: USD("10"), TimeZone: "Europe/Paris"},
		{Window: budget.Week, Limit: USD("10"), TimeZone: "Europe/Paris"},
		{Window: budget.Month, Limit: USD("10"), TimeZone: "Europe/Paris"},
		{Window: budget.Total, Limit: USD("10")},
	}
	wantUsed(t, l, key, all, at, amounts("0.2", "0.3", "0.35", "0.5", "1"), amounts("0", "0", "0", "0", "0"))

	// A new day budget is measured against the day's 0.3, never from zero.
	day := []budget.Budget{{Window: budget.Day, Limit: USD("0.35"), TimeZone: "Europe/Paris"}}
	mustRefuse(t, last(ls), key, "f", day, USD("0.1"), at)
	mustReserve(t, l, key, "g", day, USD("0.05"), at)
	// Raised, it admits at once; removed, nothing limits.
	day[0].Limit = USD("1")
	mustReserve(t, l, key, "f", day, USD("0.1"), at)
	mustReserve(t, l, key, "h", nil, USD("5"), at)
}

// testSeed: a seed measures persisted spend in every window, merges by
// maximum (never lowering, never counting twice what the ledger has), and
// raises the total to the persisted one.
func testSeed(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	at := mustTime("2026-07-15T12:00:00Z") // a Wednesday
	all := []budget.Budget{
		{Window: budget.Rolling5h, Limit: USD("10")},
		{Window: budget.Day, Limit: USD("10")},
		{Window: budget.Week, Limit: USD("10")},
		{Window: budget.Month, Limit: USD("10")},
		{Window: budget.Total, Limit: USD("10")},
	}
	h := budget.History{AsOf: at, Total: USD("5"), Buckets: []budget.Spend{
		{Start: mustTime("2026-07-15T11:00:00Z"), Amount: USD("0.1")},
		{Start: mustTime("2026-07-14T12:00:00Z"), Amount: USD("0.2")},
		{Start: mustTime("2026-07-02T00:00:00Z"), Amount: USD("0.3")},
		{Start: mustTime("2026-06-20T00:00:00Z"), Amount: USD("0.4")},
	}}
	key := uuid.New()
	mustSeed(t, l, key, h)
	none := amounts("0", "0", "0", "0", "0")
	wantUsed(t, last(ls), key, all, at, amounts("0.1", "0.1", "0.3", "0.6", "5"), none)

	// The ledger's own spend since: a settle in a recent bucket and one in
	// an old quarter hour (a batch settled late).
	mustSettle(t, l, key, "a", USD("0.05"), mustTime("2026-07-15T11:00:00Z"))
	mustSettle(t, l, key, "b", USD("0.1"), mustTime("2026-07-14T12:05:00Z"))
	wantUsed(t, l, key, all, at, amounts("0.15", "0.15", "0.45", "0.75", "5.15"), none)

	// A later seed that has both settlements persisted changes nothing;
	// nor does a lower one.
	h2 := budget.History{AsOf: at, Total: USD("5.15"), Buckets: []budget.Spend{
		{Start: mustTime("2026-07-15T11:00:00Z"), Amount: USD("0.15")},
		{Start: mustTime("2026-07-14T12:00:00Z"), Amount: USD("0.2")},
		{Start: mustTime("2026-07-14T12:05:00Z"), Amount: USD("0.1")},
		{Start: mustTime("2026-07-02T00:00:00Z"), Amount: USD("0.3")},
	}}
	mustSeed(t, last(ls), key, h2)
	mustSeed(t, l, key, budget.History{AsOf: at, Total: USD("1")})
	wantUsed(t, l, key, all, at, amounts("0.15", "0.15", "0.45", "0.75", "5.15"), none)

	// Spend the ledger never settled (persisted while it had forgotten the
	// key, say) raises the buckets it is in, and the total with them.
	h2.Buckets[0].Amount = USD("0.25")
	h2.Buckets[1].Amount = USD("0.3")
	mustSeed(t, l, key, h2)
	wantUsed(t, l, key, all, at, amounts("0.25", "0.25", "0.65", "0.95", "5.35"), none)
	// A persisted total above the ledger's raises it.
	h2.Total = USD("6")
	mustSeed(t, l, key, h2)
	wantUsed(t, l, key, all[4:], at, amounts("6"), amounts("0"))
}

// testReservationWindow: a reservation counts in the windows holding the
// request's time, and its settlement lands there too.
func testReservationWindow(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	late, next := mustTime("2026-05-04T23:59:00Z"), mustTime("2026-05-05T00:01:00Z")
	key := newKey(t, l, late)
	mustReserve(t, l, key, "a", bs, USD("0.9"), late)
	mustReserve(t, last(ls), key, "b", bs, USD("0.9"), next)
	wantUsed(t, l, key, bs, late, amounts("0"), amounts("0.9"))
	wantUsed(t, l, key, bs, next, amounts("0"), amounts("0.9"))
	mustSettle(t, l, key, "a", USD("0.5"), late)
	wantUsed(t, l, key, bs, late, amounts("0.5"), amounts("0"))
	wantUsed(t, l, key, bs, next, amounts("0"), amounts("0.9"))
}

// testClockAhead: a replica whose clock runs hours ahead settles; the
// rolling window of the others, on real time, keeps its oldest buckets.
// (The ledger's clock is real here: it caps how far ahead a request time
// moves retention.)
func testClockAhead(t *testing.T, ls []ports.BudgetLedger) {
	now := time.Now()
	key := newKey(t, ls[0], now)
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: USD("1")}}
	mustSettle(t, ls[0], key, "old", USD("0.1"), now.Add(-4*time.Hour-30*time.Minute))
	mustSettle(t, last(ls), key, "ahead", USD("0.2"), now.Add(3*time.Hour))
	wantUsed(t, ls[0], key, bs, now, amounts("0.1"), amounts("0"))
}

// testSeedFull seeds a busy key's whole history, a bucket every 5 minutes
// for HistorySpan, as a restart would.
func testSeedFull(t *testing.T, ls []ports.BudgetLedger) {
	at := mustTime("2026-08-20T12:00:00Z")
	h := budget.History{AsOf: at}
	for s := at.Add(-budget.HistorySpan); s.Before(at); s = s.Add(budget.BucketSize) {
		h.Buckets = append(h.Buckets, budget.Spend{Start: s, Amount: 1})
	}
	h.Total = pricing.Nanodollars(len(h.Buckets)) + USD("1") // and older spend
	key := uuid.New()
	mustSeed(t, ls[0], key, h)
	bs := []budget.Budget{
		{Window: budget.Rolling5h, Limit: USD("10")},
		{Window: budget.Day, Limit: USD("10")},
		{Window: budget.Week, Limit: USD("10"), TimeZone: "Asia/Kolkata"},
		{Window: budget.Month, Limit: USD("10")},
		{Window: budget.Total, Limit: USD("10")},
	}
	// 5h: 07:00 to 11:55. Day: 00:00 to 11:55. Week: from Monday 17 August
	// 00:00 IST (16 August 18:30Z). Month: from 1 August.
	week := int64(at.Sub(mustTime("2026-08-16T18:30:00Z")) / budget.BucketSize)
	wantUsed(t, last(ls), key, bs, at,
		[]pricing.Nanodollars{60, 144, pricing.Nanodollars(week), 19*288 + 144, h.Total},
		amounts("0", "0", "0", "0", "0"))
	// Seeding it again changes nothing.
	mustSeed(t, ls[0], key, h)
	wantUsed(t, ls[0], key, bs[3:], at, []pricing.Nanodollars{19*288 + 144, h.Total}, amounts("0", "0"))
}

func testReset(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Total, Limit: USD("1")}}
	mustReserve(t, l, key, "a", bs, USD("0.3"), t0)
	mustSettle(t, l, key, "b", USD("0.2"), t0)
	if err := last(ls).Reset(ctxT(t), key); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if _, err := l.State(ctxT(t), key, bs, t0); !errors.Is(err, ports.ErrUnseeded) {
		t.Fatalf("State after Reset: %v, want ErrUnseeded", err)
	}
	mustSeed(t, l, key, budget.History{AsOf: t0, Total: USD("0.05")})
	wantUsed(t, l, key, bs, t0, amounts("0.05"), amounts("0"))
	if err := l.Reset(ctxT(t), uuid.New()); err != nil {
		t.Fatalf("Reset of an unknown key: %v", err)
	}
}

func testKeysIndependent(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	a, b := newKey(t, l, t0), newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	mustReserve(t, l, a, "x", bs, USD("1"), t0)
	mustReserve(t, l, b, "x", bs, USD("1"), t0)
	mustSettle(t, l, a, "x", USD("0.01"), t0)
	wantUsed(t, l, a, bs, t0, amounts("0.01"), amounts("0"))
	wantUsed(t, l, b, bs, t0, amounts("0"), amounts("1"))
}

func testRejectsInvalid(t *testing.T, ls []ports.BudgetLedger) {
	l := ls[0]
	key := newKey(t, l, t0)
	ok := []budget.Budget{{Window: budget.Day, Limit: USD("1")}}
	invalid := func(what string, err error) {
		t.Helper()
		if domain.KindOf(err) != domain.KindInvalid {
			t.Fatalf("%s: err = %v, want kind invalid", what, err)
		}
	}
	_, err := l.Reserve(ctxT(t), key, "a", ok, -1, t0, lease)
	invalid("negative reservation", err)
	_, err = l.Reserve(ctxT(t), key, "a", []budget.Budget{{Window: "hour", Limit: 1}}, 1, t0, lease)
	invalid("unknown window", err)
	_, err = l.Reserve(ctxT(t), key, "a", []budget.Budget{ok[0], ok[0]}, 1, t0, lease)
	invalid("two day budgets in one zone", err)
	_, err = l.Reserve(ctxT(t), key, "a", ok, 1, time.Time{}, lease)
	invalid("no request time", err)
	_, err = l.State(ctxT(t), key, []budget.Budget{{Window: budget.Day, Limit: 1, TimeZone: "Mars/Olympus"}}, t0)
	invalid("unknown zone", err)
	invalid("negative settlement", l.Settle(ctxT(t), key, "a", -1, t0))
	invalid("misaligned seed bucket", l.Seed(ctxT(t), key, budget.History{AsOf: t0,
		Buckets: []budget.Spend{{Start: t0, Amount: 1}}}))
	wantUsed(t, l, key, ok, t0, amounts("0"), amounts("0"))
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

func testLeaseExpiry(t *testing.T, ls []ports.BudgetLedger) {
	t.Parallel()
	const short = 500 * time.Millisecond
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Day, Limit: USD("1")}, {Window: budget.Total, Limit: USD("1")}}
	// A replica reserves the whole budget with a short lease, then crashes.
	start := time.Now()
	if _, err := last(ls).Reserve(ctxT(t), key, "crashed", bs, USD("1"), t0, short); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	_, err := l.Reserve(ctxT(t), key, "blocked", bs, 1, t0, lease)
	switch {
	case domain.KindOf(err) == domain.KindQuotaExceeded:
	case err == nil && time.Since(start) >= short:
		// The machine stalled past the lease; tidy up and go on.
		mustSettle(t, l, key, "blocked", 0, t0)
	default:
		t.Fatalf("Reserve while the budget is held: %v", err)
	}
	eventually(t, 10*time.Second, "lease expiry", func() bool {
		return mustState(t, l, key, bs, t0)[0].Reserved == 0
	})
	mustReserve(t, l, key, "after", bs, USD("0.9"), t0)
	// A late settlement of the expired reservation still counts what was spent.
	mustSettle(t, l, key, "crashed", USD("0.03"), t0)
	wantUsed(t, l, key, bs, t0, amounts("0.03", "0.03"), amounts("0.9", "0.9"))
}

func testExtend(t *testing.T, ls []ports.BudgetLedger) {
	t.Parallel()
	const short = 400 * time.Millisecond
	l := ls[0]
	key := newKey(t, l, t0)
	bs := []budget.Budget{{Window: budget.Rolling5h, Limit: USD("1")}}
	if _, err := l.Reserve(ctxT(t), key, "live", bs, USD("1"), t0, short); err != nil {
		t.Fatalf("Reserve: %v", err)
	}
	// Another replica extends it: the stream is still running.
	if err := last(ls).Extend(ctxT(t), key, "live", time.Minute); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	time.Sleep(2 * short)
	if _, err := l.Reserve(ctxT(t), key, "other", bs, 1, t0, lease); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("the extended reservation stopped holding the budget: %v", err)
	}
	mustSettle(t, l, key, "live", USD("0.3"), t0)
	// Extending a settled or unknown reservation, or an unknown key, is a no-op.
	if err := l.Extend(ctxT(t), key, "live", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := l.Extend(ctxT(t), uuid.New(), "nothing", time.Minute); err != nil {
		t.Fatal(err)
	}
	wantUsed(t, l, key, bs, t0, amounts("0.3"), amounts("0"))
}

// testNoOverspend: 50 concurrent requests of random upper bounds against a
// $1 budget in every window, spread over the replicas, then settled at or
// below their reservation on another replica. The budget is never
// exceeded, no request is refused that would have fitted, and at least
// half the budget is spent.
func testNoOverspend(t *testing.T, ls []ports.BudgetLedger) {
	limit := USD("1")
	bs := []budget.Budget{
		{Window: budget.Rolling5h, Limit: limit},
		{Window: budget.Day, Limit: limit, TimeZone: "America/New_York"},
		{Window: budget.Month, Limit: limit, TimeZone: "Asia/Kathmandu"},
		{Window: budget.Total, Limit: limit},
	}
	for round, pre := range []pricing.Nanodollars{0, USD("0.1"), USD("0.25")} {
		at := t0.Add(time.Duration(round) * time.Minute)
		key := newKey(t, ls[0], at)
		if pre > 0 {
			mustSettle(t, ls[0], key, "pre", pre, at)
		}

		// Phase 1: 50 concurrent reservations of $0.02 to $0.06.
		type outcome struct {
			id       string
			amount   pricing.Nanodollars
			admitted bool
			err      error
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		out := make([]outcome, 50)
		for i := range out {
			out[i] = outcome{id: fmt.Sprintf("r%d", i), amount: USD("0.02") + pricing.Nanodollars(rand.Int64N(int64(USD("0.04"))+1))}
			wg.Go(func() {
				<-start
				_, err := ls[i%len(ls)].Reserve(context.Background(), key, out[i].id, bs, out[i].amount, at, lease)
				if domain.KindOf(err) == domain.KindQuotaExceeded {
					return
				}
				out[i].admitted, out[i].err = err == nil, err
			})
		}
		close(start)
		wg.Wait()
		var admitted pricing.Nanodollars
		var n int
		for _, o := range out {
			if o.err != nil {
				t.Fatalf("round %d: Reserve: %v", round, o.err)
			}
			if o.admitted {
				admitted += o.amount
				n++
			}
		}
		if pre+admitted > limit {
			t.Fatalf("round %d: admitted %s on top of %s used: past the limit %s", round, admitted, pre, limit)
		}
		if n == 0 || n == 50 {
			t.Fatalf("round %d: %d of 50 admitted; want some admitted and some refused", round, n)
		}
		sts := mustState(t, ls[0], key, bs, at)
		for i, s := range sts {
			if s.Used != pre || s.Reserved != admitted {
				t.Fatalf("round %d: %s window %+v after admitting %s", round, bs[i], s, admitted)
			}
		}
		// Reservations only grew in phase 1, so a refused request would not
		// have fitted even at its end: none was refused wrongly.
		for _, o := range out {
			if !o.admitted && o.amount <= sts[0].Remaining() {
				t.Fatalf("round %d: %s (%s) refused although %s remain", round, o.id, o.amount, sts[0].Remaining())
			}
		}

		// Phase 2: settle every admitted one concurrently, at 60% to 100%
		// of its reservation.
		var actual atomic.Int64
		errs := make(chan error, len(out))
		for i, o := range out {
			if !o.admitted {
				continue
			}
			wg.Go(func() {
				act := o.amount*6/10 + pricing.Nanodollars(rand.Int64N(int64(o.amount*4/10)+1))
				actual.Add(int64(act))
				errs <- ls[(i+1)%len(ls)].Settle(context.Background(), key, o.id, act, at)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: Settle: %v", round, err)
			}
		}
		used := pre + pricing.Nanodollars(actual.Load())
		for i, s := range mustState(t, ls[0], key, bs, at) {
			if s.Used != used || s.Reserved != 0 {
				t.Fatalf("round %d: %s window %+v, want used %s and nothing reserved", round, bs[i], s, used)
			}
		}
		if used > limit {
			t.Fatalf("round %d: used %s past the limit %s", round, used, limit)
		}
		if used < limit/2 {
			t.Fatalf("round %d: used only %s of %s: admission stranded more than half the budget", round, used, limit)
		}
	}
}

func testExactSum(t *testing.T, ls []ports.BudgetLedger) {
	key := newKey(t, ls[0], t0)
	bs := []budget.Budget{
		{Window: budget.Rolling5h, Limit: budget.MaxLimit},
		{Window: budget.Week, Limit: budget.MaxLimit},
		{Window: budget.Total, Limit: budget.MaxLimit},
	}
	const n = 500
	mustSettle(t, ls[0], key, "base", USD("1"), t0)
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
			if _, err := ls[i%len(ls)].Reserve(context.Background(), key, id, bs, USD("0.5"), t0, lease); err != nil {
				errs <- err
				return
			}
			act := pricing.Nanodollars(1 + i%37*1_000_003)
			sum.Add(int64(act))
			if err := ls[(i+1)%len(ls)].Settle(context.Background(), key, id, act, t0); err != nil {
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
	want := USD("1") + pricing.Nanodollars(sum.Load())
	wantUsed(t, ls[0], key, bs, t0, []pricing.Nanodollars{want, want, want}, amounts("0", "0", "0"))
}
