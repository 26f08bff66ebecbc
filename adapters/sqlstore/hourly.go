package sqlstore

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaystation/relay/domain"
)

// HourSums is what a batch adds to one usage_hourly row. Usage holds the
// six token counts then the two server-tool counts; Cost the total, the
// seven classes and what cache reads saved, in the columns' order.
type HourSums struct {
	Requests  int64
	Usage     [8]int64
	Cost      [9]int64
	Status    domain.StatusCounts
	TTFB      [domain.TTFBBuckets]int64
	TTFBCount int64
}

// HourlyRollup sums a batch's records per UTC hour (its start in Unix
// microseconds), as usage_hourly holds them; both engines fill it in Go,
// one upsert per hour.
type HourlyRollup map[int64]*HourSums

const microsPerHour = int64(time.Hour / time.Microsecond)

// HourOf is the start of the UTC hour holding t (Unix microseconds),
// floored before the epoch too.
func HourOf(t int64) int64 { return t - ((t%microsPerHour)+microsPerHour)%microsPerHour }

// Add counts one record as it is stored: its time and TTFB in microseconds,
// its final status and (cleaned) upstream.
func (h HourlyRollup) Add(atMicros int64, status int, upstream string, ttfbMicros int64, usage *[8]int64, cost *[9]int64) {
	hour := HourOf(atMicros)
	s := h[hour]
	if s == nil {
		s = &HourSums{}
		h[hour] = s
	}
	s.Requests++
	for i, v := range usage {
		s.Usage[i] += v
	}
	for i, v := range cost {
		s.Cost[i] += v
	}
	s.Status.Count(status, upstream)
	if b, ok := domain.TTFBBucket(time.Duration(ttfbMicros) * time.Microsecond); ok {
		s.TTFB[b]++
		s.TTFBCount++
	}
}

// AddRecord counts r as an engine stores it (text cleaned, times in
// microseconds).
func (h HourlyRollup) AddRecord(r *domain.UsageRecord) {
	u, c := &r.Usage, &r.Cost
	usage := [8]int64{u.InputTokens, u.OutputTokens, u.CacheCreationInputTokens, u.CacheReadInputTokens,
		u.CacheCreation5mTokens, u.CacheCreation1hTokens, r.ServerTools.WebSearchRequests, r.ServerTools.WebFetchRequests}
	cost := [9]int64{int64(c.Total), int64(c.Input), int64(c.Output), int64(c.CacheWrite5m), int64(c.CacheWrite1h),
		int64(c.CacheRead), int64(c.WebSearch), int64(c.WebFetch), int64(c.CacheSaved)}
	h.Add(r.Time.UnixMicro(), r.Status, Clean(r.Upstream), r.TTFB.Microseconds(), &usage, &cost)
}

// Hours are the rollup's hours in order: the order both engines upsert
// them in, so that two batches of the same hours wait for each other
// instead of deadlocking.
func (h HourlyRollup) Hours() []int64 {
	out := make([]int64, 0, len(h))
	for hour := range h {
		out = append(out, hour)
	}
	slices.Sort(out)
	return out
}

// Values are s's numbers after the hour, in the order of usage_hourly's
// columns.
func (s *HourSums) Values() []int64 {
	out := make([]int64, 0, 46)
	out = append(out, s.Requests)
	out = append(out, s.Usage[:]...)
	out = append(out, s.Cost[:]...)
	st := s.Status
	out = append(out, st.OK, st.ClientError, st.RateLimited, st.ServerError, st.Overloaded, st.Refused)
	out = append(out, s.TTFB[:]...)
	return append(out, s.TTFBCount)
}

// ValuesSQL writes the rollup as the rows of a SQL VALUES list, hours in
// order, each hour as the timestamp literal ts formats: only integers and
// the engine's own literal, so the text is safe to send as it is.
func (h HourlyRollup) ValuesSQL(ts func(time.Time) string) string {
	var b strings.Builder
	for i, hour := range h.Hours() {
		if i > 0 {
			b.WriteString(",\n        ")
		}
		b.WriteString("(" + ts(time.UnixMicro(hour).UTC()))
		for _, v := range h[hour].Values() {
			b.WriteString(", ")
			b.WriteString(strconv.FormatInt(v, 10))
		}
		b.WriteByte(')')
	}
	return b.String()
}
