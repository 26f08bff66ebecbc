package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// Probes and tests go to endpoints that bill nothing: count_tokens for a
// model, the model listing for an upstream.
const (
	probeVersion = "2023-06-01"
	// probeTimeout bounds one probe or test: shorter than the pool's
	// pool.DefaultProbeTimeout, so that a probe's own failure, rather than
	// its loss, is what the pool sees.
	probeTimeout = 20 * time.Second
	// probeInterval is how often RunProbes asks the pool for probes.
	probeInterval = time.Second
)

// RunProbes sends the probes the pool asks for, about once a second, until
// ctx ends; then it waits for the probes under way. Each probe runs on its
// own goroutine, so a slow upstream delays no other's probe. Every second
// it also reports every upstream's state to the Observer, so that changes
// made to the pool behind the transport's back (SetUpstreams, Enable) show
// within a second.
func (t *Transport) RunProbes(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		t.probeRound(ctx, &wg)
		t.obs.States(t.states())
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ProbeOnce asks the pool for the probes due now, sends them, and returns
// when every one has been answered and observed (RunProbes does this every
// second; tests on a fake clock call it after moving the clock).
func (t *Transport) ProbeOnce(ctx context.Context) {
	var wg sync.WaitGroup
	t.probeRound(ctx, &wg)
	wg.Wait()
}

func (t *Transport) probeRound(ctx context.Context, wg *sync.WaitGroup) {
	probes, evs := t.pool.Probes()
	t.emit(evs)
	for _, p := range probes {
		wg.Go(func() { t.probe(ctx, p) })
	}
}

// probe sends one probe and observes its answer as the probe's. A probe
// for an upstream without an endpoint, or cut short by ctx (shutdown), is
// not observed: the pool counts it lost after its ProbeTimeout.
func (t *Transport) probe(ctx context.Context, p pool.Probe) {
	tg := (*t.targets.Load())[p.Upstream]
	if tg == nil {
		return
	}
	req, err := tg.probeRequest(p.Model)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	pctx, tr := traced(pctx)
	a := tg.send(req.WithContext(pctx), tr)
	if ctx.Err() != nil {
		if a.resp != nil {
			_ = a.resp.Body.Close()
		}
		return
	}
	now := t.now()
	var ra time.Duration
	var hasRA bool
	if a.resp != nil && a.resp.StatusCode >= 400 {
		ra, hasRA = retryAfter(a.resp, now)
	}
	t.observe(tg, p.Model, &a, now, ra, hasRA, true)
	if a.resp != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(a.resp.Body, maxErrorBody))
		_ = a.resp.Body.Close()
	}
}

// probeRequest is a probe of model on tg (count_tokens), or of tg itself
// for "" (GET /v1/models).
func (tg *target) probeRequest(model string) (*http.Request, error) {
	if model == "" {
		return tg.request(http.MethodGet, "/v1/models", nil)
	}
	name, err := json.Marshal(model)
	if err != nil {
		return nil, err
	}
	body := make([]byte, 0, len(name)+64)
	body = append(body, `{"model":`...)
	body = append(body, name...)
	body = append(body, `,"messages":[{"role":"user","content":"ping"}]}`...)
	return tg.request(http.MethodPost, "/v1/messages/count_tokens", body)
}

// request is a request of the relay's own to tg, with its key.
func (tg *target) request(method, path string, body []byte) (*http.Request, error) {
	u := url.URL{Scheme: tg.scheme, Host: tg.host, Path: tg.basePath + path}
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, u.String(), r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Api-Key", tg.key)
	req.Header.Set("Anthropic-Version", probeVersion)
	req.Header.Set("Accept-Encoding", "identity")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// Test sends GET /v1/models to e with its key, outside the pool (its
// answer changes no state), and reports the answer. The message never
// holds the key.
func (t *Transport) Test(ctx context.Context, e ports.UpstreamEndpoint) ports.UpstreamTest {
	name := e.Name
	if name == "" {
		name = e.ID
	}
	old := (*t.targets.Load())[e.ID]
	tg, err := t.newTarget(e.ID, name, e.URL, e.APIKey, t.timeout, 0, old)
	if err != nil {
		return ports.UpstreamTest{Message: "the url must be an absolute http(s) URL"}
	}
	if tg.owned && (old == nil || old.rt != tg.rt) {
		// A transport of its own for one request: let its connection go.
		defer tg.rt.(*http.Transport).CloseIdleConnections()
	}
	req, err := tg.request(http.MethodGet, "/v1/models", nil)
	if err != nil {
		return ports.UpstreamTest{Message: "could not build the test request"}
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	start := time.Now()
	tctx, tr := traced(ctx)
	a := tg.send(req.WithContext(tctx), tr)
	res := ports.UpstreamTest{Latency: time.Since(start)}
	if a.err != nil {
		res.Message = "could not reach the upstream: " + describe(a)
		if ctx.Err() != nil || a.outcome(ctx) == OutcomeTimeout {
			res.Message = "the upstream did not answer in time"
		}
		return res
	}
	defer a.resp.Body.Close()
	res.Status = a.resp.StatusCode
	res.OK = res.Status >= 200 && res.Status < 300
	if !res.OK {
		res.Message = errorMessage(a.resp, e.APIKey)
		if res.Message == "" {
			res.Message = "the upstream answered " + http.StatusText(res.Status)
		}
	}
	return res
}
