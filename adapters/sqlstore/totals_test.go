package sqlstore

import (
	"math/rand/v2"
	"testing"
	"time"
)

// keyParts must count every microsecond of [from, to) exactly once and
// nothing else: whole days through the months and the days added or
// subtracted, partial days through the records. The statement's sums are
// then exact whichever way a range is cut; this checks the cutting, day by
// day, over random ranges across months (the contract suite checks the
// sums on both engines).
func TestKeyPartsCoverRange(t *testing.T) {
	t.Parallel()
	const day = 24 * time.Hour
	now := time.Date(2026, 3, 17, 9, 30, 0, 0, time.UTC)
	start := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	randTime := func() time.Time {
		at := start.Add(time.Duration(rng.Int64N(int64(200 * day))))
		switch rng.IntN(5) {
		case 0:
			return at.Truncate(day)
		case 1:
			return time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, time.UTC)
		case 2:
			return at.Truncate(time.Hour)
		}
		return at.Truncate(time.Microsecond)
	}
	in := func(t time.Time, r [2]time.Time) bool {
		return !r[0].IsZero() && !t.Before(r[0]) && t.Before(r[1])
	}
	inMonths := func(t time.Time, p keyParts) bool { return !t.Before(p.fromMonth) && t.Before(p.toMonth) }
	var plus, minus, minusRecords int
	for range 3000 {
		from, to := randTime(), randTime()
		if to.Before(from) {
			from, to = to, from
		}
		switch rng.IntN(6) {
		case 0:
			from = time.Time{}
		case 1:
			to = time.Time{}
		}
		p := newKeyParts(from, to, now)
		for _, r := range p.plus {
			if !r[0].IsZero() {
				plus++
			}
		}
		for _, r := range p.minus {
			if !r[0].IsZero() {
				minus++
			}
		}
		for _, r := range p.minusRecords {
			if !r[0].IsZero() {
				minusRecords++
			}
		}
		// Every day, and a moment inside it, from before the window to
		// after it.
		for d := start.Add(-40 * day); d.Before(start.Add(240 * day)); d = d.Add(day) {
			for _, at := range []time.Time{d, d.Add(3*time.Hour + 1), d.Add(13*time.Hour + 7*time.Minute), d.Add(day - time.Microsecond)} {
				want := (from.IsZero() || !at.Before(from)) && (to.IsZero() || at.Before(to))
				n := 0
				for _, r := range p.records {
					if in(at, r) {
						n++
					}
				}
				for _, r := range p.minusRecords {
					if in(at, r) {
						n--
					}
				}
				// Days and months count whole days.
				dayOf := at.Truncate(day)
				if inMonths(dayOf, p) {
					n++
				}
				for _, r := range p.plus {
					if in(dayOf, r) {
						n++
					}
				}
				for _, r := range p.minus {
					if in(dayOf, r) {
						n--
					}
				}
				if got := n == 1; got != want || n < 0 || n > 1 {
					t.Fatalf("[%v, %v) %+v: %v counted %d times, want in range = %v", from, to, p, at, n, want)
				}
			}
		}
	}
	if plus == 0 || minus == 0 || minusRecords == 0 {
		t.Fatalf("days added %d times and subtracted %d, records subtracted %d: every way must be exercised", plus, minus, minusRecords)
	}
}

// The parts of the dashboard's ranges read few days.
func TestKeyPartsCheap(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 16, 14, 37, 0, 0, time.UTC)
	tomorrow := time.Date(2026, 12, 17, 0, 0, 0, 0, time.UTC)
	// days counts the days that can hold records: none after today.
	days := func(r [2]time.Time) int {
		if r[1].After(tomorrow) {
			r[1] = tomorrow
		}
		return int(max(r[1].Sub(r[0]), 0) / (24 * time.Hour))
	}
	for _, span := range []int{7, 30, 90} {
		p := newKeyParts(now.AddDate(0, 0, -span), now, now)
		n := days(p.plus[0]) + days(p.plus[1]) + days(p.minus[0]) + days(p.minus[1])
		if n > 15 {
			t.Errorf("the last %d days read %d days of the rollup per upstream: %+v", span, n, p)
		}
	}
	// Up to now in the middle of a month: the month less its days after
	// today and less the records after now (none of them hold any), rather
	// than its first fifteen days and today's records.
	p := newKeyParts(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), now, now)
	if days(p.minus[1]) != 0 || days(p.plus[1]) != 0 || !p.records[1][0].IsZero() || !p.minusRecords[1][0].Equal(now) ||
		!p.toMonth.Equal(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("up to the middle of the month: %+v", p)
	}
}
