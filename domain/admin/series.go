package admin

import (
	"context"
	"fmt"
	"time"

	"github.com/relaystation/relay/domain"
)

// SeriesStep is the width of a usage series' points.
type SeriesStep string

const (
	StepHour SeriesStep = "hour"
	StepDay  SeriesStep = "day"
)

// HourlySeriesUpTo is the longest range a series without a step is given
// hourly points for; a longer one gets daily points.
const HourlySeriesUpTo = 7 * 24 * time.Hour

// SeriesInput asks for the usage of every key over [From, To) per hour or
// per UTC day.
type SeriesInput struct {
	From, To time.Time
	// Step "" is StepHour for ranges up to HourlySeriesUpTo, StepDay
	// beyond.
	Step SeriesStep
}

func (in SeriesInput) step() SeriesStep {
	if in.Step == "" {
		if in.To.Sub(in.From) <= HourlySeriesUpTo {
			return StepHour
		}
		return StepDay
	}
	return in.Step
}

func (in SeriesInput) query() domain.SeriesQuery {
	q := domain.SeriesQuery{From: in.From.UTC(), To: in.To.UTC(), Step: time.Hour}
	if in.step() == StepDay {
		q.Step = 24 * time.Hour
	}
	return q
}

// Validate checks the step and the range (domain.SeriesQuery.Validate).
func (in SeriesInput) Validate() error {
	switch in.Step {
	case "", StepHour, StepDay:
	default:
		return domain.Invalidf("step must be hour or day")
	}
	return in.query().Validate()
}

// SeriesTotals is the usage of a series' point, or of its whole range.
type SeriesTotals struct {
	Requests   int64
	Usage      domain.Usage
	Cost       domain.Nanodollars
	CacheSaved domain.Nanodollars
	Status     domain.StatusCounts
	// TTFBSamples counts the requests that had a first byte; TTFBP50 and
	// TTFBP95 are estimated from their histogram, and mean nothing when
	// there are none.
	TTFBSamples      int64
	TTFBP50, TTFBP95 time.Duration
}

// SeriesPoint is one hour or UTC day of a series.
type SeriesPoint struct {
	Start time.Time
	SeriesTotals
}

// Series is the usage of every key over [From, To): the points that have
// requests, oldest first, and the whole range's totals.
type Series struct {
	From, To time.Time
	Step     SeriesStep
	Totals   SeriesTotals
	Points   []SeriesPoint
}

// The percentiles a series reports.
const (
	ttfbMedian = 0.5
	ttfbHigh   = 0.95
)

// UsageSeries is the usage of every key (deleted ones included) per hour or
// per day. The range's percentiles come from the sum of the points'
// histograms, which is the histogram of the whole range: a percentile of
// percentiles would not be one.
func (s *Service) UsageSeries(ctx context.Context, in SeriesInput) (Series, error) {
	if err := in.Validate(); err != nil {
		return Series{}, err
	}
	q := in.query()
	pts, err := s.usage.UsageSeries(ctx, q)
	if err != nil {
		return Series{}, fmt.Errorf("usage series: %w", err)
	}
	out := Series{From: q.From, To: q.To, Step: in.step(), Points: make([]SeriesPoint, 0, len(pts))}
	all := domain.SeriesPoint{TTFB: make([]int64, domain.TTFBBuckets)}
	for _, p := range pts {
		out.Points = append(out.Points, SeriesPoint{Start: p.Start.UTC(), SeriesTotals: seriesTotals(p)})
		all.Requests += p.Requests
		all.Usage = all.Usage.Add(p.Usage)
		all.Status = all.Status.Add(p.Status)
		var ok1, ok2 bool
		all.Cost, ok1 = addUSD(all.Cost, p.Cost)
		all.CacheSaved, ok2 = addUSD(all.CacheSaved, p.CacheSaved)
		if !ok1 || !ok2 {
			return Series{}, fmt.Errorf("usage series: the cost sum leaves int64 nanodollars")
		}
		for i, n := range p.TTFB {
			if i < len(all.TTFB) {
				all.TTFB[i] += n
			}
		}
	}
	out.Totals = seriesTotals(all)
	return out, nil
}

func seriesTotals(p domain.SeriesPoint) SeriesTotals {
	return SeriesTotals{
		Requests: p.Requests, Usage: p.Usage, Cost: p.Cost, CacheSaved: p.CacheSaved, Status: p.Status,
		TTFBSamples: p.TTFBSamples(), TTFBP50: p.TTFBQuantile(ttfbMedian), TTFBP95: p.TTFBQuantile(ttfbHigh),
	}
}
