package bench

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// System is one thing under measurement: direct to the fake upstream, the
// bare proxy, or a relay.
type System struct {
	Name string
	// URL is the base URL, e.g. http://127.0.0.1:8000.
	URL string
	// Key goes in x-api-key; empty sends none.
	Key string
	// PID is the process whose CPU and memory are measured; 0 for none.
	PID int
	// MetricsURL, when set, serves Prometheus text with the Go collector's
	// go_memstats_heap_inuse_bytes and go_memstats_stack_inuse_bytes.
	MetricsURL string
	// PprofURL, when set, is the base URL of the system's net/http/pprof
	// handlers; with Config.ProfileDir the saturation phase is profiled.
	PprofURL string
	// Baseline marks the bare proxy, against which ratios are taken.
	Baseline bool
	// Relay marks a system the targets apply to.
	Relay bool
}

// MessageBody is the non-streaming request every load phase sends.
const MessageBody = `{"model":"claude-sonnet-4-5-20250929","max_tokens":64,"messages":[{"role":"user","content":"Say hello to the benchmark."}]}`

// renderRequest pre-renders the HTTP/1.1 request the raw client sends.
func renderRequest(sys System, path, body string, extra map[string]string) ([]byte, string, error) {
	u, err := url.Parse(sys.URL)
	if err != nil || u.Host == "" {
		return nil, "", fmt.Errorf("system %s: bad URL %q", sys.Name, sys.URL)
	}
	b := []byte("POST " + path + " HTTP/1.1\r\nHost: " + u.Host + "\r\n" +
		"User-Agent: relay-bench/1\r\n" +
		"Content-Type: application/json\r\n" +
		"Anthropic-Version: 2023-06-01\r\n")
	if sys.Key != "" {
		b = append(b, "X-Api-Key: "+sys.Key+"\r\n"...)
	}
	for k, v := range extra {
		b = append(b, k+": "+v+"\r\n"...)
	}
	b = append(b, "Content-Length: "+strconv.Itoa(len(body))+"\r\n\r\n"+body...)
	return b, u.Host, nil
}

// LoadResult is one load phase against one system.
type LoadResult struct {
	Requests uint64        // completed with a 2xx
	Non2xx   uint64        // completed with another status
	Errors   uint64        // transport errors
	Late     uint64        // fixed rate only: sent more than 1 ms after schedule
	Elapsed  time.Duration // wall time of the phase
	Hist     Hist          // latency of each completed request
	// FirstStatus is the first non-2xx status seen, for error messages.
	FirstStatus int
	FirstError  string
}

// RPS is completed 2xx requests per second.
func (r *LoadResult) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

type worker struct {
	rc    *rawConn
	hist  Hist
	ok    uint64
	bad   uint64
	errs  uint64
	late  uint64
	first int
	ferr  string
}

func (w *worker) record(status int, err error, d time.Duration) {
	switch {
	case err != nil:
		w.errs++
		if w.ferr == "" {
			w.ferr = err.Error()
		}
		time.Sleep(time.Millisecond) // a refused connection must not spin
	case status >= 200 && status < 300:
		w.ok++
		w.hist.Record(d)
	default:
		w.bad++
		w.hist.Record(d)
		if w.first == 0 {
			w.first = status
		}
	}
}

func newWorkers(sys System, n int) ([]*worker, error) {
	req, host, err := renderRequest(sys, "/v1/messages", MessageBody, nil)
	if err != nil {
		return nil, err
	}
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = &worker{rc: newRawConn(host, req)}
	}
	// Dial before the clock starts, so connection setup is not measured.
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.rc.dial(); err != nil {
				firstErr.CompareAndSwap(nil, err)
			}
		}()
	}
	wg.Wait()
	if e, ok := firstErr.Load().(error); ok {
		closeWorkers(ws)
		return nil, fmt.Errorf("%s: connect: %w", sys.Name, e)
	}
	return ws, nil
}

func closeWorkers(ws []*worker) {
	for _, w := range ws {
		w.rc.close()
	}
}

func collect(ws []*worker, elapsed time.Duration) *LoadResult {
	r := &LoadResult{Elapsed: elapsed}
	for _, w := range ws {
		r.Hist.Merge(&w.hist)
		r.Requests += w.ok
		r.Non2xx += w.bad
		r.Errors += w.errs
		r.Late += w.late
		if r.FirstStatus == 0 {
			r.FirstStatus = w.first
		}
		if r.FirstError == "" {
			r.FirstError = w.ferr
		}
	}
	return r
}

// Saturate runs a closed loop: concurrency connections, each sending its next
// request as soon as the previous answer is read, for duration.
func Saturate(ctx context.Context, sys System, concurrency int, duration time.Duration) (*LoadResult, error) {
	if concurrency < 1 || duration <= 0 {
		return nil, errors.New("saturate: concurrency and duration must be positive")
	}
	ws, err := newWorkers(sys, concurrency)
	if err != nil {
		return nil, err
	}
	defer closeWorkers(ws)
	start := time.Now()
	end := start.Add(duration)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				t := time.Now()
				if !t.Before(end) {
					return
				}
				status, err := w.rc.do(end.Add(10 * time.Second))
				w.record(status, err, time.Since(t))
			}
		}()
	}
	wg.Wait()
	return collect(ws, time.Since(start)), ctx.Err()
}

// FixedRate runs an open loop: requests are scheduled every 1/rate seconds
// regardless of how fast answers come, and handed to whichever of workers
// connections is free. Latency is measured from the moment a request is
// written; a request that could only start more than 1 ms after its slot is
// counted as Late (the system or the generator fell behind).
func FixedRate(ctx context.Context, sys System, rate float64, duration time.Duration, workers int) (*LoadResult, error) {
	if rate <= 0 || duration <= 0 || workers < 1 {
		return nil, errors.New("fixed rate: rate, duration and workers must be positive")
	}
	n := int(rate * duration.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	ws, err := newWorkers(sys, workers)
	if err != nil {
		return nil, err
	}
	defer closeWorkers(ws)
	slots := make(chan time.Time, n)
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for due := range slots {
				t := time.Now()
				if t.Sub(due) > time.Millisecond {
					w.late++
				}
				status, err := w.rc.do(t.Add(10 * time.Second))
				w.record(status, err, time.Since(t))
			}
		}()
	}
	start := time.Now()
dispatch:
	for i := 0; i < n; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				break dispatch
			}
		}
		slots <- due
	}
	close(slots)
	wg.Wait()
	return collect(ws, time.Since(start)), ctx.Err()
}
