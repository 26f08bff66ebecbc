package main

import (
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relaystation/relay/internal/fakeanthropic"
)

// scrape reads /metrics and returns each series' value keyed by
// name{label="value",...} with labels sorted as the exposition prints them.
func scrape(t *testing.T, r *testRelay) map[string]float64 {
	t.Helper()
	resp, err := http.Get(r.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			sort.Strings(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsMoveWithTraffic drives known traffic and checks that each
// counter and histogram moved by exactly the expected amount.
func TestMetricsMoveWithTraffic(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{Deltas: 4})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "metrics"})
	before := scrape(t, r)
	r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+key, nil)
	r.do(t, http.MethodGet, "/admin/tiers", "Bearer "+token, nil)

	for i := 0; i < 2; i++ {
		if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 200 {
			t.Fatalf("json: %d %s", resp.StatusCode, b)
		}
	}
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(true)); resp.StatusCode != 200 {
		t.Fatalf("stream: %d %s", resp.StatusCode, b)
	}
	r.do(t, http.MethodPost, "/v1/messages", "Bearer sk-proxy-"+strings.Repeat("x", 43), messagesBody(false))
	r.do(t, http.MethodPost, "/v1/messages", "", messagesBody(false))
	fake.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{})
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 200 {
		t.Fatalf("after retry: %d %s", resp.StatusCode, b)
	}

	after := scrape(t, r)
	const model = `model="claude-sonnet-4-5"`
	du := fakeanthropic.DefaultUsage
	su := fake.StreamUsage()
	want := map[string]float64{
		`relay_requests_total{` + model + `,route_class="proxy",status_class="2xx"}`: 4,
		`relay_requests_total{model="none",route_class="proxy",status_class="4xx"}`:  2, // bad or no key: refused before the body is read
		`proxy_duration_seconds_count{status_class="2xx",stream="no"}`:               3,
		`proxy_duration_seconds_count{status_class="2xx",stream="yes"}`:              1,
		`proxy_time_to_first_byte_seconds_count{}`:                                   4,
		`tokens_used_total{` + model + `,type="input"}`:                              float64(3*du.InputTokens + su.InputTokens),
		`tokens_used_total{` + model + `,type="output"}`:                             float64(3*du.OutputTokens + su.OutputTokens),
		`tokens_used_total{` + model + `,type="cache_creation"}`:                     float64(3*du.CacheCreationInputTokens + su.CacheCreationInputTokens),
		`tokens_used_total{` + model + `,type="cache_read"}`:                         float64(3*du.CacheReadInputTokens + su.CacheReadInputTokens),
		`relay_auth_failures_total{kind="unknown"}`:                                  1,
		`relay_auth_failures_total{kind="missing"}`:                                  1,
		`relay_upstream_attempts_total{outcome="overloaded",upstream="primary"}`:     1,
		`relay_upstream_attempts_total{outcome="success",upstream="primary"}`:        4,
		`relay_requests_total{model="none",route_class="api",status_class="2xx"}`:    1,
		`relay_requests_total{model="none",route_class="admin",status_class="2xx"}`:  1,
		`relay_inflight_requests{}`:                                                  0,
		`relay_open_streams{}`:                                                       0,
	}
	for series, delta := range want {
		got := after[series] - before[series]
		if _, ok := after[series]; !ok {
			t.Errorf("%s missing from /metrics", series)
			continue
		}
		if got != delta {
			t.Errorf("%s moved by %v, want %v", series, got, delta)
		}
	}
}
