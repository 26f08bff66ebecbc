// Package bench is the harness behind `make bench`: a load generator, the
// measurement phases and the report comparing the relay with a bare
// reverse proxy and with going direct to a fake upstream.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Config sizes the phases.
type Config struct {
	Rounds int

	Warmup time.Duration

	SatConcurrency int
	SatDuration    time.Duration

	Rate         float64
	RateDuration time.Duration
	RateWorkers  int

	StreamEvents  int
	StreamSpacing time.Duration
	StreamSamples int

	OpenStreams      int
	OpenStreamsLarge int // 0 to skip
	OpenSettle       time.Duration

	// Pause between two measurements, so one system's background work
	// (e.g. a usage flush) does not land in the next one's window.
	Pause time.Duration

	ClockTicks int
	// ProfileDir, when set, receives a CPU profile of every system with a
	// PprofURL during each saturation round (name-saturation-rN.pprof).
	// Profiling costs the system a little CPU: a profiled run's figures
	// are for reading the profile against, not for the table.
	ProfileDir string
	// Log receives progress lines.
	Log io.Writer
}

// DefaultConfig is the full `make bench` run.
func DefaultConfig() Config {
	return Config{
		Rounds:           3,
		Warmup:           time.Second,
		SatConcurrency:   64,
		SatDuration:      5 * time.Second,
		Rate:             1000,
		RateDuration:     5 * time.Second,
		RateWorkers:      64,
		StreamEvents:     50,
		StreamSpacing:    20 * time.Millisecond,
		StreamSamples:    10,
		OpenStreams:      1000,
		OpenStreamsLarge: 10000,
		OpenSettle:       time.Second,
		Pause:            300 * time.Millisecond,
		ClockTicks:       100,
		Log:              io.Discard,
	}
}

// QuickConfig is a smoke-test run: every phase, one second or less.
func QuickConfig() Config {
	c := DefaultConfig()
	c.Rounds = 1
	c.Warmup = 300 * time.Millisecond
	c.SatDuration = time.Second
	c.RateDuration = time.Second
	c.StreamEvents = 10
	c.StreamSamples = 4
	// Fewer streams than 1000 fit in the heap a relay already holds and
	// read as nearly free: keep the full count even here.
	c.OpenStreamsLarge = 0
	c.OpenSettle = 300 * time.Millisecond
	c.Pause = 100 * time.Millisecond
	return c
}

// Median returns the median of xs (0 when empty).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// SystemResult holds every figure for one system. Latencies are in
// microseconds, CPU in milliseconds, memory in KB.
type SystemResult struct {
	Name     string `json:"name"`
	PID      int    `json:"pid,omitempty"`
	Baseline bool   `json:"baseline,omitempty"`
	Relay    bool   `json:"relay,omitempty"`
	Failed   string `json:"failed,omitempty"`

	SatRPSRounds []float64 `json:"sat_rps_rounds"`
	SatRPS       float64   `json:"sat_rps"`
	SatP50us     float64   `json:"sat_p50_us"`
	SatP99us     float64   `json:"sat_p99_us"`
	// SatCoreUse is the system's CPU time over wall time at saturation
	// (1.0 = one full core); GenCoreUse is the load generator's.
	SatCoreUse float64 `json:"sat_core_use,omitempty"`
	GenCoreUse float64 `json:"gen_core_use"`

	RateP50Rounds []float64 `json:"rate_p50_us_rounds"`
	RateP90Rounds []float64 `json:"rate_p90_us_rounds"`
	RateP99Rounds []float64 `json:"rate_p99_us_rounds"`
	RateP50us     float64   `json:"rate_p50_us"`
	RateP90us     float64   `json:"rate_p90_us"`
	RateP99us     float64   `json:"rate_p99_us"`
	RateMaxus     float64   `json:"rate_max_us"`
	RateAchieved  float64   `json:"rate_achieved_rps"`
	RateLate      uint64    `json:"rate_late"`

	CPUPer1kMS      float64 `json:"cpu_per_1k_ms,omitempty"`       // at the fixed rate, /proc stat ticks
	CPUPer1kSchedMS float64 `json:"cpu_per_1k_sched_ms,omitempty"` // same window, schedstat ns
	CPUPer1kSatMS   float64 `json:"cpu_per_1k_sat_ms,omitempty"`   // at saturation

	RSSAfterWarmupKB int64 `json:"rss_after_warmup_kb,omitempty"`
	PeakRSSKB        int64 `json:"peak_rss_kb,omitempty"`

	StreamTTFEms         float64 `json:"stream_ttfe_ms"`
	StreamTotalms        float64 `json:"stream_total_ms"`
	StreamDelayP50us     float64 `json:"stream_delay_p50_us"`
	StreamDelayP99us     float64 `json:"stream_delay_p99_us"`
	StreamDelayMaxus     float64 `json:"stream_delay_max_us"`     // median over rounds of each round's max
	StreamDelayMaxAllus  float64 `json:"stream_delay_max_all_us"` // the largest seen
	StreamSamples        int     `json:"stream_samples"`
	streamMaxRounds      []float64
	streamTTFE, streamTT []float64

	OpenStreams      *OpenStreamsResult `json:"open_streams,omitempty"`
	OpenStreamsLarge *OpenStreamsResult `json:"open_streams_large,omitempty"`

	Non2xx       uint64   `json:"non_2xx"`
	Errors       uint64   `json:"transport_errors"`
	StreamErrors int      `json:"stream_errors"`
	Notes        []string `json:"notes,omitempty"`

	satHist, rateHist Hist
	streamDelay       Hist
	rateTicks         uint64
	rateSchedNS       uint64
	rateReqs          uint64
	satTicks, satReqs uint64
	satSelfTicks      uint64
	satWall           time.Duration
	rateWall          time.Duration
}

func (r *SystemResult) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// Runner runs the phases against a set of systems.
type Runner struct {
	cfg     Config
	systems []System
	results []*SystemResult
	self    int
}

// NewRunner prepares a run; systems are measured in the order given,
// rotated each round.
func NewRunner(cfg Config, systems []System) *Runner {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.ClockTicks <= 0 {
		cfg.ClockTicks = 100
	}
	r := &Runner{cfg: cfg, systems: systems, self: os.Getpid()}
	for _, s := range systems {
		r.results = append(r.results, &SystemResult{Name: s.Name, PID: s.PID, Baseline: s.Baseline, Relay: s.Relay})
	}
	return r
}

func (r *Runner) logf(format string, args ...any) {
	fmt.Fprintf(r.cfg.Log, "bench: "+format+"\n", args...)
}

// live lists the systems still being measured, rotated by round.
func (r *Runner) live(round int) []int {
	var idx []int
	for i, res := range r.results {
		if res.Failed == "" {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return idx
	}
	k := round % len(idx)
	return append(idx[k:], idx[:k]...)
}

func (r *Runner) fail(i int, err error) {
	r.results[i].Failed = err.Error()
	r.logf("%s: FAILED, left out of the remaining phases: %v", r.systems[i].Name, err)
}

func (r *Runner) pause(ctx context.Context) {
	select {
	case <-time.After(r.cfg.Pause):
	case <-ctx.Done():
	}
}

// Run executes every phase and returns the per-system results.
func (r *Runner) Run(ctx context.Context) ([]*SystemResult, error) {
	if err := r.warmup(ctx); err != nil {
		return r.results, err
	}
	r.openStreams(ctx, r.cfg.OpenStreams, false)
	for round := 0; round < r.cfg.Rounds && ctx.Err() == nil; round++ {
		r.logf("round %d/%d: saturation, %d connections, %v each", round+1, r.cfg.Rounds, r.cfg.SatConcurrency, r.cfg.SatDuration)
		for _, i := range r.live(round) {
			r.saturate(ctx, i, round)
		}
	}
	for round := 0; round < r.cfg.Rounds && ctx.Err() == nil; round++ {
		r.logf("round %d/%d: fixed rate %.0f req/s, %v each", round+1, r.cfg.Rounds, r.cfg.Rate, r.cfg.RateDuration)
		for _, i := range r.live(round) {
			r.fixedRate(ctx, i)
		}
	}
	client := NewStreamClient(r.cfg.StreamSamples * 2)
	defer client.CloseIdleConnections()
	for round := 0; round < r.cfg.Rounds && ctx.Err() == nil; round++ {
		r.logf("round %d/%d: streaming, %d concurrent streams of %d events at %v", round+1, r.cfg.Rounds, r.cfg.StreamSamples, r.cfg.StreamEvents, r.cfg.StreamSpacing)
		for _, i := range r.live(round) {
			r.stream(ctx, client, i)
		}
	}
	if r.cfg.OpenStreamsLarge > 0 {
		r.openStreams(ctx, r.cfg.OpenStreamsLarge, true)
	}
	for i, s := range r.systems {
		if s.PID > 0 {
			if m, err := ReadMemory(s.PID); err == nil {
				r.results[i].PeakRSSKB = m.HWMKB
			}
		}
		r.finish(r.results[i])
	}
	return r.results, ctx.Err()
}

func (r *Runner) warmup(ctx context.Context) error {
	client := NewStreamClient(4)
	defer client.CloseIdleConnections()
	for i, s := range r.systems {
		r.logf("%s: warming up (%v) at %s", s.Name, r.cfg.Warmup, s.URL)
		res, err := Saturate(ctx, s, 8, r.cfg.Warmup)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case err != nil:
			r.fail(i, err)
			continue
		case res.Requests == 0 || res.Non2xx > 0 || res.Errors > 0:
			r.fail(i, fmt.Errorf("warm-up: %d ok, %d non-2xx (first status %d), %d errors (%s)",
				res.Requests, res.Non2xx, res.FirstStatus, res.Errors, res.FirstError))
			continue
		}
		if _, err := StreamOnce(ctx, client, s, 3, 0); err != nil {
			r.fail(i, fmt.Errorf("warm-up stream: %w", err))
			continue
		}
		if s.PID > 0 {
			if m, err := ReadMemory(s.PID); err == nil {
				r.results[i].RSSAfterWarmupKB = m.RSSKB
			}
		}
	}
	return nil
}

// FDLimit is the soft "Max open files" of pid.
func FDLimit(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if f[0] == "unlimited" {
					return 1 << 30, nil
				}
				return strconv.Atoi(f[0])
			}
		}
	}
	return 0, fmt.Errorf("no open-files limit for %d", pid)
}

func (r *Runner) openStreams(ctx context.Context, n int, large bool) {
	if n <= 0 {
		return
	}
	for _, i := range r.live(0) {
		s, res := r.systems[i], r.results[i]
		if s.PID <= 0 || ctx.Err() != nil {
			continue
		}
		// The proxy holds two sockets per stream; this process holds the
		// client side and, with the fake upstream in process, the server side.
		need := 2*n + 256
		sutLim, err1 := FDLimit(s.PID)
		selfLim, err2 := FDLimit(r.self)
		if err1 != nil || err2 != nil || sutLim < need || selfLim < need {
			res.note("%d open streams skipped: needs %d file descriptors per process, limits are %d (system) and %d (generator)", n, need, sutLim, selfLim)
			r.logf("%s: %d open streams skipped (file-descriptor limits %d/%d < %d)", s.Name, n, sutLim, selfLim, need)
			continue
		}
		r.logf("%s: holding %d open streams", s.Name, n)
		osr, err := OpenStreams(ctx, s, n, r.cfg.OpenSettle)
		if err != nil {
			res.note("open streams (%d): %v", n, err)
			r.logf("%s: open streams: %v", s.Name, err)
		}
		if large {
			res.OpenStreamsLarge = osr
		} else {
			res.OpenStreams = osr
		}
		r.pause(ctx)
	}
}

func (r *Runner) saturate(ctx context.Context, i int, round int) {
	s, res := r.systems[i], r.results[i]
	r.pause(ctx)
	if prof := r.profile(ctx, s, round); prof != nil {
		defer func() {
			if err := <-prof; err != nil {
				r.logf("  %s: profile: %v", s.Name, err)
			}
		}()
	}
	var t0, self0 uint64
	if s.PID > 0 {
		t0, _ = ReadCPUTicks(s.PID)
	}
	self0, _ = ReadCPUTicks(r.self)
	lr, err := Saturate(ctx, s, r.cfg.SatConcurrency, r.cfg.SatDuration)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(i, fmt.Errorf("saturation: %w", err))
		}
		return
	}
	self1, _ := ReadCPUTicks(r.self)
	if s.PID > 0 {
		t1, err := ReadCPUTicks(s.PID)
		if err != nil {
			r.fail(i, fmt.Errorf("process %d gone: %w", s.PID, err))
			return
		}
		res.satTicks += t1 - t0
	}
	res.satSelfTicks += self1 - self0
	res.satReqs += lr.Requests
	res.satWall += lr.Elapsed
	res.SatRPSRounds = append(res.SatRPSRounds, lr.RPS())
	res.satHist.Merge(&lr.Hist)
	res.Non2xx += lr.Non2xx
	res.Errors += lr.Errors
	if lr.Non2xx > 0 || lr.Errors > 0 {
		res.note("saturation: %d non-2xx (first %d), %d errors (%s)", lr.Non2xx, lr.FirstStatus, lr.Errors, lr.FirstError)
	}
	r.logf("  %-15s %9.0f req/s  p50 %7.0fµs  p99 %7.0fµs", s.Name, lr.RPS(), us(lr.Hist.Quantile(.5)), us(lr.Hist.Quantile(.99)))
}

// profile starts a CPU profile of s covering the saturation phase about to
// begin, when asked for; the channel answers once it is written.
func (r *Runner) profile(ctx context.Context, s System, round int) chan error {
	if r.cfg.ProfileDir == "" || s.PprofURL == "" {
		return nil
	}
	secs := max(1, int(r.cfg.SatDuration.Seconds())-1)
	path := filepath.Join(r.cfg.ProfileDir, fmt.Sprintf("%s-saturation-r%d.pprof", s.Name, round+1))
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", s.PprofURL, secs), nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- err
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("%s answered %d", req.URL, resp.StatusCode)
			return
		}
		f, err := os.Create(path)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return done
}

func (r *Runner) fixedRate(ctx context.Context, i int) {
	s, res := r.systems[i], r.results[i]
	r.pause(ctx)
	var t0, n0 uint64
	if s.PID > 0 {
		t0, _ = ReadCPUTicks(s.PID)
		n0, _ = ReadSchedNS(s.PID)
	}
	lr, err := FixedRate(ctx, s, r.cfg.Rate, r.cfg.RateDuration, r.cfg.RateWorkers)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(i, fmt.Errorf("fixed rate: %w", err))
		}
		return
	}
	if s.PID > 0 {
		// Let work the requests started (an asynchronous usage flush)
		// finish inside the window that pays for it.
		r.pause(ctx)
		t1, err := ReadCPUTicks(s.PID)
		if err != nil {
			r.fail(i, fmt.Errorf("process %d gone: %w", s.PID, err))
			return
		}
		n1, _ := ReadSchedNS(s.PID)
		res.rateTicks += t1 - t0
		if n1 > n0 {
			res.rateSchedNS += n1 - n0
		}
	}
	res.rateReqs += lr.Requests
	res.rateWall += lr.Elapsed
	res.rateHist.Merge(&lr.Hist)
	res.RateP50Rounds = append(res.RateP50Rounds, us(lr.Hist.Quantile(.50)))
	res.RateP90Rounds = append(res.RateP90Rounds, us(lr.Hist.Quantile(.90)))
	res.RateP99Rounds = append(res.RateP99Rounds, us(lr.Hist.Quantile(.99)))
	res.RateLate += lr.Late
	res.Non2xx += lr.Non2xx
	res.Errors += lr.Errors
	if lr.Non2xx > 0 || lr.Errors > 0 {
		res.note("fixed rate: %d non-2xx (first %d), %d errors (%s)", lr.Non2xx, lr.FirstStatus, lr.Errors, lr.FirstError)
	}
	r.logf("  %-15s p50 %7.0fµs  p90 %7.0fµs  p99 %7.0fµs  (%d requests, %d late)", s.Name,
		us(lr.Hist.Quantile(.5)), us(lr.Hist.Quantile(.9)), us(lr.Hist.Quantile(.99)), lr.Requests, lr.Late)
}

func (r *Runner) stream(ctx context.Context, client *http.Client, i int) {
	s, res := r.systems[i], r.results[i]
	r.pause(ctx)
	sr := Streams(ctx, client, s, r.cfg.StreamSamples, r.cfg.StreamEvents, r.cfg.StreamSpacing)
	res.StreamErrors += sr.Errors
	if sr.Errors > 0 {
		res.note("streaming: %d of %d streams failed: %s", sr.Errors, r.cfg.StreamSamples, sr.Err)
	}
	for _, smp := range sr.Samples {
		res.streamTTFE = append(res.streamTTFE, float64(smp.TTFE)/float64(time.Millisecond))
		res.streamTT = append(res.streamTT, float64(smp.Total)/float64(time.Millisecond))
	}
	res.StreamSamples += len(sr.Samples)
	res.streamDelay.Merge(&sr.Delay)
	if sr.Delay.Count() > 0 {
		res.streamMaxRounds = append(res.streamMaxRounds, us(sr.Delay.Max()))
	}
	r.logf("  %-15s ttfe %6.2fms  delay p50 %6.0fµs  max %7.0fµs  (%d streams)", s.Name,
		Median(res.streamTTFE), us(sr.Delay.Quantile(.5)), us(sr.Delay.Max()), len(sr.Samples))
}

func (r *Runner) finish(res *SystemResult) {
	ticks := float64(r.cfg.ClockTicks)
	res.SatRPS = Median(res.SatRPSRounds)
	res.SatP50us = us(res.satHist.Quantile(.5))
	res.SatP99us = us(res.satHist.Quantile(.99))
	if res.satWall > 0 {
		res.GenCoreUse = float64(res.satSelfTicks) / ticks / res.satWall.Seconds()
		if res.PID > 0 {
			res.SatCoreUse = float64(res.satTicks) / ticks / res.satWall.Seconds()
		}
	}
	if res.PID > 0 && res.satReqs > 0 {
		res.CPUPer1kSatMS = float64(res.satTicks) / ticks * 1000 / float64(res.satReqs) * 1000
	}
	res.RateP50us = Median(res.RateP50Rounds)
	res.RateP90us = Median(res.RateP90Rounds)
	res.RateP99us = Median(res.RateP99Rounds)
	res.RateMaxus = us(res.rateHist.Max())
	if res.rateWall > 0 {
		res.RateAchieved = float64(res.rateReqs) / res.rateWall.Seconds()
	}
	if res.PID > 0 && res.rateReqs > 0 {
		res.CPUPer1kMS = float64(res.rateTicks) / ticks * 1000 / float64(res.rateReqs) * 1000
		res.CPUPer1kSchedMS = float64(res.rateSchedNS) / 1e6 / float64(res.rateReqs) * 1000
	}
	res.StreamTTFEms = Median(res.streamTTFE)
	res.StreamTotalms = Median(res.streamTT)
	res.StreamDelayP50us = us(res.streamDelay.Quantile(.5))
	res.StreamDelayP99us = us(res.streamDelay.Quantile(.99))
	res.StreamDelayMaxus = Median(res.streamMaxRounds)
	res.StreamDelayMaxAllus = us(res.streamDelay.Max())
}
