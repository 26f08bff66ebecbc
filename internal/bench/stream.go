package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

// StartFake serves the fake Anthropic API every system is measured against,
// on its fast path: nothing captured, and each delta's text stamped with the
// moment it was written, which StreamOnce reads back.
func StartFake(addr string) (*fakeanthropic.Endpoint, error) {
	return fakeanthropic.New(fakeanthropic.Options{NoCapture: true, StampDeltas: true}).Start(addr)
}

// StreamBody is the streaming request the stream phases send.
const StreamBody = `{"model":"claude-sonnet-4-5-20250929","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"Stream to the benchmark."}]}`

// NewStreamClient is a net/http client for the streaming phases: few
// requests, long-lived, where net/http's cost does not matter.
func NewStreamClient(maxConns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        maxConns,
		MaxIdleConnsPerHost: maxConns,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

func newStreamRequest(ctx context.Context, sys System, events int, spacing time.Duration) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sys.URL+"/v1/messages", strings.NewReader(StreamBody))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("Accept", "text/event-stream")
	if sys.Key != "" {
		req.Header.Set("X-Api-Key", sys.Key)
	}
	req.Header.Set(fakeanthropic.HeaderDeltas, strconv.Itoa(events))
	req.Header.Set(fakeanthropic.HeaderSpacingMS, strconv.FormatFloat(float64(spacing)/float64(time.Millisecond), 'f', -1, 64))
	return req, nil
}

// StreamSample is one streamed response.
type StreamSample struct {
	TTFE   time.Duration // request written → message_start received
	Total  time.Duration // request written → message_stop received
	Deltas int
	// Delay of each content delta: received minus written by the fake.
	Delays []time.Duration
}

var deltaMarker = []byte(`"text_delta","text":"t`)

// StreamOnce sends one streaming request and times every event.
func StreamOnce(ctx context.Context, client *http.Client, sys System, events int, spacing time.Duration) (*StreamSample, error) {
	req, err := newStreamRequest(ctx, sys, events, spacing)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("%s: stream status %d: %s", sys.Name, resp.StatusCode, b)
	}
	s := &StreamSample{Delays: make([]time.Duration, 0, events)}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		now := time.Now()
		if err != nil {
			return s, fmt.Errorf("%s: stream ended early after %d deltas: %w", sys.Name, s.Deltas, err)
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: message_start")):
			s.TTFE = now.Sub(start)
		case bytes.HasPrefix(line, []byte("event: message_stop")):
			s.Total = now.Sub(start)
			_, _ = io.Copy(io.Discard, br)
			if s.Deltas != events {
				return s, fmt.Errorf("%s: got %d deltas, want %d", sys.Name, s.Deltas, events)
			}
			return s, nil
		case bytes.HasPrefix(line, []byte("data: ")):
			if i := bytes.Index(line, deltaMarker); i >= 0 {
				rest := line[i+len(deltaMarker):]
				j := 0
				for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
					j++
				}
				ns, err := strconv.ParseInt(string(rest[:j]), 10, 64)
				if err == nil {
					s.Delays = append(s.Delays, time.Duration(now.UnixNano()-ns))
				}
				s.Deltas++
			}
		}
	}
}

// StreamResult aggregates concurrent stream samples.
type StreamResult struct {
	Samples []*StreamSample
	Delay   Hist // every delta of every sample
	Errors  int
	Err     string
}

// Streams runs samples concurrent streams against sys.
func Streams(ctx context.Context, client *http.Client, sys System, samples, events int, spacing time.Duration) *StreamResult {
	res := &StreamResult{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < samples; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := StreamOnce(ctx, client, sys, events, spacing)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Errors++
				if res.Err == "" {
					res.Err = err.Error()
				}
				return
			}
			res.Samples = append(res.Samples, s)
			for _, d := range s.Delays {
				res.Delay.Record(d)
			}
		}()
	}
	wg.Wait()
	return res
}

// OpenStreamsResult is the memory cost of holding streams open.
type OpenStreamsResult struct {
	Wanted, Opened int
	RSSBeforeKB    int64
	RSSAfterKB     int64
	PerStreamKB    float64 // RSS growth per stream
	// Go heap and stack in use, from the system's metrics, when it has
	// them: a Go process reuses heap it already holds, so RSS alone can
	// understate what a stream costs.
	GoBeforeKB    int64   `json:",omitempty"`
	GoAfterKB     int64   `json:",omitempty"`
	GoPerStreamKB float64 `json:",omitempty"`
	// GoAfterGC says both readings followed a forced GC (the system serves
	// /debug/pprof/heap next to its metrics), so they hold no garbage;
	// otherwise the Go figure is an upper bound.
	GoAfterGC bool `json:",omitempty"`
	Err       string
}

// OpenStreams holds n streams open through sys (each has sent its first
// event and then pauses), measures the RSS growth of sys.PID, then closes
// them all.
func OpenStreams(ctx context.Context, sys System, n int, settle time.Duration) (*OpenStreamsResult, error) {
	if sys.PID <= 0 {
		return nil, errors.New("open streams: system has no process to measure")
	}
	before, err := ReadMemory(sys.PID)
	if err != nil {
		return nil, err
	}
	res := &OpenStreamsResult{Wanted: n, RSSBeforeKB: before.RSSKB}
	gcBefore := ForceGC(ctx, sys.MetricsURL)
	goBefore, goErr := ReadGoMemory(ctx, sys.MetricsURL)
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConnsPerHost: 1, DisableCompression: true, DisableKeepAlives: true,
	}}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var opened, failed atomic.Int64
	var firstErr atomic.Value
	ready := make(chan struct{}, n)
	var wg sync.WaitGroup
	// Open in waves so a listen backlog is never overrun.
	sem := make(chan struct{}, 128)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			err := holdStream(sctx, client, sys, ready, sem)
			if err != nil && sctx.Err() == nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				ready <- struct{}{}
			}
		}()
	}
	deadline := time.After(60 * time.Second)
wait:
	for i := 0; i < n; i++ {
		select {
		case <-ready:
		case <-deadline:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	time.Sleep(settle)
	opened.Store(int64(n) - failed.Load())
	after, err := ReadMemory(sys.PID)
	gcAfter := ForceGC(ctx, sys.MetricsURL)
	goAfter, goErr2 := ReadGoMemory(ctx, sys.MetricsURL)
	res.GoAfterGC = gcBefore && gcAfter
	cancel()
	wg.Wait()
	client.CloseIdleConnections()
	if err != nil {
		return nil, err
	}
	res.Opened = int(opened.Load())
	res.RSSAfterKB = after.RSSKB
	if res.Opened > 0 {
		res.PerStreamKB = float64(after.RSSKB-before.RSSKB) / float64(res.Opened)
		if goErr == nil && goErr2 == nil && goBefore > 0 {
			res.GoBeforeKB, res.GoAfterKB = goBefore, goAfter
			res.GoPerStreamKB = float64(goAfter-goBefore) / float64(res.Opened)
		}
	}
	if e, ok := firstErr.Load().(string); ok {
		res.Err = e
	}
	if res.Opened < n {
		return res, fmt.Errorf("%s: only %d of %d streams opened: %s", sys.Name, res.Opened, n, res.Err)
	}
	return res, nil
}

// ForceGC asks the system for a heap profile with gc=1, which makes the Go
// runtime collect first; it reports whether that worked.
func ForceGC(ctx context.Context, metricsURL string) bool {
	base, ok := strings.CutSuffix(metricsURL, "/metrics")
	if !ok {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusOK
}

// ReadGoMemory returns go_memstats_heap_inuse_bytes plus
// go_memstats_stack_inuse_bytes, in KB, from a Prometheus text endpoint.
func ReadGoMemory(ctx context.Context, metricsURL string) (int64, error) {
	if metricsURL == "" {
		return 0, errors.New("no metrics URL")
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics: status %d", resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	return ParseGoMemory(string(b))
}

// ParseGoMemory sums heap and stack in use, in KB, from Prometheus text.
func ParseGoMemory(text string) (int64, error) {
	var sum float64
	seen := 0
	for _, line := range strings.Split(text, "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || (name != "go_memstats_heap_inuse_bytes" && name != "go_memstats_stack_inuse_bytes") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return 0, fmt.Errorf("metrics %s: %w", name, err)
		}
		sum += v
		seen++
	}
	if seen != 2 {
		return 0, errors.New("metrics: go_memstats_heap_inuse_bytes or go_memstats_stack_inuse_bytes missing")
	}
	return int64(sum / 1024), nil
}

func holdStream(ctx context.Context, client *http.Client, sys System, ready, sem chan struct{}) error {
	released := false
	release := func() {
		if !released {
			released = true
			<-sem
		}
	}
	defer release()
	req, err := newStreamRequest(ctx, sys, 1000, 10*time.Minute)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 1024)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if bytes.HasPrefix(line, []byte("event: ping")) {
			break
		}
	}
	release()
	ready <- struct{}{}
	_, err = io.Copy(io.Discard, br) // blocks until cancelled
	return err
}
