package budget

import (
	"fmt"
	"strings"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pricing"
)

// Measure is what a ledger read of one budget's window at one moment.
type Measure struct {
	Used     pricing.Nanodollars // settled spend in the window
	Reserved pricing.Nanodollars // held by reservations made in the window
	// Buckets is, for a 5h window only, the settled plus reserved amount
	// of each of its RollingBuckets buckets, oldest first (a reservation
	// from a clock ahead of the caller's is in the last).
	Buckets []pricing.Nanodollars
}

// Status is one budget's window as the quota view shows it.
type Status struct {
	Budget     Budget
	Start, End time.Time // the window's span; zero for total
	Used       pricing.Nanodollars
	Reserved   pricing.Nanodollars
	// ResetsAt is when usage next leaves the window: the end of a
	// calendar window; for 5h, when the oldest bucket holding usage or a
	// reservation leaves (its start + RollingSpan), zero when it is
	// empty; zero for total, which never resets.
	ResetsAt time.Time
}

// Remaining is what the window can still take: limit − used − reserved,
// never below zero.
func (s Status) Remaining() pricing.Nanodollars {
	if s.Used >= s.Budget.Limit {
		return 0
	}
	r := s.Budget.Limit - s.Used
	if s.Reserved >= r {
		return 0
	}
	return r - s.Reserved
}

// Fits reports whether amount fits in the window beside what is used and
// reserved. Ledgers admit a reservation only when it fits every window.
func (s Status) Fits(amount pricing.Nanodollars) bool {
	// Written so that no subtraction can overflow.
	return s.Used <= s.Budget.Limit && s.Reserved <= s.Budget.Limit-s.Used &&
		amount <= s.Budget.Limit-s.Used-s.Reserved
}

// Status is b's window at t, from what the ledger measured.
func (b Budget) Status(t time.Time, m Measure) Status {
	s := Status{Budget: b, Used: m.Used, Reserved: m.Reserved}
	if b.Window == Total {
		return s
	}
	s.Start, s.End = b.Span(t)
	s.ResetsAt = s.End
	if b.Window == Rolling5h {
		s.ResetsAt = time.Time{}
		for i, v := range m.Buckets {
			if v > 0 {
				s.ResetsAt = s.Start.Add(time.Duration(i)*BucketSize + RollingSpan)
				break
			}
		}
	}
	return s
}

// Shortfall is a window that cannot cover a reservation.
type Shortfall struct {
	Status
	Amount pricing.Nanodollars // what the refused request needed
	// NoRetry: no wait makes it fit. The amount is over the limit, or the
	// window is total and its settled spend leaves too little.
	NoRetry bool
	// Busy: the settled spend leaves room; reservations of requests in
	// flight are in the way, and may free it as soon as they settle.
	Busy bool
	// RetryAt is the earliest time the window frees enough, counting only
	// usage and reservations leaving it as time passes: the end of a
	// calendar window; for 5h, when enough of the oldest buckets have left
	// (start + RollingSpan of the last of them). Zero when waiting does not
	// help (NoRetry), or for a total window that is Busy.
	RetryAt time.Time
}

// Check measures b's window at t and reports whether amount fits; when it
// does not, the Shortfall says why and until when.
func (b Budget) Check(t time.Time, m Measure, amount pricing.Nanodollars) (Status, *Shortfall) {
	s := b.Status(t, m)
	if s.Fits(amount) {
		return s, nil
	}
	sf := &Shortfall{Status: s, Amount: amount}
	settledRoom := s.Used <= b.Limit && amount <= b.Limit-s.Used
	switch {
	case amount > b.Limit, b.Window == Total && !settledRoom:
		sf.NoRetry = true
		return s, sf
	case settledRoom:
		sf.Busy = true
	}
	switch b.Window {
	case Day, Week, Month:
		sf.RetryAt = s.End
	case Rolling5h:
		need := s.Used + s.Reserved + amount - b.Limit
		var freed pricing.Nanodollars
		for i, v := range m.Buckets {
			freed += v
			if freed >= need {
				sf.RetryAt = s.Start.Add(time.Duration(i)*BucketSize + RollingSpan)
				break
			}
		}
		if sf.RetryAt.IsZero() {
			// Reservations outside the buckets (none, unless a clock ran
			// ahead): by then every bucket seen now has left.
			sf.RetryAt = s.End.Add(RollingSpan - BucketSize)
		}
	}
	return s, sf
}

// BusyRetryAfter is the retry-after of a refusal that waits only on
// requests in flight, as for the token quota.
const BusyRetryAfter = 5 * time.Second

// Refusal is the cause carried by a budget refusal: every window that could
// not cover the amount. errors.As finds it in a ledger's error.
type Refusal struct {
	At         time.Time   // the time the windows were measured at
	Shortfalls []Shortfall // in the order of the budgets
}

func (r *Refusal) Error() string {
	names := make([]string, len(r.Shortfalls))
	for i, s := range r.Shortfalls {
		names[i] = s.Budget.String()
	}
	return "short budgets: " + strings.Join(names, ", ")
}

// Binding is the window that frees last, so the one a refusal names: one
// that never frees, else the latest RetryAt among those that wait for
// time, else the first busy one.
func (r *Refusal) Binding() Shortfall {
	best := r.Shortfalls[0]
	rank := func(s Shortfall) int {
		switch {
		case s.NoRetry:
			return 2
		case !s.Busy:
			return 1
		}
		return 0
	}
	for _, s := range r.Shortfalls[1:] {
		switch rs, rb := rank(s), rank(best); {
		case rs > rb:
			best = s
		case rs == rb && rs == 1 && s.RetryAt.After(best.RetryAt):
			best = s
		}
	}
	return best
}

// Refuse is the error a ledger returns when a reservation does not fit: of
// kind KindQuotaExceeded, naming the binding window, with RetryAfter until
// it frees (BusyRetryAfter at most when only requests in flight are in the
// way) and NoRetry when it never does. It wraps the *Refusal. shortfalls
// must not be empty.
func Refuse(at time.Time, shortfalls []Shortfall) *domain.Error {
	r := &Refusal{At: at, Shortfalls: shortfalls}
	b := r.Binding()
	e := &domain.Error{Kind: domain.KindQuotaExceeded, Reason: domain.ReasonBudget, NoRetry: b.NoRetry, Err: r}
	if !b.RetryAt.IsZero() {
		// Whole seconds, rounded up: retry-after is in seconds, and early
		// is wrong.
		e.RetryAfter = (b.RetryAt.Sub(at) + time.Second - 1).Truncate(time.Second)
	}
	if b.Busy && (e.RetryAfter == 0 || e.RetryAfter > BusyRetryAfter) {
		e.RetryAfter = BusyRetryAfter
	}
	var msg strings.Builder
	fmt.Fprintf(&msg, "money budget exhausted: the %s budget of %s has %s left", b.Budget, FormatUSD(b.Budget.Limit), FormatUSD(b.Remaining()))
	if b.Reserved > 0 {
		fmt.Fprintf(&msg, " (%s held by requests in flight)", FormatUSD(b.Reserved))
	}
	fmt.Fprintf(&msg, ", and this request may cost up to %s", FormatUSD(b.Amount))
	switch {
	case b.Amount > b.Budget.Limit:
		msg.WriteString("; that is more than the whole budget")
	case b.NoRetry:
		msg.WriteString("; it never resets")
	case b.Busy:
		msg.WriteString("; retry when requests in flight finish")
	default:
		fmt.Fprintf(&msg, "; enough frees up at %s", b.RetryAt.In(b.Budget.location()).Format(time.RFC3339))
	}
	e.Message = msg.String()
	return e
}
