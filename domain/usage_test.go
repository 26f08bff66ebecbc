package domain_test

import (
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
)

func TestStatusClassOf(t *testing.T) {
	t.Parallel()
	cases := map[int]domain.StatusClass{
		0: domain.StatusOK, 200: domain.StatusOK, 304: domain.StatusOK, 399: domain.StatusOK,
		400: domain.StatusClientError, 401: domain.StatusClientError, 413: domain.StatusClientError, 499: domain.StatusClientError,
		429: domain.StatusRateLimited,
		500: domain.StatusServerError, 503: domain.StatusServerError, 599: domain.StatusServerError, 600: domain.StatusServerError,
		529: domain.StatusOverloaded,
	}
	for status, want := range cases {
		if got := domain.StatusClassOf(status); got != want {
			t.Errorf("StatusClassOf(%d) = %d, want %d", status, got, want)
		}
	}
}

func TestStatusCounts(t *testing.T) {
	t.Parallel()
	var c domain.StatusCounts
	for _, r := range []struct {
		status   int
		upstream string
	}{
		{200, "a"}, {200, "a"}, {400, "a"}, {401, ""}, {429, ""}, {429, "a"}, {500, "a"}, {529, "b"}, {503, ""}, {0, ""},
	} {
		c.Count(r.status, r.upstream)
	}
	want := domain.StatusCounts{OK: 3, ClientError: 2, RateLimited: 2, ServerError: 2, Overloaded: 1, Refused: 3}
	if c != want {
		t.Fatalf("counts = %+v, want %+v", c, want)
	}
	if c.Total() != 10 {
		t.Fatalf("total = %d, want 10 (refusals are in their class already)", c.Total())
	}
	if got := c.Add(c); got.OK != 6 || got.Refused != 6 {
		t.Fatalf("Add = %+v", got)
	}
	rec := domain.UsageRecord{Status: 403}
	if !rec.RefusedByRelay() {
		t.Fatal("a 403 no upstream answered is a refusal")
	}
	rec.Upstream = "primary"
	if rec.RefusedByRelay() {
		t.Fatal("an upstream's 403 is not the relay's refusal")
	}
}

func TestTTFBBucket(t *testing.T) {
	t.Parallel()
	b := domain.TTFBBucketBounds
	if len(b) != 20 || domain.TTFBBuckets != 21 {
		t.Fatalf("%d bounds, %d buckets", len(b), domain.TTFBBuckets)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Fatalf("bounds not increasing at %d: %v", i, b)
		}
	}
	cases := []struct {
		ttfb   time.Duration
		bucket int
		ok     bool
	}{
		{0, 0, false},
		{-time.Second, 0, false},
		{time.Microsecond, 0, true},
		{10 * time.Millisecond, 0, true}, // inclusive upper bound
		{10*time.Millisecond + time.Microsecond, 1, true},
		{16 * time.Millisecond, 1, true},
		{999 * time.Millisecond, 10, true},
		{time.Second, 10, true},
		{63 * time.Second, 19, true},
		{63*time.Second + time.Microsecond, 20, true},
		{time.Hour, 20, true},
	}
	for _, c := range cases {
		got, ok := domain.TTFBBucket(c.ttfb)
		if got != c.bucket || ok != c.ok {
			t.Errorf("TTFBBucket(%v) = %d, %v; want %d, %v", c.ttfb, got, ok, c.bucket, c.ok)
		}
	}
}

func TestSeriesQueryValidate(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ok := []domain.SeriesQuery{
		{From: at, To: at.Add(time.Hour), Step: time.Hour},
		{From: at, To: at.Add(92 * day), Step: time.Hour},
		{From: at.Add(5 * time.Hour), To: at.Add(30 * day), Step: day},
		{From: at, To: at.AddDate(3, 0, 0), Step: day},
		// Whole UTC hours in another zone (+05:30 is not on the hour there).
		{From: at.In(time.FixedZone("IST", 5*3600+1800)), To: at.Add(time.Hour), Step: time.Hour},
	}
	for _, q := range ok {
		if err := q.Validate(); err != nil {
			t.Errorf("%+v: %v", q, err)
		}
	}
	bad := []domain.SeriesQuery{
		{},
		{From: at, Step: time.Hour},
		{From: at, To: at, Step: time.Hour},
		{From: at.Add(time.Hour), To: at, Step: time.Hour},
		{From: at.Add(time.Minute), To: at.Add(time.Hour), Step: time.Hour},
		{From: at, To: at.Add(time.Hour + time.Nanosecond), Step: time.Hour},
		{From: at, To: at.Add(92*day + time.Hour), Step: time.Hour},
		{From: at, To: at.AddDate(3, 0, 0).Add(time.Hour), Step: day},
		{From: at, To: at.Add(time.Hour), Step: time.Minute},
		{From: at, To: at.Add(time.Hour)},
	}
	for _, q := range bad {
		if err := q.Validate(); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%+v: err = %v, want invalid", q, err)
		}
	}
}

func TestTTFBQuantile(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	hist := func(counts map[int]int64) domain.SeriesPoint {
		p := domain.SeriesPoint{TTFB: make([]int64, domain.TTFBBuckets)}
		for b, n := range counts {
			p.TTFB[b] = n
		}
		return p
	}
	cases := []struct {
		name string
		p    domain.SeriesPoint
		q    float64
		want time.Duration
	}{
		{"no samples", domain.SeriesPoint{}, 0.5, 0},
		{"all zero buckets", hist(nil), 0.99, 0},
		// 10 samples in (100 ms, 160 ms]: the median is half way through.
		{"inside one bucket", hist(map[int]int64{6: 10}), 0.5, 130 * ms},
		{"q=1 is the bucket's top", hist(map[int]int64{6: 10}), 1, 160 * ms},
		{"q=0 is the first bucket's bottom", hist(map[int]int64{6: 10}), 0, 100 * ms},
		// The first bucket starts at 0.
		{"first bucket", hist(map[int]int64{0: 4}), 0.25, 2500 * time.Microsecond},
		// 90 in (0, 10 ms], 10 in (1 s, 1.6 s]: p50 in the first, p95 half
		// way through the eleventh (rank 95 is the 5th of its 10).
		{"two buckets, p50", hist(map[int]int64{0: 90, 11: 10}), 0.5, 10 * ms * 50 / 90},
		{"two buckets, p95", hist(map[int]int64{0: 90, 11: 10}), 0.95, 1300 * ms},
		{"empty buckets are skipped", hist(map[int]int64{0: 90, 11: 10}), 0.9, 10 * ms},
		{"+Inf bucket is the last bound", hist(map[int]int64{20: 3}), 0.5, 63 * time.Second},
		{"q clamped above", hist(map[int]int64{6: 10}), 7, 160 * ms},
		{"q clamped below", hist(map[int]int64{6: 10}), -1, 100 * ms},
	}
	for _, c := range cases {
		got := c.p.TTFBQuantile(c.q)
		// Interpolation goes through float64: allow a nanosecond.
		if d := got - c.want; d < -1 || d > 1 {
			t.Errorf("%s: TTFBQuantile(%v) = %v, want %v", c.name, c.q, got, c.want)
		}
	}
}

func TestCostBreakdownCacheSaved(t *testing.T) {
	t.Parallel()
	a := domain.CostBreakdown{Input: 10, CacheRead: 2, CacheSaved: 18}
	b := domain.CostBreakdown{Input: 5, CacheSaved: -1}
	sum, ok := a.Add(b)
	if !ok || sum.CacheSaved != 17 || sum.Input != 15 {
		t.Fatalf("Add = %+v, %v", sum, ok)
	}
	if d := sum.Sub(a); d != b {
		t.Fatalf("Sub = %+v, want %+v", d, b)
	}
	if total, _ := a.Sum(); total != 12 {
		t.Fatalf("Sum = %d, want 12: what the cache saved is not a cost", total)
	}
}
