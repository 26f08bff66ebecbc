package budget_test

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
)

func usd(s string) pricing.Nanodollars {
	n, err := pricing.ParseUSD(s)
	if err != nil {
		panic(err)
	}
	return n
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := budget.LoadZone(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func wantInvalid(t *testing.T, what string, err error) {
	t.Helper()
	if domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("%s: err = %v, want kind invalid", what, err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, w := range []budget.Window{budget.Rolling5h, budget.Day, budget.Week, budget.Month, budget.Total} {
		if err := (budget.Budget{Window: w, Limit: 1}).Validate(); err != nil {
			t.Errorf("%s: %v", w, err)
		}
	}
	if err := (budget.Budget{Window: budget.Month, Limit: budget.MaxLimit, TimeZone: "Asia/Kathmandu"}).Validate(); err != nil {
		t.Errorf("month at MaxLimit in Asia/Kathmandu: %v", err)
	}
	wantInvalid(t, "unknown window", budget.Budget{Window: "hour", Limit: 1}.Validate())
	wantInvalid(t, "zero limit", budget.Budget{Window: budget.Day}.Validate())
	wantInvalid(t, "negative limit", budget.Budget{Window: budget.Day, Limit: -1}.Validate())
	wantInvalid(t, "limit past MaxLimit", budget.Budget{Window: budget.Day, Limit: budget.MaxLimit + 1}.Validate())
	wantInvalid(t, "zone on 5h", budget.Budget{Window: budget.Rolling5h, Limit: 1, TimeZone: "Europe/Paris"}.Validate())
	wantInvalid(t, "zone on total", budget.Budget{Window: budget.Total, Limit: 1, TimeZone: "UTC"}.Validate())
	wantInvalid(t, "unknown zone", budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "Europe/Atlantis"}.Validate())
	wantInvalid(t, "Local", budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "Local"}.Validate())
	wantInvalid(t, "a path", budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "../../etc/passwd"}.Validate())
}

func TestValidateList(t *testing.T) {
	t.Parallel()
	ok := []budget.Budget{
		{Window: budget.Rolling5h, Limit: 1},
		{Window: budget.Day, Limit: 1},
		{Window: budget.Day, Limit: 2, TimeZone: "Europe/Paris"},
		{Window: budget.Day, Limit: 3, TimeZone: "Asia/Tokyo"},
		{Window: budget.Week, Limit: 1},
		{Window: budget.Month, Limit: 1},
		{Window: budget.Total, Limit: 1},
	}
	if err := budget.ValidateList(ok); err != nil {
		t.Fatal(err)
	}
	if err := budget.ValidateList(nil); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, "two 5h budgets", budget.ValidateList([]budget.Budget{ok[0], {Window: budget.Rolling5h, Limit: 9}}))
	wantInvalid(t, "two Paris days", budget.ValidateList([]budget.Budget{ok[2], ok[2]}))
	wantInvalid(t, "one invalid", budget.ValidateList([]budget.Budget{ok[0], {Window: budget.Day}}))
	many := make([]budget.Budget, budget.MaxBudgets+1)
	for i := range many {
		many[i] = budget.Budget{Window: budget.Day, Limit: 1, TimeZone: []string{"UTC", "Europe/Paris", "Asia/Tokyo", "America/New_York",
			"Asia/Kolkata", "Asia/Kathmandu", "Australia/Sydney", "America/Chicago", "Africa/Cairo"}[i]}
	}
	wantInvalid(t, "too many", budget.ValidateList(many))
	if err := budget.ValidateList(many[:budget.MaxBudgets]); err != nil {
		t.Fatalf("%d budgets: %v", budget.MaxBudgets, err)
	}
}

func TestWithDefaultZone(t *testing.T) {
	t.Parallel()
	in := []budget.Budget{{Window: budget.Day, Limit: 1}, {Window: budget.Week, Limit: 1, TimeZone: "Asia/Tokyo"}, {Window: budget.Total, Limit: 1}}
	out := budget.WithDefaultZone(in, "Europe/Paris")
	if out[0].TimeZone != "Europe/Paris" || out[1].TimeZone != "Asia/Tokyo" || out[2].TimeZone != "" {
		t.Fatalf("WithDefaultZone: %+v", out)
	}
	if in[0].TimeZone != "" {
		t.Fatal("WithDefaultZone changed its input")
	}
}

func TestSpanCalendar(t *testing.T) {
	t.Parallel()
	ny := mustZone(t, "America/New_York")
	day := budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "America/New_York"}
	for _, tc := range []struct {
		name       string
		b          budget.Budget
		at         time.Time
		start, end time.Time
	}{
		{"spring-forward day", day, time.Date(2026, 3, 8, 12, 0, 0, 0, ny), mustTime("2026-03-08T05:00:00Z"), mustTime("2026-03-09T04:00:00Z")},
		{"fall-back day", day, time.Date(2026, 11, 1, 1, 30, 0, 0, ny), mustTime("2026-11-01T04:00:00Z"), mustTime("2026-11-02T05:00:00Z")},
		{"the day's first instant", day, mustTime("2026-03-08T05:00:00Z"), mustTime("2026-03-08T05:00:00Z"), mustTime("2026-03-09T04:00:00Z")},
		{"the day's last instant", day, mustTime("2026-03-09T03:59:59Z"), mustTime("2026-03-08T05:00:00Z"), mustTime("2026-03-09T04:00:00Z")},
		{"utc day", budget.Budget{Window: budget.Day, Limit: 1}, mustTime("2026-05-04T23:59:59Z"), mustTime("2026-05-04T00:00:00Z"), mustTime("2026-05-05T00:00:00Z")},
		{"week from Monday", budget.Budget{Window: budget.Week, Limit: 1}, mustTime("2026-05-10T23:00:00Z"), mustTime("2026-05-04T00:00:00Z"), mustTime("2026-05-11T00:00:00Z")},
		{"week on a Monday", budget.Budget{Window: budget.Week, Limit: 1}, mustTime("2026-05-11T00:00:00Z"), mustTime("2026-05-11T00:00:00Z"), mustTime("2026-05-18T00:00:00Z")},
		{"week across a year", budget.Budget{Window: budget.Week, Limit: 1}, mustTime("2027-01-01T00:00:00Z"), mustTime("2026-12-28T00:00:00Z"), mustTime("2027-01-04T00:00:00Z")},
		{"week across DST", budget.Budget{Window: budget.Week, Limit: 1, TimeZone: "America/New_York"}, mustTime("2026-03-10T00:00:00Z"), mustTime("2026-03-09T04:00:00Z"), mustTime("2026-03-16T04:00:00Z")},
		{"week across DST, Sunday", budget.Budget{Window: budget.Week, Limit: 1, TimeZone: "America/New_York"}, mustTime("2026-03-08T12:00:00Z"), mustTime("2026-03-02T05:00:00Z"), mustTime("2026-03-09T04:00:00Z")},
		{"February", budget.Budget{Window: budget.Month, Limit: 1}, mustTime("2026-02-10T00:00:00Z"), mustTime("2026-02-01T00:00:00Z"), mustTime("2026-03-01T00:00:00Z")},
		{"leap February", budget.Budget{Window: budget.Month, Limit: 1}, mustTime("2028-02-29T23:00:00Z"), mustTime("2028-02-01T00:00:00Z"), mustTime("2028-03-01T00:00:00Z")},
		{"December", budget.Budget{Window: budget.Month, Limit: 1, TimeZone: "Asia/Kathmandu"}, mustTime("2026-12-31T18:14:59Z"), mustTime("2026-11-30T18:15:00Z"), mustTime("2026-12-31T18:15:00Z")},
		{"March across DST", budget.Budget{Window: budget.Month, Limit: 1, TimeZone: "America/New_York"}, mustTime("2026-03-20T00:00:00Z"), mustTime("2026-03-01T05:00:00Z"), mustTime("2026-04-01T04:00:00Z")},
		{"a midnight Santiago skips", budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "America/Santiago"}, mustTime("2026-09-06T12:00:00Z"), mustTime("2026-09-06T04:00:00Z"), mustTime("2026-09-07T03:00:00Z")},
		{"the evening before it", budget.Budget{Window: budget.Day, Limit: 1, TimeZone: "America/Santiago"}, mustTime("2026-09-06T03:30:00Z"), mustTime("2026-09-05T04:00:00Z"), mustTime("2026-09-06T04:00:00Z")},
	} {
		start, end := tc.b.Span(tc.at)
		if !start.Equal(tc.start) || !end.Equal(tc.end) {
			t.Errorf("%s: Span(%s) = %s, %s; want %s, %s", tc.name, tc.at.Format(time.RFC3339), start.UTC(), end.UTC(), tc.start, tc.end)
		}
		if r := tc.b.ResetsAt(tc.at); !r.Equal(tc.end) {
			t.Errorf("%s: ResetsAt = %s, want %s", tc.name, r, tc.end)
		}
	}
	if d := day.ResetsAt(time.Date(2026, 3, 8, 12, 0, 0, 0, ny)).Sub(time.Date(2026, 3, 8, 0, 0, 0, 0, ny)); d != 23*time.Hour {
		t.Errorf("2026-03-08 in New York lasts %v, want 23h", d)
	}
	if s, e := (budget.Budget{Window: budget.Total, Limit: 1}).Span(time.Now()); !s.IsZero() || !e.IsZero() {
		t.Errorf("total has a span: %s, %s", s, e)
	}
}

// TestSpanProperties checks, across years and zones with odd offsets and
// transitions (skipped and repeated midnights, 30-minute DST, a skipped
// day), that every window holds its time, starts at the first instant of
// its local day, and that windows tile time.
func TestSpanProperties(t *testing.T) {
	t.Parallel()
	zones := []string{"UTC", "America/New_York", "America/Santiago", "Asia/Beirut", "America/Havana", "Australia/Lord_Howe",
		"Asia/Kathmandu", "Pacific/Chatham", "Pacific/Apia", "America/St_Johns", "Asia/Tehran", "Africa/Casablanca"}
	if testing.Short() {
		zones = zones[:4]
	}
	from, to := mustTime("2011-01-01T00:00:00Z"), mustTime("2027-12-31T00:00:00Z")
	step := 3*time.Hour + 17*time.Minute + 13*time.Second
	for _, z := range zones {
		loc := mustZone(t, z)
		for _, w := range []budget.Window{budget.Day, budget.Week, budget.Month} {
			b := budget.Budget{Window: w, Limit: 1, TimeZone: z}
			var prevStart, prevEnd time.Time
			for at := from; at.Before(to); at = at.Add(step) {
				start, end := b.Span(at)
				if at.Before(start) || !at.Before(end) {
					t.Fatalf("%s %s: Span(%s) = [%s, %s) does not hold it", z, w, at, start, end)
				}
				if start.Equal(prevStart) {
					if !end.Equal(prevEnd) {
						t.Fatalf("%s %s: two ends for the window starting %s", z, w, start)
					}
					continue
				}
				if !prevEnd.IsZero() && !start.Equal(prevEnd) {
					// The next window starts where the previous ended, unless
					// the step jumped a whole window.
					if s2, _ := b.Span(prevEnd); !s2.Equal(prevEnd) {
						t.Fatalf("%s %s: the window after [%s, %s) starts at %s", z, w, prevStart, prevEnd, s2)
					}
				}
				ls, lp := start.In(loc), start.Add(-time.Nanosecond).In(loc)
				if ls.Hour() != 0 || ls.Minute() != 0 {
					if ly, lm, ld := lp.Date(); ly == ls.Year() && lm == ls.Month() && ld == ls.Day() {
						t.Fatalf("%s %s: window starts %s, not at the first instant of its day", z, w, ls)
					}
				}
				if d := end.Sub(start); w == budget.Day && (d < 22*time.Hour || d > 26*time.Hour) && z != "Pacific/Apia" {
					t.Fatalf("%s: day [%s, %s) lasts %v", z, ls, end.In(loc), d)
				}
				if w == budget.Week && ls.Weekday() != time.Monday && ls.Hour() == 0 {
					t.Fatalf("%s: week starts on a %s", z, ls.Weekday())
				}
				if w == budget.Month && ls.Day() != 1 && ls.Hour() == 0 {
					t.Fatalf("%s: month starts on day %d", z, ls.Day())
				}
				prevStart, prevEnd = start, end
			}
		}
	}
}

func TestRollingWindow(t *testing.T) {
	t.Parallel()
	b := budget.Budget{Window: budget.Rolling5h, Limit: usd("1")}
	at := mustTime("2026-05-04T15:02:30Z")
	start, end := b.Span(at)
	if !start.Equal(mustTime("2026-05-04T10:00:00Z")) || !end.Equal(mustTime("2026-05-04T15:05:00Z")) {
		t.Fatalf("5h span at 15:02:30 = %s, %s", start, end)
	}
	first, last := budget.RollingRange(at)
	if last-first+1 != budget.RollingBuckets || first*300 != start.Unix() {
		t.Fatalf("RollingRange = %d, %d", first, last)
	}
	if budget.RollingSpan != 5*time.Hour+5*time.Minute {
		t.Fatalf("RollingSpan = %v", budget.RollingSpan)
	}
	if !b.ResetsAt(at).IsZero() {
		t.Fatal("a rolling budget's ResetsAt without usage is not zero")
	}
	// Usage in the oldest and the 12:00 buckets.
	m := budget.Measure{Used: usd("0.7"), Buckets: make([]pricing.Nanodollars, budget.RollingBuckets)}
	m.Buckets[0], m.Buckets[24] = usd("0.4"), usd("0.3")
	s := b.Status(at, m)
	if !s.ResetsAt.Equal(mustTime("2026-05-04T15:05:00Z")) || s.Remaining() != usd("0.3") {
		t.Fatalf("status %+v", s)
	}
	if _, sf := b.Check(at, m, usd("0.3")); sf != nil {
		t.Fatalf("0.3 of 0.3 remaining refused: %+v", sf)
	}
	_, sf := b.Check(at, m, usd("0.5"))
	if sf == nil || !sf.RetryAt.Equal(mustTime("2026-05-04T15:05:00Z")) || sf.NoRetry || sf.Busy {
		t.Fatalf("0.5: %+v", sf)
	}
	_, sf = b.Check(at, m, usd("0.8"))
	if sf == nil || !sf.RetryAt.Equal(mustTime("2026-05-04T17:05:00Z")) {
		t.Fatalf("0.8: %+v", sf)
	}
}

func TestCheckRules(t *testing.T) {
	t.Parallel()
	at := mustTime("2026-05-04T12:00:00Z")
	day := budget.Budget{Window: budget.Day, Limit: usd("1")}
	total := budget.Budget{Window: budget.Total, Limit: usd("1")}
	for _, tc := range []struct {
		name          string
		b             budget.Budget
		used, res     string
		amount        string
		fits          bool
		noRetry, busy bool
		retryAt       time.Time
	}{
		{"fits exactly", day, "0.5", "0.25", "0.25", true, false, false, time.Time{}},
		{"day spent", day, "0.9", "0", "0.2", false, false, false, mustTime("2026-05-05T00:00:00Z")},
		{"day busy", day, "0.5", "0.4", "0.2", false, false, true, mustTime("2026-05-05T00:00:00Z")},
		{"over the limit", day, "0", "0", "1.000000001", false, true, false, time.Time{}},
		{"total spent", total, "0.9", "0", "0.2", false, true, false, time.Time{}},
		{"total busy", total, "0.5", "0.4", "0.2", false, false, true, time.Time{}},
		{"used past the limit", total, "2", "0", "0", false, true, false, time.Time{}},
	} {
		m := budget.Measure{Used: usd(tc.used), Reserved: usd(tc.res)}
		s, sf := tc.b.Check(at, m, usd(tc.amount))
		if s.Used != m.Used || s.Reserved != m.Reserved || s.Budget != tc.b {
			t.Errorf("%s: status %+v", tc.name, s)
		}
		if (sf == nil) != tc.fits {
			t.Errorf("%s: shortfall %+v, want fits=%v", tc.name, sf, tc.fits)
			continue
		}
		if sf != nil && (sf.NoRetry != tc.noRetry || sf.Busy != tc.busy || !sf.RetryAt.Equal(tc.retryAt) || sf.Amount != usd(tc.amount)) {
			t.Errorf("%s: %+v, want no-retry %v busy %v retry-at %s", tc.name, sf, tc.noRetry, tc.busy, tc.retryAt)
		}
	}
	// Remaining and Fits never overflow.
	s := budget.Status{Budget: day, Used: 1<<62 + 1, Reserved: 1 << 62}
	if s.Remaining() != 0 || s.Fits(0) {
		t.Fatalf("huge usage: remaining %s fits %v", s.Remaining(), s.Fits(0))
	}
	if s := (budget.Status{Budget: day, Used: usd("0.5"), Reserved: 1 << 62}); s.Remaining() != 0 || s.Fits(0) {
		t.Fatal("huge reservations leave room")
	}
}

func TestRefuse(t *testing.T) {
	t.Parallel()
	at := mustTime("2026-05-04T12:00:00.5Z")
	paris := budget.Budget{Window: budget.Day, Limit: usd("1"), TimeZone: "Europe/Paris"}
	_, dayShort := paris.Check(at, budget.Measure{Used: usd("0.9")}, usd("0.2"))
	_, busy := (budget.Budget{Window: budget.Total, Limit: usd("5")}).Check(at, budget.Measure{Used: usd("1"), Reserved: usd("3.9")}, usd("0.2"))
	_, never := (budget.Budget{Window: budget.Total, Limit: usd("1")}).Check(at, budget.Measure{Used: usd("0.95")}, usd("0.2"))
	roll := budget.Measure{Used: usd("0.9"), Buckets: make([]pricing.Nanodollars, budget.RollingBuckets)}
	roll.Buckets[60] = usd("0.9")
	_, rolling := (budget.Budget{Window: budget.Rolling5h, Limit: usd("1")}).Check(at, roll, usd("0.2"))

	e := budget.Refuse(at, []budget.Shortfall{*busy, *rolling, *dayShort})
	var r *budget.Refusal
	if !errors.As(e, &r) || len(r.Shortfalls) != 3 || !r.At.Equal(at) {
		t.Fatalf("the error carries no refusal: %v", e)
	}
	if b := r.Binding(); b.Budget != paris {
		t.Fatalf("binding %s, want the Paris day, which frees last (22:00Z; 5h frees at 17:05Z)", b.Budget)
	}
	e = budget.Refuse(at, []budget.Shortfall{*busy, *rolling})
	// 17:05 less 12:00:00.5, rounded up to whole seconds.
	if e.Kind != domain.KindQuotaExceeded || e.NoRetry || e.RetryAfter != 5*time.Hour+5*time.Minute {
		t.Fatalf("refusal %+v: want quota_exceeded with retry-after 5h05m", e)
	}

	e = budget.Refuse(at, []budget.Shortfall{*busy, *dayShort})
	// Paris midnight is 22:00Z: 9h59m59.5s away, rounded up to whole seconds.
	if e.RetryAfter != 10*time.Hour || e.NoRetry {
		t.Fatalf("day refusal: retry-after %v", e.RetryAfter)
	}
	for _, want := range []string{"day (Europe/Paris)", "$1.000000", "$0.100000 left", "$0.200000", "2026-05-05T00:00:00+02:00"} {
		if !strings.Contains(e.Message, want) {
			t.Errorf("message %q lacks %q", e.Message, want)
		}
	}

	e = budget.Refuse(at, []budget.Shortfall{*busy})
	if e.RetryAfter != budget.BusyRetryAfter || e.NoRetry || !strings.Contains(e.Message, "held by requests in flight") {
		t.Fatalf("busy refusal: %+v", e)
	}
	e = budget.Refuse(at, []budget.Shortfall{*dayShort, *never, *busy})
	if b := (&budget.Refusal{Shortfalls: []budget.Shortfall{*dayShort, *never}}).Binding(); !b.NoRetry {
		t.Fatalf("binding %+v, want the one that never frees", b)
	}
	if !e.NoRetry || e.RetryAfter != 0 || !strings.Contains(e.Message, "never resets") {
		t.Fatalf("never-freeing refusal: %+v", e)
	}
}

func TestCover(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	base := mustTime("2026-01-01T00:00:00Z").Unix() / 900
	for range 2000 {
		a := base + r.Int64N(96*400)
		b := a + r.Int64N(96*40)
		start, end := time.Unix(a*900, 0), time.Unix(b*900, 0)
		cover := budget.Cover(start, end)
		x := a * 900
		for _, bk := range cover {
			n := bk.Level.Seconds()
			if bk.Index*n != x {
				t.Fatalf("Cover(%s, %s): bucket %+v does not start at %s", start.UTC(), end.UTC(), bk, time.Unix(x, 0).UTC())
			}
			x += n
		}
		if x != b*900 {
			t.Fatalf("Cover(%s, %s) ends at %s", start.UTC(), end.UTC(), time.Unix(x, 0).UTC())
		}
		if days := (b - a) / 96; len(cover) > int(days)+3+23+23+3+2 {
			t.Fatalf("Cover of %d days has %d buckets", days, len(cover))
		}
	}
	// An edge off the quarter hour is moved out to it.
	cover := budget.Cover(mustTime("2026-01-01T10:20:00Z"), mustTime("2026-01-01T10:50:00Z"))
	if len(cover) != 3 || cover[0] != (budget.Bucket{Level: budget.Level15m, Index: mustTime("2026-01-01T10:15:00Z").Unix() / 900}) {
		t.Fatalf("misaligned cover: %+v", cover)
	}
}

func TestCutoffsAndHistory(t *testing.T) {
	t.Parallel()
	latest := mustTime("2026-05-04T12:07:00Z")
	cut := budget.Cutoffs(latest)
	if cut[budget.Level5m]%3 != 0 || time.Unix(cut[budget.Level5m]*300, 0).UTC() != mustTime("2026-05-04T06:00:00Z") {
		t.Fatalf("5-minute cutoff %d (%s)", cut[budget.Level5m], time.Unix(cut[budget.Level5m]*300, 0).UTC())
	}
	if first, _ := budget.RollingRange(latest); first < cut[budget.Level5m] {
		t.Fatal("the rolling window reaches past the 5-minute retention")
	}
	if got := time.Unix(cut[budget.LevelDay]*86400, 0).UTC(); latest.Sub(got) < 32*24*time.Hour {
		t.Fatalf("day cutoff %s keeps less than a month and a day", got)
	}
	if err := (budget.History{AsOf: latest, Total: 5, Buckets: []budget.Spend{{Start: mustTime("2026-05-04T12:05:00Z"), Amount: 5}}}).Validate(); err != nil {
		t.Fatal(err)
	}
	wantInvalid(t, "no as_of", budget.History{}.Validate())
	wantInvalid(t, "negative total", budget.History{AsOf: latest, Total: -1}.Validate())
	wantInvalid(t, "misaligned", budget.History{AsOf: latest, Buckets: []budget.Spend{{Start: latest, Amount: 1}}}.Validate())
	wantInvalid(t, "negative bucket", budget.History{AsOf: latest, Buckets: []budget.Spend{{Start: budget.BucketStart(latest), Amount: -1}}}.Validate())
	wantInvalid(t, "negative amount", budget.ValidAmount("x", -1))
	wantInvalid(t, "huge amount", budget.ValidAmount("x", budget.MaxLimit+1))
}
