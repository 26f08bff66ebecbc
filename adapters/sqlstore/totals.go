package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

// Totals are read from sources that are each exact for what they cover:
// the records themselves (any range, but a row per request), the daily
// rollups per key (whole UTC days; a row per key, day and model or
// upstream), the global rollups (whole UTC hours of every key, a row per
// hour; whole days per model and upstream, a few rows a day) and the
// monthly rollup per key. Store.UsageTotals splits a range into the whole
// units of the cheapest rollup that can answer it and the partial units at
// its ends, which are read from the records by time and are shorter than
// one unit each.

// recordTotalsParams select records over [FromTime, ToTime);
// recordKeyTotalsParams those of one key.
type recordTotalsParams = struct {
	GroupBy  string
	FromTime Time
	ToTime   Time
}

type recordKeyTotalsParams = struct {
	GroupBy  string
	KeyID    uuid.UUID
	FromTime Time
	ToTime   Time
}

// dailyTotalsParams select daily rollup rows by UTC day, "YYYY-MM-DD",
// from (inclusive) to (exclusive); a nil bound is open. The global
// rollup's are for every key, the others' for one.
type dailyTotalsParams = struct {
	GroupBy string
	FromDay *string
	ToDay   *string
}

type dailyKeyTotalsParams = struct {
	GroupBy string
	KeyID   uuid.UUID
	FromDay *string
	ToDay   *string
}

// upstreamKeyTotalsParams select one key's upstream rollup rows by UTC day.
type upstreamKeyTotalsParams = struct {
	KeyID   uuid.UUID
	FromDay *string
	ToDay   *string
}

// hourlyTotalsParams select hourly rollup rows by their hour's start; a
// nil bound is open.
type hourlyTotalsParams = struct {
	GroupBy  string
	FromHour *Time
	ToHour   *Time
}

// byKeyParams cut a range into the parts UsageTotalsByKeyFromRollups adds
// up (see keyParts): whole months [FromMonth, ToMonth) (each "YYYY-MM-01"),
// day ranges added or subtracted ("YYYY-MM-DD", exclusive ends) and ranges
// of records added or subtracted. An empty part has equal bounds.
type byKeyParams = struct {
	FromMonth     string
	ToMonth       string
	Plus1From     string
	Plus1To       string
	Plus2From     string
	Plus2To       string
	Minus1From    string
	Minus1To      string
	Minus2From    string
	Minus2To      string
	Rec1From      Time
	Rec1To        Time
	Rec2From      Time
	Rec2To        Time
	RecMinus1From Time
	RecMinus1To   Time
	RecMinus2From Time
	RecMinus2To   Time
}

// totalsRow is a row of any totals query: one group's sums, and its key's
// name when grouped by key.
type totalsRow = struct {
	Grp                      string
	KeyName                  string
	Requests                 int64
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	CacheCreation5mTokens    int64
	CacheCreation1hTokens    int64
	CostTotal                int64
	CostInput                int64
	CostOutput               int64
	CostCacheWrite5m         int64
	CostCacheWrite1h         int64
	CostCacheRead            int64
	CostWebSearch            int64
	CostWebFetch             int64
	CostCacheSaved           int64
}

// seriesParams select the hourly rollup over [FromHour, ToHour), summed
// per Step, "hour" or "day".
type seriesParams = struct {
	Step     string
	FromHour Time
	ToHour   Time
}

// seriesRow is one step of a series.
type seriesRow = struct {
	Start                    Time
	Requests                 int64
	InputTokens              int64
	OutputTokens             int64
	CacheCreationInputTokens int64
	CacheReadInputTokens     int64
	CacheCreation5mTokens    int64
	CacheCreation1hTokens    int64
	CostTotal                int64
	CostCacheSaved           int64
	StatusOk                 int64
	StatusClientError        int64
	StatusRateLimited        int64
	StatusServerError        int64
	StatusOverloaded         int64
	Refused                  int64
	TtfbB00                  int64
	TtfbB01                  int64
	TtfbB02                  int64
	TtfbB03                  int64
	TtfbB04                  int64
	TtfbB05                  int64
	TtfbB06                  int64
	TtfbB07                  int64
	TtfbB08                  int64
	TtfbB09                  int64
	TtfbB10                  int64
	TtfbB11                  int64
	TtfbB12                  int64
	TtfbB13                  int64
	TtfbB14                  int64
	TtfbB15                  int64
	TtfbB16                  int64
	TtfbB17                  int64
	TtfbB18                  int64
	TtfbB19                  int64
	TtfbB20                  int64
}

// The histogram's columns are ttfb_b00 to ttfb_b20.
var _ [domain.TTFBBuckets]struct{} = [21]struct{}{}

// totalsSQL is an engine's sqlc queries on the records and the rollups
// for totals and series.
type totalsSQL[
	Rec ~recordTotalsParams, RecRow ~totalsRow, RecKey ~recordKeyTotalsParams, RecKeyRow ~totalsRow,
	DailyKey ~dailyKeyTotalsParams, DailyKeyRow ~totalsRow, UpKey ~upstreamKeyTotalsParams, UpKeyRow ~totalsRow,
	Global ~dailyTotalsParams, GlobalRow ~totalsRow, ByKey ~byKeyParams, ByKeyRow ~totalsRow,
	Hourly ~hourlyTotalsParams, HourlyRow ~totalsRow, Series ~seriesParams, SeriesRow ~seriesRow,
] interface {
	UsageTotalsFromRecords(ctx context.Context, arg Rec) ([]RecRow, error)
	UsageTotalsFromRecordsByKey(ctx context.Context, arg RecKey) ([]RecKeyRow, error)
	UsageTotalsFromDailyByKey(ctx context.Context, arg DailyKey) ([]DailyKeyRow, error)
	UsageTotalsByUpstreamFromDailyByKey(ctx context.Context, arg UpKey) ([]UpKeyRow, error)
	UsageTotalsFromDailyGlobal(ctx context.Context, arg Global) ([]GlobalRow, error)
	UsageTotalsByKeyFromRollups(ctx context.Context, arg ByKey) ([]ByKeyRow, error)
	UsageTotalsFromHourly(ctx context.Context, arg Hourly) ([]HourlyRow, error)
	UsageSeries(ctx context.Context, arg Series) ([]SeriesRow, error)
}

// totalsFunc sums one source over [from, to) (zero: open) for q's key and
// grouping.
type totalsFunc func(ctx context.Context, q domain.UsageQuery, from, to time.Time) ([]domain.UsageTotals, error)

// TotalsQueries are an engine's totals queries in domain terms.
type TotalsQueries struct {
	// records sums the records over a range bound at both ends.
	records totalsFunc
	// keyDaily sums one key's whole UTC days, per day and model or,
	// grouped by upstream, per upstream; the bounds are UTC midnights.
	keyDaily totalsFunc
	// globalDaily sums every key's whole UTC days per model or upstream.
	globalDaily totalsFunc
	// hourly sums every key's whole UTC hours, not grouped or by day.
	hourly totalsFunc
	// byKey sums every key's usage per key over the parts of a range.
	byKey  func(ctx context.Context, p keyParts) ([]domain.UsageTotals, error)
	series func(ctx context.Context, q domain.SeriesQuery) ([]domain.SeriesPoint, error)
}

// BindTotals binds an engine's sqlc queries for totals and series.
func BindTotals[
	Rec ~recordTotalsParams, RecRow ~totalsRow, RecKey ~recordKeyTotalsParams, RecKeyRow ~totalsRow,
	DailyKey ~dailyKeyTotalsParams, DailyKeyRow ~totalsRow, UpKey ~upstreamKeyTotalsParams, UpKeyRow ~totalsRow,
	Global ~dailyTotalsParams, GlobalRow ~totalsRow, ByKey ~byKeyParams, ByKeyRow ~totalsRow,
	Hourly ~hourlyTotalsParams, HourlyRow ~totalsRow, Series ~seriesParams, SeriesRow ~seriesRow,
](
	q totalsSQL[Rec, RecRow, RecKey, RecKeyRow, DailyKey, DailyKeyRow, UpKey, UpKeyRow, Global, GlobalRow, ByKey, ByKeyRow, Hourly, HourlyRow, Series, SeriesRow],
) TotalsQueries {
	return TotalsQueries{
		records: func(ctx context.Context, uq domain.UsageQuery, from, to time.Time) ([]domain.UsageTotals, error) {
			g, f, t := string(uq.GroupBy), Time(ceilMicro(from)), Time(ceilMicro(to))
			if uq.KeyID != nil {
				rows, err := q.UsageTotalsFromRecordsByKey(ctx, RecKey{GroupBy: g, KeyID: *uq.KeyID, FromTime: f, ToTime: t})
				return totalsFromRows(rows, err)
			}
			rows, err := q.UsageTotalsFromRecords(ctx, Rec{GroupBy: g, FromTime: f, ToTime: t})
			return totalsFromRows(rows, err)
		},
		keyDaily: func(ctx context.Context, uq domain.UsageQuery, from, to time.Time) ([]domain.UsageTotals, error) {
			f, t := dayOrNil(from), dayOrNil(to)
			if uq.GroupBy == domain.GroupUpstream {
				rows, err := q.UsageTotalsByUpstreamFromDailyByKey(ctx, UpKey{KeyID: *uq.KeyID, FromDay: f, ToDay: t})
				return totalsFromRows(rows, err)
			}
			rows, err := q.UsageTotalsFromDailyByKey(ctx, DailyKey{GroupBy: string(uq.GroupBy), KeyID: *uq.KeyID, FromDay: f, ToDay: t})
			return totalsFromRows(rows, err)
		},
		globalDaily: func(ctx context.Context, uq domain.UsageQuery, from, to time.Time) ([]domain.UsageTotals, error) {
			rows, err := q.UsageTotalsFromDailyGlobal(ctx, Global{GroupBy: string(uq.GroupBy), FromDay: dayOrNil(from), ToDay: dayOrNil(to)})
			return totalsFromRows(rows, err)
		},
		hourly: func(ctx context.Context, uq domain.UsageQuery, from, to time.Time) ([]domain.UsageTotals, error) {
			rows, err := q.UsageTotalsFromHourly(ctx, Hourly{GroupBy: string(uq.GroupBy), FromHour: timeOrNil(from), ToHour: timeOrNil(to)})
			return totalsFromRows(rows, err)
		},
		byKey: func(ctx context.Context, p keyParts) ([]domain.UsageTotals, error) {
			rows, err := q.UsageTotalsByKeyFromRollups(ctx, ByKey(p.params()))
			return totalsFromRows(rows, err)
		},
		series: func(ctx context.Context, sq domain.SeriesQuery) ([]domain.SeriesPoint, error) {
			step := "hour"
			if sq.Step == 24*time.Hour {
				step = "day"
			}
			rows, err := q.UsageSeries(ctx, Series{Step: step, FromHour: Time(sq.From), ToHour: Time(sq.To)})
			return mapRows(rows, err, func(row SeriesRow) (domain.SeriesPoint, error) { return seriesPoint(seriesRow(row)), nil })
		},
	}
}

// UsageTotals sums usage over [q.From, q.To) (a zero bound is open). The
// whole units inside the range come from a rollup: for one key, whole UTC
// days of its daily rollups; for every key, whole hours of the hourly
// rollup (not grouped, or by day), whole days of the global rollup (by
// model or upstream), or, grouped by key, whole months of the monthly
// rollup with the days at the ends (see keyParts). The partial units at
// the ends, and a range without a whole unit, come from the records, read
// by time. The sums are the records' sums either way; groups are in byte
// order of Group.
func (s *Store) UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
	t := s.read.Totals
	unit := 24 * time.Hour
	var whole totalsFunc
	switch q.GroupBy {
	case domain.GroupNone, domain.GroupDay:
		whole = t.hourly
		if q.KeyID != nil {
			whole = t.keyDaily
		} else {
			unit = time.Hour
		}
	case domain.GroupModel, domain.GroupUpstream:
		whole = t.globalDaily
		if q.KeyID != nil {
			whole = t.keyDaily
		}
	case domain.GroupKey:
		whole = t.keyDaily
		if q.KeyID == nil {
			out, err := t.byKey(ctx, newKeyParts(q.From, q.To, time.Now()))
			if err != nil {
				return nil, fmt.Errorf("usage totals: %w", err)
			}
			return mergeTotals([][]domain.UsageTotals{out}), nil
		}
	default:
		return nil, domain.Invalidf("unknown usage grouping %q", q.GroupBy)
	}
	// [lo, hi) is the whole units inside the range.
	lo, hi := q.From, q.To
	if !lo.IsZero() {
		lo = ceilTo(lo, unit)
	}
	if !hi.IsZero() {
		hi = hi.Truncate(unit)
	}
	var parts [][]domain.UsageTotals
	add := func(f totalsFunc, from, to time.Time) error {
		out, err := f(ctx, q, from, to)
		if err != nil {
			return fmt.Errorf("usage totals: %w", err)
		}
		parts = append(parts, out)
		return nil
	}
	if !lo.IsZero() && !hi.IsZero() && !lo.Before(hi) {
		// No whole unit inside: both bounds are set.
		if err := add(t.records, q.From, q.To); err != nil {
			return nil, err
		}
	} else {
		if err := add(whole, lo, hi); err != nil {
			return nil, err
		}
		if !q.From.IsZero() && q.From.Before(lo) {
			if err := add(t.records, q.From, lo); err != nil {
				return nil, err
			}
		}
		if !q.To.IsZero() && hi.Before(q.To) {
			if err := add(t.records, hi, q.To); err != nil {
				return nil, err
			}
		}
	}
	out := mergeTotals(parts)
	if q.GroupBy == domain.GroupNone && len(out) == 0 {
		out = append(out, domain.UsageTotals{})
	}
	return out, nil
}

// The costs keyParts weighs, in what reading them costs: a month of the
// monthly rollup holds a row per key active in it, about as many as three
// days of the rollup per upstream (a row per key and upstream active in
// the day); a day of that rollup costs about as much as six hours of
// records.
const (
	monthInDays = 3
	dayInHours  = 6
)

// keyParts is a range cut into the parts every key's totals per key are
// summed from, in one statement: whole months, days added at the ends or
// subtracted from the months that hold them, and records added at the
// ends or subtracted from the days that hold them, whichever reads least:
// [Sep 17 14:37, now on Dec 16 at 14:37) is the records from Sep 17 14:37
// to midnight, Sep 18 to 30, October, November and December less its
// days from Dec 17 (none yet) and less the records since now (none). A
// zero bound is open.
type keyParts struct {
	fromMonth, toMonth time.Time // whole months [fromMonth, toMonth)
	plus, minus        [2][2]time.Time
	records            [2][2]time.Time
	minusRecords       [2][2]time.Time
}

// The widest days and months: an open bound, or an empty part.
var (
	firstDay = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	lastDay  = time.Date(9999, 12, 1, 0, 0, 0, 0, time.UTC)
)

// newKeyParts cuts [from, to) (zero: open) into keyParts. now bounds what
// subtracting costs: nothing after now holds records, but for a clock that
// ran ahead.
func newKeyParts(from, to, now time.Time) keyParts {
	const day = 24 * time.Hour
	now = now.UTC()
	p := keyParts{fromMonth: firstDay, toMonth: firstDay}
	lo, hi := from, to
	if !lo.IsZero() {
		lo = ceilTo(lo, day).UTC()
	}
	if !hi.IsZero() {
		hi = hi.Truncate(day).UTC()
	}
	if !lo.IsZero() && !hi.IsZero() && lo.After(hi) {
		// Inside one day.
		p.records[0] = [2]time.Time{from, to}
		return p
	}
	// held is the part of [a, b) that can hold records.
	held := func(a, b time.Time) time.Duration {
		if b.After(now) {
			b = now
		}
		return max(b.Sub(a), 0)
	}
	// The partial days: their records, or the whole day less the records
	// outside the range.
	if !from.IsZero() && from.Before(lo) {
		d0 := lo.Add(-day)
		if lo.Sub(from) <= dayInHours*time.Hour+held(d0, from) {
			p.records[0] = [2]time.Time{from, lo}
		} else {
			p.minusRecords[0] = [2]time.Time{d0, from}
			lo = d0
		}
	}
	if !to.IsZero() && hi.Before(to) {
		d1 := hi.Add(day)
		if to.Sub(hi) <= dayInHours*time.Hour+held(to, d1) {
			p.records[1] = [2]time.Time{hi, to}
		} else {
			p.minusRecords[1] = [2]time.Time{to, d1}
			hi = d1
		}
	}
	if !lo.IsZero() && !hi.IsZero() && !lo.Before(hi) {
		return p // no whole day
	}
	tomorrow := now.Truncate(day).Add(day)
	days := func(a, b time.Time) int { return int(max(b.Sub(a), 0) / day) }
	// heldDays is the days of [a, b) that can hold records.
	heldDays := func(a, b time.Time) int {
		if b.After(tomorrow) {
			b = tomorrow
		}
		return days(a, b)
	}
	monthOf := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC) }
	nextMonth := func(m time.Time) time.Time { return m.AddDate(0, 1, 0) }

	mFrom, mTo := firstDay, lastDay
	if !lo.IsZero() {
		a0 := monthOf(lo)
		mFrom = a0
		if !hi.IsZero() && monthOf(hi).Equal(a0) && !hi.Equal(a0) {
			// Both ends inside one month: its days, or the month less
			// the days around them.
			a1 := nextMonth(a0)
			if days(lo, hi) <= monthInDays+days(a0, lo)+heldDays(hi, a1) {
				p.plus[0] = [2]time.Time{lo, hi}
				return p
			}
			p.fromMonth, p.toMonth = a0, a1
			p.minus[0] = [2]time.Time{a0, lo}
			p.minus[1] = [2]time.Time{hi, a1}
			return p
		}
		if !lo.Equal(a0) {
			a1 := nextMonth(a0)
			if days(lo, a1) <= monthInDays+days(a0, lo) {
				p.plus[0] = [2]time.Time{lo, a1}
				mFrom = a1
			} else {
				p.minus[0] = [2]time.Time{a0, lo}
			}
		}
	}
	if !hi.IsZero() {
		b0 := monthOf(hi)
		mTo = b0
		if !hi.Equal(b0) {
			b1 := nextMonth(b0)
			if days(b0, hi) <= monthInDays+heldDays(hi, b1) {
				p.plus[1] = [2]time.Time{b0, hi}
			} else {
				p.minus[1] = [2]time.Time{hi, b1}
				mTo = b1
			}
		}
	}
	if mFrom.Before(mTo) {
		p.fromMonth, p.toMonth = mFrom, mTo
	}
	return p
}

// params is p as the statement takes it: empty parts at the earliest day.
func (p keyParts) params() byKeyParams {
	d := func(r [2]time.Time) (string, string) {
		if r[0].IsZero() {
			return firstDay.Format(time.DateOnly), firstDay.Format(time.DateOnly)
		}
		return r[0].UTC().Format(time.DateOnly), r[1].UTC().Format(time.DateOnly)
	}
	rec := func(r [2]time.Time) (Time, Time) {
		if r[0].IsZero() && r[1].IsZero() {
			return Time(firstDay), Time(firstDay)
		}
		return Time(ceilMicro(r[0])), Time(ceilMicro(r[1]))
	}
	var b byKeyParams
	b.FromMonth, b.ToMonth = p.fromMonth.Format(time.DateOnly), p.toMonth.Format(time.DateOnly)
	b.Plus1From, b.Plus1To = d(p.plus[0])
	b.Plus2From, b.Plus2To = d(p.plus[1])
	b.Minus1From, b.Minus1To = d(p.minus[0])
	b.Minus2From, b.Minus2To = d(p.minus[1])
	b.Rec1From, b.Rec1To = rec(p.records[0])
	b.Rec2From, b.Rec2To = rec(p.records[1])
	b.RecMinus1From, b.RecMinus1To = rec(p.minusRecords[0])
	b.RecMinus2From, b.RecMinus2To = rec(p.minusRecords[1])
	return b
}

// UsageSeries returns every key's usage per hour or UTC day over
// [q.From, q.To), ascending; see ports.UsageStore.
func (s *Store) UsageSeries(ctx context.Context, q domain.SeriesQuery) ([]domain.SeriesPoint, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	out, err := s.read.Totals.series(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("usage series: %w", err)
	}
	return out, nil
}

// ceilTo rounds t up to a multiple of unit (an hour or a day: UTC hours
// and midnights).
func ceilTo(t time.Time, unit time.Duration) time.Time {
	if c := t.Truncate(unit); c.Before(t) {
		return c.Add(unit)
	}
	return t
}

// timeOrNil is an optional bound: nil when unset.
func timeOrNil(t time.Time) *Time {
	if t.IsZero() {
		return nil
	}
	st := Time(t)
	return &st
}

// mergeTotals adds up the groups of several parts of a range, in byte
// order of Group. One part is returned as it is, re-sorted: the engines'
// ORDER BY follows their collation.
func mergeTotals(parts [][]domain.UsageTotals) []domain.UsageTotals {
	var out []domain.UsageTotals
	if len(parts) == 1 {
		out = parts[0]
	} else {
		at := map[string]int{}
		for _, p := range parts {
			for _, g := range p {
				i, ok := at[g.Group]
				if !ok {
					at[g.Group] = len(out)
					out = append(out, g)
					continue
				}
				out[i] = addTotals(out[i], g)
			}
		}
	}
	slices.SortFunc(out, func(a, b domain.UsageTotals) int { return cmp.Compare(a.Group, b.Group) })
	return out
}

// addTotals is a + b for one group. Sums that leave int64 wrap, as the
// engines' own sums would have failed first.
func addTotals(a, b domain.UsageTotals) domain.UsageTotals {
	a.Requests += b.Requests
	a.Usage = a.Usage.Add(b.Usage)
	c := &a.Cost
	c.Input += b.Cost.Input
	c.Output += b.Cost.Output
	c.CacheWrite5m += b.Cost.CacheWrite5m
	c.CacheWrite1h += b.Cost.CacheWrite1h
	c.CacheRead += b.Cost.CacheRead
	c.WebSearch += b.Cost.WebSearch
	c.WebFetch += b.Cost.WebFetch
	c.CacheSaved += b.Cost.CacheSaved
	a.CostTotal += b.CostTotal
	if a.KeyName == "" {
		a.KeyName = b.KeyName
	}
	return a
}

// totalsFromRows maps any totals query's rows; no rows is nil.
func totalsFromRows[R ~totalsRow](rows []R, err error) ([]domain.UsageTotals, error) {
	if err != nil {
		return nil, err
	}
	var out []domain.UsageTotals
	for _, row := range rows {
		r := totalsRow(row)
		out = append(out, domain.UsageTotals{
			Group:    r.Grp,
			KeyName:  r.KeyName,
			Requests: r.Requests,
			Usage: domain.Usage{
				InputTokens:              r.InputTokens,
				OutputTokens:             r.OutputTokens,
				CacheCreationInputTokens: r.CacheCreationInputTokens,
				CacheReadInputTokens:     r.CacheReadInputTokens,
				CacheCreation5mTokens:    r.CacheCreation5mTokens,
				CacheCreation1hTokens:    r.CacheCreation1hTokens,
			},
			Cost: domain.CostBreakdown{
				Input:        domain.Nanodollars(r.CostInput),
				Output:       domain.Nanodollars(r.CostOutput),
				CacheWrite5m: domain.Nanodollars(r.CostCacheWrite5m),
				CacheWrite1h: domain.Nanodollars(r.CostCacheWrite1h),
				CacheRead:    domain.Nanodollars(r.CostCacheRead),
				WebSearch:    domain.Nanodollars(r.CostWebSearch),
				WebFetch:     domain.Nanodollars(r.CostWebFetch),
				CacheSaved:   domain.Nanodollars(r.CostCacheSaved),
			},
			CostTotal: domain.Nanodollars(r.CostTotal),
		})
	}
	return out, nil
}

func seriesPoint(r seriesRow) domain.SeriesPoint {
	return domain.SeriesPoint{
		Start:    time.Time(r.Start).UTC(),
		Requests: r.Requests,
		Usage: domain.Usage{
			InputTokens:              r.InputTokens,
			OutputTokens:             r.OutputTokens,
			CacheCreationInputTokens: r.CacheCreationInputTokens,
			CacheReadInputTokens:     r.CacheReadInputTokens,
			CacheCreation5mTokens:    r.CacheCreation5mTokens,
			CacheCreation1hTokens:    r.CacheCreation1hTokens,
		},
		Cost:       domain.Nanodollars(r.CostTotal),
		CacheSaved: domain.Nanodollars(r.CostCacheSaved),
		Status: domain.StatusCounts{
			OK: r.StatusOk, ClientError: r.StatusClientError, RateLimited: r.StatusRateLimited,
			ServerError: r.StatusServerError, Overloaded: r.StatusOverloaded, Refused: r.Refused,
		},
		TTFB: []int64{
			r.TtfbB00, r.TtfbB01, r.TtfbB02, r.TtfbB03, r.TtfbB04, r.TtfbB05, r.TtfbB06,
			r.TtfbB07, r.TtfbB08, r.TtfbB09, r.TtfbB10, r.TtfbB11, r.TtfbB12, r.TtfbB13,
			r.TtfbB14, r.TtfbB15, r.TtfbB16, r.TtfbB17, r.TtfbB18, r.TtfbB19, r.TtfbB20,
		},
	}
}
