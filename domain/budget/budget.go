// Package budget holds a key's money budgets: limits in USD over a window
// (a rolling 5 hours; a calendar day, week or month in a time zone; all
// time), the pure math of those windows, and the rules a ledger applies when
// it admits, measures and refuses spend against them.
//
// It is its own package because money is domain/pricing's Nanodollars, and
// domain/pricing imports domain: package domain cannot import it back.
//
// # Windows
//
//   - "5h" is rolling, made of 5-minute buckets (BucketSize) aligned to the
//     Unix epoch. At time t it covers the bucket holding t and the 60 before
//     it (RollingBuckets = 61): from BucketStart(t) − 5h to BucketStart(t) +
//     5min. Usage recorded in a bucket counts until 5h05m after the
//     bucket's start: it always counts for at least 5 hours (between 5h and
//     5h05m), so the spend of any 5 hours never exceeds the limit, and the
//     window slides in 5-minute steps, never as a fixed block.
//   - "day", "week" and "month" are calendar windows in the budget's time
//     zone (an IANA name; empty means the relay's default, which the caller
//     fills in with WithDefaultZone, and UTC when it is left empty). A day
//     runs from one local midnight to the next, so it lasts 23 or 25 hours
//     across a DST change; a week starts on Monday at local midnight (ISO
//     8601); a month starts at local midnight on the 1st and lasts as many
//     days as the month has. Where a zone skips midnight, the day starts at
//     the first instant that is on it.
//   - "total" never resets.
//
// # Money
//
// Amounts are exact integer nanodollars. A limit is at most MaxLimit, about
// $9 million, so every sum a ledger checks against a limit is exact even
// where it is computed in a double (Redis Lua).
package budget

import (
	"fmt"
	"sync"
	"time"
	// Windows must not depend on whether the host has zoneinfo files: the
	// embedded copy is used when it has none.
	_ "time/tzdata"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
)

// Window is the closed set of budget windows.
type Window string

const (
	Rolling5h Window = "5h"
	Day       Window = "day"
	Week      Window = "week"
	Month     Window = "month"
	Total     Window = "total"
)

// Validate reports whether w is one of the windows.
func (w Window) Validate() error {
	switch w {
	case Rolling5h, Day, Week, Month, Total:
		return nil
	}
	return domain.Invalidf("budget window %q: want one of 5h, day, week, month, total", string(w))
}

// Calendar reports whether w is measured in a time zone: day, week, month.
func (w Window) Calendar() bool { return w == Day || w == Week || w == Month }

const (
	// BucketSize is the step of the rolling window.
	BucketSize = 5 * time.Minute
	// RollingBuckets is how many buckets the rolling window covers: the one
	// holding now and the 60 before it.
	RollingBuckets = 61
	// RollingSpan is how long after its bucket's start usage leaves the
	// rolling window.
	RollingSpan = RollingBuckets * BucketSize
	// MaxBudgets is how many budgets one key may carry.
	MaxBudgets = 8
	// MaxLimit is the largest limit (2⁵³−1 nanodollars, about $9 million):
	// below it a double holds every sum exactly.
	MaxLimit pricing.Nanodollars = 1<<53 - 1
)

// Budget is one money limit of a key.
type Budget struct {
	Window Window
	Limit  pricing.Nanodollars
	// TimeZone is the IANA zone of a calendar window; empty means the
	// relay's default (see WithDefaultZone). It must be empty for 5h and
	// total, which no zone changes.
	TimeZone string
}

// String names the budget for messages: "day (Europe/Paris)", "5h".
func (b Budget) String() string {
	if b.Window.Calendar() {
		z := b.TimeZone
		if z == "" {
			z = "UTC"
		}
		return fmt.Sprintf("%s (%s)", b.Window, z)
	}
	return string(b.Window)
}

// Validate checks the window, the limit (more than zero, at most MaxLimit)
// and the zone (loadable, and only on calendar windows).
func (b Budget) Validate() error {
	if err := b.Window.Validate(); err != nil {
		return err
	}
	if b.Limit <= 0 || b.Limit > MaxLimit {
		return domain.Invalidf("%s budget: limit_usd must be more than 0 and at most %s", b.Window, FormatUSD(MaxLimit))
	}
	if b.TimeZone != "" && !b.Window.Calendar() {
		return domain.Invalidf("%s budget: time_zone applies only to day, week and month windows", b.Window)
	}
	if _, err := LoadZone(b.TimeZone); err != nil {
		return err
	}
	return nil
}

// ValidateList checks a key's budgets: each valid, at most MaxBudgets, and
// no two with the same window and zone.
func ValidateList(bs []Budget) error {
	if len(bs) > MaxBudgets {
		return domain.Invalidf("a key may carry at most %d budgets, got %d", MaxBudgets, len(bs))
	}
	for i, b := range bs {
		if err := b.Validate(); err != nil {
			return err
		}
		for _, o := range bs[:i] {
			if o.Window == b.Window && o.TimeZone == b.TimeZone {
				return domain.Invalidf("two %s budgets: a key may carry one budget per window and time zone", b)
			}
		}
	}
	return nil
}

// WithDefaultZone returns a copy of bs in which calendar budgets without a
// zone have zone.
func WithDefaultZone(bs []Budget, zone string) []Budget {
	out := make([]Budget, len(bs))
	for i, b := range bs {
		if b.Window.Calendar() && b.TimeZone == "" {
			b.TimeZone = zone
		}
		out[i] = b
	}
	return out
}

// zones caches loaded locations: time.LoadLocation reads and parses a file
// each time. Only names that loaded are kept, so it holds at most the few
// hundred zones there are.
var zones sync.Map // string -> *time.Location

// LoadZone returns the location of an IANA zone name, UTC for "". "Local"
// is refused: it would mean a different zone on each host.
func LoadZone(name string) (*time.Location, error) {
	switch name {
	case "", "UTC":
		return time.UTC, nil
	case "Local":
		return nil, domain.Invalidf("time_zone %q: want an IANA zone name such as Europe/Paris", name)
	}
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		e := domain.Invalidf("time_zone %q: not a known IANA zone name", name)
		e.Err = err
		return nil, e
	}
	zones.Store(name, loc)
	return loc, nil
}

// location is b's zone; a budget that failed Validate is measured in UTC.
func (b Budget) location() *time.Location {
	loc, err := LoadZone(b.TimeZone)
	if err != nil {
		return time.UTC
	}
	return loc
}

// FormatUSD writes an amount for messages: "$1.250000".
func FormatUSD(n pricing.Nanodollars) string { return "$" + pricing.FormatUSD(n) }

// FromKey is a key's stored budgets as Budgets, with zone filled in for
// calendar budgets that name none. A stored budget whose window is unknown
// (a row written by a newer relay) is kept as it is: Validate refuses it,
// and ledgers measure nothing against it, so admission refuses the key
// rather than ignore a limit.
func FromKey(kb []domain.KeyBudget, zone string) []Budget {
	if len(kb) == 0 {
		return nil
	}
	out := make([]Budget, len(kb))
	for i, b := range kb {
		out[i] = Budget{Window: Window(b.Window), Limit: b.Limit, TimeZone: b.TimeZone}
		if out[i].Window.Calendar() && out[i].TimeZone == "" {
			out[i].TimeZone = zone
		}
	}
	return out
}

// ToKey is bs as a key stores them.
func ToKey(bs []Budget) []domain.KeyBudget {
	if len(bs) == 0 {
		return nil
	}
	out := make([]domain.KeyBudget, len(bs))
	for i, b := range bs {
		out[i] = domain.KeyBudget{Window: string(b.Window), Limit: b.Limit, TimeZone: b.TimeZone}
	}
	return out
}
