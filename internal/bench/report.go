package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"
)

// Target is one of the performance goals, judged for one relay system.
type Target struct {
	System string  `json:"system"`
	Figure string  `json:"figure"`
	Goal   string  `json:"goal"`
	Value  string  `json:"value"`
	Ratio  float64 `json:"ratio,omitempty"`
	Pass   bool    `json:"pass"`
	// Missing is set when a figure could not be measured.
	Missing bool `json:"missing,omitempty"`
	// Doubt explains why a verdict may not hold.
	Doubt string `json:"doubt,omitempty"`
}

// Report is the machine-readable result of a run.
type Report struct {
	Time    time.Time `json:"time"`
	Machine Machine   `json:"machine"`
	Pinning string    `json:"pinning"`
	// OtherCores is how many cores other processes (PostgreSQL included)
	// kept busy on average during the measurements: above ~0.2 the figures
	// are disturbed.
	OtherCores   float64         `json:"other_cores_busy"`
	LoadAvgStart string          `json:"loadavg_start"`
	Config       json.RawMessage `json:"config"`
	Systems      []*SystemResult `json:"systems"`
	Targets      []Target        `json:"targets"`
	Problems     []string        `json:"problems,omitempty"`
	// Checks are facts that show the run exercised what it claims, e.g.
	// the relay's recorded usage.
	Checks []string `json:"checks,omitempty"`
}

// Targets judges each relay against the bare proxy, by the performance
// issue's goals: every feature on, at or under the bare proxy's cost.
func Targets(results []*SystemResult) []Target {
	var bare *SystemResult
	for _, r := range results {
		if r.Baseline && r.Failed == "" {
			bare = r
		}
	}
	var out []Target
	for _, r := range results {
		if !r.Relay {
			continue
		}
		add := func(figure, goal string, ok bool, pass bool, value string, ratio float64) {
			out = append(out, Target{System: r.Name, Figure: figure, Goal: goal, Value: value, Ratio: ratio, Pass: ok && pass, Missing: !ok})
		}
		haveBare := bare != nil && r.Failed == ""
		b := bare
		if b == nil {
			b = &SystemResult{}
		}
		// CPU per request, at the fixed rate and at saturation.
		ok := haveBare && b.CPUPer1kMS > 0 && r.CPUPer1kMS > 0
		ratio := safeDiv(r.CPUPer1kMS, b.CPUPer1kMS)
		add("CPU per request at 1,000 req/s", "≤ 1.0× bare", ok, ratio <= 1.0,
			fmt.Sprintf("%.1f vs %.1f ms/1k req = %.3f×", r.CPUPer1kMS, b.CPUPer1kMS, ratio), ratio)
		ok = haveBare && b.CPUPer1kSatMS > 0 && r.CPUPer1kSatMS > 0
		ratio = safeDiv(r.CPUPer1kSatMS, b.CPUPer1kSatMS)
		add("CPU per request at saturation", "≤ 1.0× bare", ok, ratio <= 1.0,
			fmt.Sprintf("%.1f vs %.1f ms/1k req = %.3f×", r.CPUPer1kSatMS, b.CPUPer1kSatMS, ratio), ratio)
		// Throughput.
		ok = haveBare && r.SatRPS > 0 && b.SatRPS > 0
		tr := safeDiv(r.SatRPS, b.SatRPS)
		add("saturation throughput", "≥ 1.0× bare", ok, tr >= 1.0, fmt.Sprintf("%.0f vs %.0f req/s = %.3f×", r.SatRPS, b.SatRPS, tr), tr)
		// Added latency.
		ok = haveBare && len(r.RateP50Rounds) > 0 && len(b.RateP50Rounds) > 0
		d50 := r.RateP50us - b.RateP50us
		add("added latency p50 at 1,000 req/s", "≤ 30 µs", ok, d50 <= 30, fmt.Sprintf("%+.0f µs", d50), 0)
		d99 := r.RateP99us - b.RateP99us
		add("added latency p99 at 1,000 req/s", "≤ 1 ms", ok, d99 <= 1000, fmt.Sprintf("%+.0f µs", d99), 0)
		// Streaming.
		ok = haveBare && r.StreamSamples > 0 && b.StreamSamples > 0 && r.StreamErrors == 0
		extra := r.StreamDelayMaxus - b.StreamDelayMaxus
		add("streaming: max event delay beyond bare", "≤ 2 ms", ok, extra <= 2000, fmt.Sprintf("%+.0f µs", extra), 0)
		// Memory per stream, judged on RSS growth against the bare proxy's.
		// A Go process that already holds free resident heap absorbs new
		// streams in it, so the growth of its Go heap and stacks is shown
		// next to it as an upper bound.
		o, bo := r.OpenStreams, b.OpenStreams
		ok = haveBare && o != nil && o.Opened > 0 && o.Opened == o.Wanted && bo != nil && bo.Opened == bo.Wanted
		var per, wanted, mr float64
		val, doubt := "", ""
		if o != nil {
			per, wanted = o.PerStreamKB, float64(o.Wanted)
			gc := "includes uncollected garbage"
			if o.GoAfterGC {
				gc = "after a forced GC"
			}
			if bo != nil {
				mr = safeDiv(per, bo.PerStreamKB)
				val = fmt.Sprintf("RSS %.1f vs %.1f KB = %.2f× (Go heap+stack %.1f KB, %s)", per, bo.PerStreamKB, mr, o.GoPerStreamKB, gc)
			}
			// A Go proxy's RSS grows by roughly 0.5–0.7× its heap+stack
			// growth (big copy buffers are never fully touched); far less
			// means new streams landed in heap the process already held.
			if o.GoBeforeKB > 0 && o.GoPerStreamKB > 64 && per < 0.4*o.GoPerStreamKB {
				doubt = "RSS grew far less than the Go heap+stack: the process reused free resident heap, so RSS understates; rerun with more streams (-open-streams)"
			}
		}
		add(fmt.Sprintf("memory per open stream (%.0f streams)", wanted), "≤ 1.0× bare", ok, mr <= 1.0, val, mr)
		out[len(out)-1].Doubt = doubt
		// Idle memory: RSS after the warm-up, between phases.
		ok = haveBare && r.RSSAfterWarmupKB > 0 && b.RSSAfterWarmupKB > 0
		rr := safeDiv(float64(r.RSSAfterWarmupKB), float64(b.RSSAfterWarmupKB))
		add("idle RSS (after warm-up)", "≤ 2× bare", ok, rr <= 2,
			fmt.Sprintf("%.1f vs %.1f MB = %.2f×", float64(r.RSSAfterWarmupKB)/1024, float64(b.RSSAfterWarmupKB)/1024, rr), rr)
	}
	return out
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return math.Inf(1)
	}
	return a / b
}

// WriteTable prints the human-readable report.
func WriteTable(w io.Writer, rep *Report) {
	m := rep.Machine
	fmt.Fprintf(w, "\nRelay Station benchmark, %s\n", rep.Time.Format(time.RFC3339))
	fmt.Fprintf(w, "machine:  %d × %s, %s RAM, kernel %s, %s, open files %s\n", m.NProc, m.CPUModel, m.MemTotal, m.Kernel, m.GoVersion, m.NoFile)
	fmt.Fprintf(w, "pinning:  %s\n", rep.Pinning)
	busy := ""
	if rep.OtherCores > 0.2 {
		busy = "  << the machine was busy with other work: figures are disturbed, rerun on a quiet machine"
	}
	fmt.Fprintf(w, "background: other processes (PostgreSQL included) kept %.2f cores busy on average; load average %s at start%s\n\n",
		rep.OtherCores, rep.LoadAvgStart, busy)

	var direct, bare *SystemResult
	for _, r := range rep.Systems {
		if r.PID == 0 && !r.Relay && !r.Baseline {
			direct = r
		}
		if r.Baseline {
			bare = r
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "figure\t")
	for _, r := range rep.Systems {
		fmt.Fprintf(tw, "%s\t", r.Name)
	}
	for _, r := range rep.Systems {
		if r.Relay {
			fmt.Fprintf(tw, "%s/bare\t", r.Name)
		}
	}
	fmt.Fprintln(tw)
	row := func(label string, val func(*SystemResult) (float64, bool), format string, ratio bool) {
		fmt.Fprintf(tw, "%s\t", label)
		for _, r := range rep.Systems {
			v, ok := val(r)
			if !ok || r.Failed != "" {
				fmt.Fprint(tw, "–\t")
				continue
			}
			fmt.Fprintf(tw, format+"\t", v)
		}
		for _, r := range rep.Systems {
			if !r.Relay {
				continue
			}
			v, ok1 := val(r)
			b, ok2 := 0.0, false
			if bare != nil {
				b, ok2 = val(bare)
			}
			if !ratio || !ok1 || !ok2 || b == 0 || r.Failed != "" || bare.Failed != "" {
				fmt.Fprint(tw, "\t")
				continue
			}
			fmt.Fprintf(tw, "%.2f×\t", v/b)
		}
		fmt.Fprintln(tw)
	}
	always := func(f func(*SystemResult) float64) func(*SystemResult) (float64, bool) {
		return func(r *SystemResult) (float64, bool) { return f(r), true }
	}
	proc := func(f func(*SystemResult) float64) func(*SystemResult) (float64, bool) {
		return func(r *SystemResult) (float64, bool) { return f(r), r.PID > 0 }
	}
	cfg := struct {
		SatConcurrency   int
		Rate             float64
		StreamEvents     int
		StreamSpacing    time.Duration
		OpenStreams      int
		OpenStreamsLarge int
	}{}
	_ = json.Unmarshal(rep.Config, &cfg)

	row(fmt.Sprintf("throughput, c=%d (req/s)", cfg.SatConcurrency), always(func(r *SystemResult) float64 { return r.SatRPS }), "%.0f", true)
	row("  system core use at saturation", proc(func(r *SystemResult) float64 { return r.SatCoreUse * 100 }), "%.0f%%", false)
	row("  generator core use at saturation", always(func(r *SystemResult) float64 { return r.GenCoreUse * 100 }), "%.0f%%", false)
	row(fmt.Sprintf("latency p50 @%.0f req/s (µs)", cfg.Rate), always(func(r *SystemResult) float64 { return r.RateP50us }), "%.0f", true)
	row(fmt.Sprintf("latency p90 @%.0f req/s (µs)", cfg.Rate), always(func(r *SystemResult) float64 { return r.RateP90us }), "%.0f", true)
	row(fmt.Sprintf("latency p99 @%.0f req/s (µs)", cfg.Rate), always(func(r *SystemResult) float64 { return r.RateP99us }), "%.0f", true)
	if direct != nil {
		row("  added p50 vs direct (µs)", always(func(r *SystemResult) float64 { return r.RateP50us - direct.RateP50us }), "%+.0f", false)
		row("  added p99 vs direct (µs)", always(func(r *SystemResult) float64 { return r.RateP99us - direct.RateP99us }), "%+.0f", false)
	}
	if bare != nil {
		row("  added p50 vs bare (µs)", always(func(r *SystemResult) float64 { return r.RateP50us - bare.RateP50us }), "%+.0f", false)
		row("  added p99 vs bare (µs)", always(func(r *SystemResult) float64 { return r.RateP99us - bare.RateP99us }), "%+.0f", false)
	}
	row(fmt.Sprintf("CPU per 1k req @%.0f req/s (ms)", cfg.Rate), proc(func(r *SystemResult) float64 { return r.CPUPer1kMS }), "%.1f", true)
	row("  same, from schedstat (ms)", proc(func(r *SystemResult) float64 { return r.CPUPer1kSchedMS }), "%.1f", true)
	row("CPU per 1k req at saturation (ms)", proc(func(r *SystemResult) float64 { return r.CPUPer1kSatMS }), "%.1f", true)
	row("peak RSS, VmHWM (MB)", proc(func(r *SystemResult) float64 { return float64(r.PeakRSSKB) / 1024 }), "%.1f", true)
	row("RSS after warm-up (MB)", proc(func(r *SystemResult) float64 { return float64(r.RSSAfterWarmupKB) / 1024 }), "%.1f", true)
	row("stream: time to first event (ms)", always(func(r *SystemResult) float64 { return r.StreamTTFEms }), "%.2f", true)
	row(fmt.Sprintf("stream: total, %d events × %v (ms)", cfg.StreamEvents, cfg.StreamSpacing), always(func(r *SystemResult) float64 { return r.StreamTotalms }), "%.1f", true)
	row("stream: event delay p50 (µs)", always(func(r *SystemResult) float64 { return r.StreamDelayP50us }), "%.0f", true)
	row("stream: event delay p99 (µs)", always(func(r *SystemResult) float64 { return r.StreamDelayP99us }), "%.0f", true)
	row("stream: event delay max (µs)", always(func(r *SystemResult) float64 { return r.StreamDelayMaxus }), "%.0f", true)
	openRow := func(label string, get func(*SystemResult) *OpenStreamsResult, f func(*OpenStreamsResult) float64, needGo bool) {
		row(label, func(r *SystemResult) (float64, bool) {
			o := get(r)
			if o == nil || o.Opened == 0 || (needGo && o.GoBeforeKB == 0) {
				return 0, false
			}
			return f(o), true
		}, "%.1f", true)
	}
	small := func(r *SystemResult) *OpenStreamsResult { return r.OpenStreams }
	large := func(r *SystemResult) *OpenStreamsResult { return r.OpenStreamsLarge }
	rss := func(o *OpenStreamsResult) float64 { return o.PerStreamKB }
	goMem := func(o *OpenStreamsResult) float64 { return o.GoPerStreamKB }
	openRow(fmt.Sprintf("memory per open stream, %d: RSS (KB)", cfg.OpenStreams), small, rss, false)
	openRow("  same, Go heap+stack in use (KB)", small, goMem, true)
	if cfg.OpenStreamsLarge > 0 {
		openRow(fmt.Sprintf("memory per open stream, %d: RSS (KB)", cfg.OpenStreamsLarge), large, rss, false)
		openRow("  same, Go heap+stack in use (KB)", large, goMem, true)
	}
	row("errors (non-2xx + transport + stream)", always(func(r *SystemResult) float64 {
		return float64(r.Non2xx + r.Errors + uint64(r.StreamErrors))
	}), "%.0f", false)
	_ = tw.Flush()

	if len(rep.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (performance issue 17), relay against the bare proxy in this run:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, t := range rep.Targets {
			verdict := "MISS"
			switch {
			case t.Missing:
				verdict = "n/a"
			case t.Pass && t.Doubt != "":
				verdict = "PASS?"
			case t.Pass:
				verdict = "PASS"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", t.System, t.Figure, t.Goal, t.Value, verdict)
		}
		_ = tw.Flush()
		for _, t := range rep.Targets {
			if t.Doubt != "" {
				fmt.Fprintf(w, "  ? %s, %s: %s\n", t.System, t.Figure, t.Doubt)
			}
		}
	}
	if len(rep.Checks) > 0 {
		fmt.Fprintln(w, "\nchecks:")
		for _, c := range rep.Checks {
			fmt.Fprintln(w, "  - "+c)
		}
	}
	var notes []string
	for _, r := range rep.Systems {
		if r.Failed != "" {
			notes = append(notes, fmt.Sprintf("%s FAILED: %s", r.Name, r.Failed))
		}
		for _, n := range r.Notes {
			notes = append(notes, r.Name+": "+n)
		}
	}
	notes = append(notes, rep.Problems...)
	if len(notes) > 0 {
		fmt.Fprintln(w, "\nnotes:")
		for _, n := range notes {
			fmt.Fprintln(w, "  - "+strings.ReplaceAll(n, "\n", " "))
		}
	}
	fmt.Fprintln(w)
}

// WriteJSON writes the report to dir/bench-<timestamp>.json and
// dir/latest.json, returning the first path.
func WriteJSON(dir string, rep *Report) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results folder: %w", err)
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode results: %w", err)
	}
	b = append(b, '\n')
	p := filepath.Join(dir, "bench-"+rep.Time.UTC().Format("20060102T150405Z")+".json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		return "", fmt.Errorf("write results: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "latest.json"), b, 0o644); err != nil {
		return "", fmt.Errorf("write results: %w", err)
	}
	return p, nil
}
