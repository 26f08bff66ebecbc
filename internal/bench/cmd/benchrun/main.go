// Command benchrun is `make bench`: it starts a fake Anthropic upstream (in
// this process), the bare reverse proxy and the relay (on SQLite, then on
// PostgreSQL) as separate processes, provisions a relay key through the
// admin API, measures every system in interleaved rounds and prints a table
// with the relay's ratios against the bare proxy.
//
// Exit status: 0 when every system was measured, 1 when one could not be
// (the table still shows the others), 2 for bad flags, 3 with -strict when a
// target is missed.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaystation/relay/internal/bench"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

const upstreamKey = "sk-ant-bench-upstream"

type options struct {
	relay, bareproxy string
	pgURL            string
	out              string
	pin              string
	quick, strict    bool
	keep             bool
	nginx            bool
	cfg              bench.Config
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "benchrun:", err)
		return 2
	}
	if pinned, err := maybePin(o, args); err != nil {
		fmt.Fprintln(stderr, "benchrun: pinning:", err)
	} else if pinned {
		return 0 // not reached: the process was replaced
	}
	h := &harness{o: o, stderr: stderr}
	defer h.cleanup()
	rep, err := h.run(ctx)
	if rep != nil {
		bench.WriteTable(stdout, rep)
		if p, werr := bench.WriteJSON(o.out, rep); werr != nil {
			fmt.Fprintln(stderr, "benchrun:", werr)
		} else {
			fmt.Fprintf(stdout, "results: %s (and %s)\n", p, filepath.Join(o.out, "latest.json"))
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "benchrun:", err)
		return 1
	}
	for _, s := range rep.Systems {
		if s.Failed != "" {
			return 1
		}
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	if o.strict {
		for _, t := range rep.Targets {
			if !t.Pass {
				return 3
			}
		}
	}
	return 0
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.relay, "relay", "bin/relay", "relay binary; empty to measure only direct and the bare proxy")
	fs.StringVar(&o.bareproxy, "bareproxy", "", "bare proxy binary (default: bareproxy next to this binary)")
	fs.StringVar(&o.pgURL, "pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server URL used to create and drop a scratch database; empty to skip the PostgreSQL relay")
	fs.StringVar(&o.out, "out", "bench-results", "folder for the JSON results")
	fs.StringVar(&o.pin, "pin", "auto", "pin with taskset: auto, on or off")
	fs.BoolVar(&o.quick, "quick", false, "smoke test: every phase about one second")
	fs.BoolVar(&o.strict, "strict", false, "exit 3 when a target is missed")
	fs.BoolVar(&o.keep, "keep", false, "keep the scratch folder (relay logs and data)")
	fs.BoolVar(&o.nginx, "nginx", true, "measure nginx (the reference proxy) too, when it is installed")
	profile := fs.String("profile", "", "write CPU profiles of every system's saturation rounds to this folder (the run's figures are then not for the table)")
	d := bench.DefaultConfig()
	rounds := fs.Int("rounds", 0, "rounds per phase (default 3, quick 1)")
	satDur := fs.Duration("sat-duration", 0, "saturation phase length per system and round (default 5s)")
	conc := fs.Int("concurrency", d.SatConcurrency, "connections in the saturation phase")
	rate := fs.Float64("rate", d.Rate, "request rate of the latency phase, req/s")
	rateDur := fs.Duration("rate-duration", 0, "latency phase length per system and round (default 5s)")
	events := fs.Int("stream-events", d.StreamEvents, "content deltas per measured stream")
	spacing := fs.Duration("stream-spacing", d.StreamSpacing, "pause between deltas")
	samples := fs.Int("stream-samples", 0, "concurrent streams per system and round (default 10)")
	open := fs.Int("open-streams", 0, "streams held open for the memory figure (default 1000)")
	large := fs.Int("open-streams-large", -1, "second, larger memory figure if file descriptors allow; 0 to skip (default 10000)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	c := d
	if o.quick {
		c = bench.QuickConfig()
	}
	c.SatConcurrency, c.Rate = *conc, *rate
	if *rounds > 0 {
		c.Rounds = *rounds
	}
	if *satDur > 0 {
		c.SatDuration = *satDur
	}
	if *rateDur > 0 {
		c.RateDuration = *rateDur
	}
	if !o.quick || *events != d.StreamEvents {
		c.StreamEvents = *events
	}
	c.StreamSpacing = *spacing
	if *samples > 0 {
		c.StreamSamples = *samples
	}
	if *open > 0 {
		c.OpenStreams = *open
	}
	if *large >= 0 {
		c.OpenStreamsLarge = *large
	}
	switch o.pin {
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("-pin %q: want auto, on or off", o.pin)
	}
	c.ClockTicks = bench.ClockTicks()
	if *profile != "" {
		if err := os.MkdirAll(*profile, 0o755); err != nil {
			return nil, err
		}
		c.ProfileDir = *profile
	}
	c.Log = stderr
	o.cfg = c
	return o, nil
}

// pinning says whether the systems run on CPU 1 and this process on CPU 0.
func pinning(o *options) (string, bool) {
	if o.pin == "off" {
		return "", false
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return "", false
	}
	if runtime.NumCPU() < 2 && os.Getenv("BENCH_PINNED") == "" {
		return "", false
	}
	return "taskset", true
}

// maybePin re-executes this program under `taskset -c 0`, so the load
// generator and the fake upstream share CPU 0 and every system under test
// gets CPU 1 to itself. GOMAXPROCS follows the affinity mask.
func maybePin(o *options, args []string) (bool, error) {
	if os.Getenv("BENCH_PINNED") == "1" {
		return false, nil
	}
	ts, ok := pinning(o)
	if !ok {
		if o.pin == "on" {
			return false, errors.New("-pin on, but taskset is missing or there is one CPU")
		}
		return false, nil
	}
	path, _ := exec.LookPath(ts)
	self, err := os.Executable()
	if err != nil {
		return false, err
	}
	argv := append([]string{ts, "-c", "0", self}, args...)
	env := append(os.Environ(), "BENCH_PINNED=1")
	return true, syscall.Exec(path, argv, env)
}

type harness struct {
	o       *options
	stderr  io.Writer
	tmp     string
	procs   []*proc
	fake    *fakeanthropic.Endpoint
	pgAdmin string
	pgDB    string
	admins  []*relayAdmin
}

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.stderr, "bench: "+format+"\n", args...)
}

func (h *harness) run(ctx context.Context) (*bench.Report, error) {
	o := h.o
	rep := &bench.Report{Time: time.Now(), Machine: machine()}
	cfgJSON, _ := json.Marshal(o.cfg)
	rep.Config = cfgJSON
	_, pinned := pinning(o)
	pinned = pinned && os.Getenv("BENCH_PINNED") == "1"
	if pinned {
		rep.Pinning = "yes (taskset): each system under test on CPU 1; load generator and fake upstream (one process) on CPU 0; PostgreSQL unpinned (its CPU is not counted in the relay's)"
	} else {
		rep.Pinning = "no (taskset missing, a single CPU, or -pin off): every process shares all CPUs"
	}
	h.logf("machine: %d × %s, kernel %s, %s; pinning: %v", rep.Machine.NProc, rep.Machine.CPUModel, rep.Machine.Kernel, rep.Machine.GoVersion, pinned)

	var err error
	h.tmp, err = os.MkdirTemp("", "relay-bench-")
	if err != nil {
		return nil, err
	}
	h.fake, err = bench.StartFake("127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	systems := []bench.System{{Name: "direct", URL: h.fake.URL(), Key: upstreamKey}}

	bare, err := h.startBare(ctx, pinned)
	if err != nil {
		rep.Problems = append(rep.Problems, "bare proxy: "+err.Error())
	} else {
		systems = append(systems, bare)
	}

	if o.nginx {
		if ng, err := h.startNginx(ctx, pinned); err != nil {
			rep.Problems = append(rep.Problems, "nginx not measured: "+err.Error())
		} else {
			systems = append(systems, ng)
		}
	}

	if o.relay == "" {
		rep.Problems = append(rep.Problems, "relay not measured: no relay binary (-relay is empty; did `make build` fail?)")
	} else {
		s, err := h.startRelay(ctx, "relay-sqlite", "", pinned)
		if err != nil {
			rep.Problems = append(rep.Problems, "relay-sqlite not measured: "+err.Error())
		} else {
			systems = append(systems, s)
		}
		if o.pgURL != "" && ctx.Err() == nil {
			dbURL, err := h.createDB(ctx)
			if err != nil {
				rep.Problems = append(rep.Problems, "relay-postgres not measured: "+err.Error())
			} else if s, err := h.startRelay(ctx, "relay-postgres", dbURL, pinned); err != nil {
				rep.Problems = append(rep.Problems, "relay-postgres not measured: "+err.Error())
			} else {
				systems = append(systems, s)
			}
		}
	}
	for _, p := range rep.Problems {
		h.logf("PROBLEM: %s", p)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	rep.LoadAvgStart = bench.ReadLoadAvg()
	m0, _ := bench.ReadMachineCPU()
	own0 := ownTicks(systems)
	r := bench.NewRunner(o.cfg, systems)
	results, err := r.Run(ctx)
	m1, _ := bench.ReadMachineCPU()
	own1 := ownTicks(systems)
	if m1.Total > m0.Total && m1.Busy >= m0.Busy {
		other := float64(m1.Busy-m0.Busy) - float64(own1-own0)
		rep.OtherCores = max(0, other/float64(m1.Total-m0.Total)*float64(rep.Machine.NProc))
	}
	rep.Systems = results
	rep.Targets = bench.Targets(results)
	if len(h.admins) > 0 {
		time.Sleep(time.Second) // a usage flush interval or more
	}
	du := fakeanthropic.DefaultUsage
	perRequest := du.InputTokens + du.CacheCreationInputTokens + du.CacheReadInputTokens + du.OutputTokens
	for _, a := range h.admins {
		used, uerr := a.tokensUsed(context.WithoutCancel(ctx))
		switch {
		case uerr != nil:
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s: could not read the key's tokens_used: %v", a.name, uerr))
		case used == 0:
			rep.Problems = append(rep.Problems, a.name+": the bench key's tokens_used is 0 after the run: usage recording did not run")
		default:
			rep.Checks = append(rep.Checks, fmt.Sprintf("%s: the bench key's tokens_used is %d after the run (%d per non-streaming request): usage was recorded", a.name, used,
				perRequest))
		}
	}
	for _, p := range h.procs {
		select {
		case <-p.done:
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s exited during the run (%v); log: %s", p.name, p.err, h.tail(p.log)))
		default:
		}
	}
	return rep, err
}

// ownTicks is the CPU time of this process and of every system under test.
func ownTicks(systems []bench.System) uint64 {
	t, _ := bench.ReadCPUTicks(os.Getpid())
	for _, s := range systems {
		if s.PID > 0 {
			v, _ := bench.ReadCPUTicks(s.PID)
			t += v
		}
	}
	return t
}

func machine() bench.Machine {
	m := bench.Machine{
		NProc:     runtime.NumCPU(),
		CPUModel:  bench.ReadCPUModel(),
		Kernel:    bench.ReadKernel(),
		GoVersion: runtime.Version(),
		MemTotal:  bench.ReadMemTotal(),
	}
	// runtime.NumCPU follows the affinity mask, which pinning narrowed.
	if b, err := os.ReadFile("/sys/devices/system/cpu/online"); err == nil {
		if n := countCPUs(strings.TrimSpace(string(b))); n > 0 {
			m.NProc = n
		}
	}
	if lim, err := bench.FDLimit(os.Getpid()); err == nil {
		m.NoFile = strconv.Itoa(lim)
	}
	return m
}

// countCPUs counts a CPU list such as "0-1" or "0,2-3".
func countCPUs(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		lo, hi, found := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			return 0
		}
		b := a
		if found {
			if b, err = strconv.Atoi(hi); err != nil {
				return 0
			}
		}
		n += b - a + 1
	}
	return n
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// start launches a system under test, pinned to CPU 1 when pinning.
func (h *harness) start(name string, pinned bool, env []string, bin string, args ...string) (*proc, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("binary %s: %w", bin, err)
	}
	logPath := filepath.Join(h.tmp, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if pinned {
		cmd = exec.Command("taskset", append([]string{"-c", "1", bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	h.procs = append(h.procs, p)
	return p, nil
}

// baseEnv is what a child gets from ours: enough to run, nothing that
// could reconfigure it (a stray DATABASE_URL in the caller's shell).
func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (h *harness) startBare(ctx context.Context, pinned bool) (bench.System, error) {
	bin := h.o.bareproxy
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			return bench.System{}, err
		}
		bin = filepath.Join(filepath.Dir(self), "bareproxy")
	}
	addr, err := freePort()
	if err != nil {
		return bench.System{}, err
	}
	maddr, err := freePort()
	if err != nil {
		return bench.System{}, err
	}
	p, err := h.start("bare", pinned, baseEnv(), bin, "-listen", addr, "-metrics-listen", maddr, "-upstream", h.fake.URL(), "-key", upstreamKey)
	if err != nil {
		return bench.System{}, err
	}
	url := "http://" + addr
	if err := h.waitReady(ctx, p, url+"/v1/models", 10*time.Second, false); err != nil {
		return bench.System{}, err
	}
	h.logf("bare proxy: pid %d at %s", p.cmd.Process.Pid, url)
	return bench.System{Name: "bare", URL: url, Key: "sk-proxy-bench-client", PID: p.cmd.Process.Pid, Baseline: true,
		MetricsURL: "http://" + maddr + "/metrics", PprofURL: "http://" + maddr}, nil
}

func (h *harness) startRelay(ctx context.Context, name, dbURL string, pinned bool) (bench.System, error) {
	bin, err := filepath.Abs(h.o.relay)
	if err != nil {
		return bench.System{}, err
	}
	addr, err := freePort()
	if err != nil {
		return bench.System{}, err
	}
	dataDir := filepath.Join(h.tmp, name+"-data")
	password := randomHex(12)
	env := append(baseEnv(),
		"LISTEN_ADDR="+addr,
		"DATA_DIR="+dataDir,
		"UPSTREAM_URL="+h.fake.URL(),
		"UPSTREAM_API_KEY="+upstreamKey,
		"ADMIN_PASSWORD="+password,
		"SECRET_KEY="+randomHex(24),
		"LOG_LEVEL=info",
		// The stream test opens 1,000 connections from one address: more
		// than the default per-address limit, which stays enforced.
		"MAX_CONNECTIONS_PER_ADDR=4096",
	)
	if dbURL != "" {
		env = append(env, "DATABASE_URL="+dbURL)
	}
	pprofURL := ""
	if h.o.cfg.ProfileDir != "" {
		paddr, err := freePort()
		if err != nil {
			return bench.System{}, err
		}
		env = append(env, "PPROF_ADDR="+paddr)
		pprofURL = "http://" + paddr
	}
	// Apply migrations first when the binary has the subcommand; serve may
	// also do it itself, so a failure here is only reported.
	mig := exec.CommandContext(ctx, bin, "migrate", "up")
	mig.Env = env
	if out, err := mig.CombinedOutput(); err != nil {
		h.logf("%s: `relay migrate up` failed (%v), starting serve anyway: %s", name, err, strings.TrimSpace(string(out)))
	}
	p, err := h.start(name, pinned, env, bin, "serve")
	if err != nil {
		return bench.System{}, err
	}
	url := "http://" + addr
	if err := h.waitReady(ctx, p, url+"/ready", 30*time.Second, true); err != nil {
		return bench.System{}, err
	}
	adm, err := provision(ctx, url, "admin", password, h.fake.URL())
	if err != nil {
		return bench.System{}, fmt.Errorf("provisioning a key through the admin API: %w (log: %s)", err, h.tail(p.log))
	}
	adm.name = name
	h.admins = append(h.admins, adm)
	key := adm.key
	h.logf("%s: pid %d at %s, key %s…", name, p.cmd.Process.Pid, url, key[:min(len(key), 14)])
	return bench.System{Name: name, URL: url, Key: key, PID: p.cmd.Process.Pid, Relay: true,
		MetricsURL: url + "/metrics", PprofURL: pprofURL}, nil
}

func (h *harness) tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return path + ":\n    " + strings.Join(lines, "\n    ")
}

func (h *harness) cleanup() {
	for _, p := range h.procs {
		select {
		case <-p.done:
			continue
		default:
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range h.procs {
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			h.logf("%s did not stop within 10s of SIGTERM; killing it", p.name)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if h.fake != nil {
		_ = h.fake.Close()
	}
	if h.pgDB != "" {
		if err := dropDB(h.pgAdmin, h.pgDB); err != nil {
			h.logf("drop database %s: %v", h.pgDB, err)
		} else {
			h.logf("dropped database %s", h.pgDB)
		}
	}
	if h.tmp != "" {
		if h.o.keep {
			h.logf("kept scratch folder %s", h.tmp)
		} else {
			_ = os.RemoveAll(h.tmp)
		}
	}
}
