package bench_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/internal/bench"
	"github.com/relaystation/relay/internal/bench/bareproxy"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

func MustFake(tb testing.TB) *fakeanthropic.Endpoint {
	tb.Helper()
	s, err := bench.StartFake("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func NewBare(tb testing.TB, upstream string) *httptest.Server {
	tb.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		tb.Fatal(err)
	}
	p := bareproxy.New(u, "sk-ant-test")
	srv := httptest.NewServer(p)
	tb.Cleanup(func() {
		srv.Close()
		p.Transport.(*http.Transport).CloseIdleConnections()
	})
	return srv
}

// TestRunnerQuick runs every phase, shrunk, against direct and an
// in-process bare proxy, and checks that the figures are sane.
func TestRunnerQuick(t *testing.T) {
	fake := MustFake(t)
	bare := NewBare(t, fake.URL())
	// A second bare proxy plays the relay, so the target logic runs too.
	relay := NewBare(t, fake.URL())
	cfg := bench.QuickConfig()
	cfg.Warmup = 100 * time.Millisecond
	cfg.SatConcurrency = 8
	cfg.SatDuration = 300 * time.Millisecond
	cfg.Rate = 300
	cfg.RateDuration = 300 * time.Millisecond
	cfg.RateWorkers = 4
	cfg.StreamEvents = 3
	cfg.StreamSpacing = 5 * time.Millisecond
	cfg.StreamSamples = 2
	cfg.OpenStreams = 20
	cfg.OpenSettle = 50 * time.Millisecond
	cfg.Pause = 10 * time.Millisecond
	if testing.Verbose() {
		cfg.Log = os.Stderr
	}
	pid := os.Getpid() // in process: the figures are the test's own, but the code paths run
	systems := []bench.System{
		{Name: "direct", URL: fake.URL(), Key: "sk-ant-test"},
		{Name: "bare", URL: bare.URL, Key: "client", PID: pid, Baseline: true},
		{Name: "relay", URL: relay.URL, Key: "client", PID: pid, Relay: true},
	}
	results, err := bench.NewRunner(cfg, systems).Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Failed != "" {
			t.Fatalf("%s failed: %s", r.Name, r.Failed)
		}
		if r.SatRPS <= 0 {
			t.Errorf("%s: throughput %v", r.Name, r.SatRPS)
		}
		if !(r.RateP50us > 0 && r.RateP50us <= r.RateP90us && r.RateP90us <= r.RateP99us) {
			t.Errorf("%s: percentiles out of order: p50 %v p90 %v p99 %v", r.Name, r.RateP50us, r.RateP90us, r.RateP99us)
		}
		if r.Non2xx+r.Errors > 0 {
			t.Errorf("%s: %d non-2xx, %d errors: %v", r.Name, r.Non2xx, r.Errors, r.Notes)
		}
		// Once in a few dozen runs on a loaded machine an in-process proxy
		// drops one stream ("use of closed network connection" on its
		// upstream read); that says nothing about the harness's arithmetic.
		if r.StreamErrors > 0 {
			t.Logf("%s: %d stream errors: %v", r.Name, r.StreamErrors, r.Notes)
		}
		if r.StreamSamples+r.StreamErrors != cfg.StreamSamples || r.StreamSamples == 0 || r.StreamTTFEms <= 0 || r.StreamTotalms < r.StreamTTFEms {
			t.Errorf("%s: streams %d ttfe %v total %v", r.Name, r.StreamSamples, r.StreamTTFEms, r.StreamTotalms)
		}
		if r.StreamDelayP50us <= 0 || r.StreamDelayMaxus < r.StreamDelayP50us {
			t.Errorf("%s: stream delay p50 %v max %v", r.Name, r.StreamDelayP50us, r.StreamDelayMaxus)
		}
		if r.PID > 0 {
			if r.OpenStreams == nil || r.OpenStreams.Opened != cfg.OpenStreams {
				t.Errorf("%s: open streams %+v", r.Name, r.OpenStreams)
			}
			if r.PeakRSSKB <= 0 {
				t.Errorf("%s: peak RSS %d", r.Name, r.PeakRSSKB)
			}
		}
	}
	targets := bench.Targets(results)
	if len(targets) != 8 {
		t.Fatalf("%d targets, want 8: %+v", len(targets), targets)
	}
	for _, tg := range targets {
		// CPU may be under a tick here; streaming is n/a after a dropped stream.
		if tg.Missing && !strings.HasPrefix(tg.Figure, "CPU") && !strings.HasPrefix(tg.Figure, "streaming") {
			t.Errorf("target %q not measured: %+v", tg.Figure, tg)
		}
	}
	var sb strings.Builder
	bench.WriteTable(&sb, &bench.Report{Time: time.Now(), Systems: results, Targets: targets, Config: []byte(`{}`)})
	for _, want := range []string{"throughput", "relay/bare", "targets (performance issue 17)"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, sb.String())
		}
	}
	t.Log("\n" + sb.String())
}

func TestParseStatCPU(t *testing.T) {
	// The command name may hold spaces and parentheses.
	line := "4242 (relay (x) y) S 1 4242 4242 0 -1 4194560 2215 0 0 0 1234 567 0 0 20 0 9 0 123456 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0\n"
	got, err := bench.ParseStatCPU(line)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1234+567 {
		t.Fatalf("utime+stime = %d, want %d", got, 1234+567)
	}
	if _, err := bench.ParseStatCPU("1 (x) S 1 2"); err == nil {
		t.Fatal("short line accepted")
	}
	if _, err := bench.ReadCPUTicks(os.Getpid()); err != nil {
		t.Fatal(err)
	}
}

func TestParseStatus(t *testing.T) {
	m, err := bench.ParseStatus([]byte("Name:\trelay\nVmPeak:\t 9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m.RSSKB != 4096 || m.HWMKB != 5120 {
		t.Fatalf("%+v", m)
	}
	if _, err := bench.ParseStatus([]byte("Name: x\n")); err == nil {
		t.Fatal("missing fields accepted")
	}
}

func TestHistQuantiles(t *testing.T) {
	var h bench.Hist
	vals := make([]float64, 0, 20000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		d := time.Duration(r.ExpFloat64() * float64(200*time.Microsecond))
		h.Record(d)
		vals = append(vals, float64(d))
	}
	sort.Float64s(vals)
	for _, q := range []float64{0.5, 0.9, 0.99} {
		exact := vals[int(q*float64(len(vals)))]
		got := float64(h.Quantile(q))
		if rel := (got - exact) / exact; rel > 0.01 || rel < -0.01 {
			t.Errorf("q%.2f: %v, exact %v", q, time.Duration(got), time.Duration(exact))
		}
	}
	if h.Quantile(1) != h.Max() || h.Count() != 20000 {
		t.Fatal("max or count wrong")
	}
	var empty bench.Hist
	if empty.Quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
}

func TestMedian(t *testing.T) {
	if m := bench.Median([]float64{3, 1, 2}); m != 2 {
		t.Fatal(m)
	}
	if m := bench.Median([]float64{4, 1, 2, 3}); m != 2.5 {
		t.Fatal(m)
	}
}

// TestSaturateChunked checks the raw client against chunked answers, as a
// relay that does not pass Content-Length on might send.
func TestSaturateChunked(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100)))
		w.(http.Flusher).Flush()
		w.Write([]byte("end"))
	}))
	defer srv.Close()
	res, err := bench.Saturate(context.Background(), bench.System{Name: "chunked", URL: srv.URL}, 2, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors > 0 || res.Non2xx > 0 {
		t.Fatalf("%+v", res)
	}
}
