package budget

import (
	"sync"
	"sync/atomic"
	"time"
)

// BucketStart is the start of the 5-minute bucket holding t.
func BucketStart(t time.Time) time.Time {
	return time.Unix(floorDiv(t.Unix(), bucketSeconds)*bucketSeconds, 0).UTC()
}

const bucketSeconds = int64(BucketSize / time.Second)

// RollingRange is the rolling window at t as 5-minute bucket indices
// (Index(Level5m, ·)), oldest first: last holds t, first = last − 60.
func RollingRange(t time.Time) (first, last int64) {
	last = floorDiv(t.Unix(), bucketSeconds)
	return last - (RollingBuckets - 1), last
}

// Span is the window of b that holds t: [start, end). For total both are
// zero (it has no bounds). For 5h it is the 61 buckets of RollingRange.
// Calendar spans are in b's zone; b must be valid.
func (b Budget) Span(t time.Time) (start, end time.Time) {
	if b.Window.Calendar() {
		sp := b.calendarSpan(t)
		return sp.start, sp.end
	}
	return b.span(t)
}

// SpanCover is Span with, for a calendar window, its Cover. The cover is
// shared: callers must not modify it.
func (b Budget) SpanCover(t time.Time) (start, end time.Time, cover []Bucket) {
	if b.Window.Calendar() {
		sp := b.calendarSpan(t)
		return sp.start, sp.end, sp.cover
	}
	start, end = b.span(t)
	return start, end, nil
}

// calendarSpan is the calendar window holding t with its cover. The last
// one computed for each window and zone is kept: every request of a day
// falls in the same span, and computing it (zone arithmetic, the cover)
// is most of what measuring a window costs. A span is a pure function of
// (window, zone, t), so the cache can only ever answer what Span would.
func (b Budget) calendarSpan(t time.Time) *calSpan {
	k := spanKey{b.Window, b.TimeZone}
	slot, ok := spans.Load(k)
	if !ok {
		slot, _ = spans.LoadOrStore(k, new(atomic.Pointer[calSpan]))
	}
	p := slot.(*atomic.Pointer[calSpan])
	if sp := p.Load(); sp != nil && !t.Before(sp.start) && t.Before(sp.end) {
		return sp
	}
	start, end := b.span(t)
	sp := &calSpan{start: start, end: end, cover: Cover(start, end)}
	p.Store(sp)
	return sp
}

type spanKey struct {
	w    Window
	zone string
}

type calSpan struct {
	start, end time.Time
	cover      []Bucket
}

// spans holds one *atomic.Pointer[calSpan] per window and zone: a few
// hundred at most (three windows times the zones in use).
var spans sync.Map

func (b Budget) span(t time.Time) (start, end time.Time) {
	switch b.Window {
	case Rolling5h:
		s := BucketStart(t)
		return s.Add(-(RollingBuckets - 1) * BucketSize), s.Add(BucketSize)
	case Day, Week, Month:
		loc := b.location()
		y, m, d := t.In(loc).Date()
		switch b.Window {
		case Week:
			// time.Weekday counts from Sunday; ISO weeks start on Monday.
			back := (int(t.In(loc).Weekday()) + 6) % 7
			start, end = dayStart(y, m, d-back, loc), dayStart(y, m, d-back+7, loc)
		case Month:
			start, end = dayStart(y, m, 1, loc), dayStart(y, m+1, 1, loc)
		default:
			start, end = dayStart(y, m, d, loc), dayStart(y, m, d+1, loc)
		}
		// A zone whose dates repeat or skip around a transition could put
		// t's label on either side; keep t inside its span whatever happens.
		for !t.Before(end) {
			start, end = end, b.next(end, loc)
		}
		for t.Before(start) {
			end, start = start, b.prev(start, loc)
		}
		return start, end
	}
	return time.Time{}, time.Time{}
}

// next is the end of the calendar window starting at s.
func (b Budget) next(s time.Time, loc *time.Location) time.Time {
	y, m, d := s.In(loc).Date()
	switch b.Window {
	case Week:
		return dayStart(y, m, d+7, loc)
	case Month:
		return dayStart(y, m+1, 1, loc)
	}
	return dayStart(y, m, d+1, loc)
}

// prev is the start of the calendar window ending at e.
func (b Budget) prev(e time.Time, loc *time.Location) time.Time {
	y, m, d := e.Add(-time.Nanosecond).In(loc).Date()
	switch b.Window {
	case Week:
		return dayStart(y, m, d-6, loc)
	case Month:
		return dayStart(y, m, 1, loc)
	}
	return dayStart(y, m, d, loc)
}

// ResetsAt is when the calendar window holding t ends; zero for total and
// 5h (a rolling window's reset depends on its usage: see Status.ResetsAt).
func (b Budget) ResetsAt(t time.Time) time.Time {
	if !b.Window.Calendar() {
		return time.Time{}
	}
	_, end := b.Span(t)
	return end
}

// dayStart is the first instant of local date y-m-d in loc (y, m, d are
// normalised as time.Date does). time.Date leaves the choice open where
// midnight is skipped or repeated, and does pick the previous evening where
// a zone jumps over midnight (America/Santiago), so the result is checked.
func dayStart(y int, m time.Month, d int, loc *time.Location) time.Time {
	y, m, d = time.Date(y, m, d, 12, 0, 0, 0, time.UTC).Date()
	c := time.Date(y, m, d, 0, 0, 0, 0, loc)
	for range 4 {
		if dateCmp(c.In(loc), y, m, d) < 0 {
			// Midnight was skipped: the day begins when the zone period
			// holding c ends.
			_, end := c.ZoneBounds()
			if end.IsZero() || !end.After(c) {
				break
			}
			c = end
			continue
		}
		p := c.Add(-time.Nanosecond)
		if dateCmp(p.In(loc), y, m, d) == 0 {
			// Midnight repeated and c is the later one: take the earlier,
			// under the offset in force just before c.
			_, off := p.Zone()
			e := time.Date(y, m, d, 0, 0, 0, 0, time.FixedZone("", off))
			if !e.Before(c) {
				break
			}
			c = e
			continue
		}
		break
	}
	return c
}

func dateCmp(t time.Time, y int, m time.Month, d int) int {
	ty, tm, td := t.Date()
	switch {
	case ty != y:
		return cmpInt(ty, y)
	case tm != m:
		return cmpInt(int(tm), int(m))
	}
	return cmpInt(td, d)
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// floorDiv is a/b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}
