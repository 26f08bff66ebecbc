package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/domain"
)

// NewMetrics returns metrics on a fresh registry.
func NewMetrics(tb testing.TB, opts metrics.Options) *metrics.Metrics {
	tb.Helper()
	return metrics.New(opts)
}

// value reads one series of family name with exactly these labels (a
// counter's or gauge's value, or a histogram's sample count), and 0 when the
// series does not exist.
func value(tb testing.TB, m *metrics.Metrics, name string, labels ...string) float64 {
	tb.Helper()
	if len(labels)%2 != 0 {
		tb.Fatalf("labels must be pairs: %v", labels)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			if len(s.GetLabel()) != len(labels)/2 {
				continue
			}
			for i := 0; i < len(labels); i += 2 {
				if labelOf(s, labels[i]) != labels[i+1] {
					continue series
				}
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue()
			case s.Gauge != nil:
				return s.GetGauge().GetValue()
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func histSum(tb testing.TB, m *metrics.Metrics, name string, labels ...string) float64 {
	tb.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if labelOf(s, labels[i]) != labels[i+1] {
					continue series
				}
			}
			return s.GetHistogram().GetSampleSum()
		}
	}
	return 0
}

// bucket returns the cumulative count of the histogram bucket with upper
// bound le.
func bucket(tb testing.TB, m *metrics.Metrics, name string, le float64, labels ...string) float64 {
	tb.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, s := range f.GetMetric() {
			for i := 0; i < len(labels); i += 2 {
				if labelOf(s, labels[i]) != labels[i+1] {
					continue series
				}
			}
			for _, b := range s.GetHistogram().GetBucket() {
				if b.GetUpperBound() == le {
					return float64(b.GetCumulativeCount())
				}
			}
			tb.Fatalf("%s has no bucket le=%v", name, le)
		}
	}
	tb.Fatalf("no series %s%v", name, labels)
	return 0
}

func labelOf(s *dto.Metric, name string) string {
	for _, l := range s.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func TestObserveProxyMovesEveryProxyMetric(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	m.ObserveProxy(metrics.ProxyResult{
		Status: 200, Model: "claude-sonnet-4-5-20250929", Stream: true,
		Duration: 90 * time.Second, TTFB: 800 * time.Millisecond,
		Usage: domain.Usage{InputTokens: 100, OutputTokens: 20, CacheCreationInputTokens: 7, CacheReadInputTokens: 3000},
	})
	m.ObserveProxy(metrics.ProxyResult{
		Status: 200, Model: "claude-sonnet-4-5", Duration: 5 * time.Millisecond, TTFB: 4 * time.Millisecond,
		Usage: domain.Usage{InputTokens: 50},
	})
	m.ObserveProxy(metrics.ProxyResult{Status: 529, Model: "my-finetune", Duration: time.Second}) // no byte, no usage

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"relay_requests_total", []string{"route_class", "proxy", "status_class", "2xx", "model", "claude-sonnet-4-5"}, 2},
		{"relay_requests_total", []string{"route_class", "proxy", "status_class", "5xx", "model", "other"}, 1},
		{"proxy_duration_seconds", []string{"status_class", "2xx", "stream", "yes"}, 1},
		{"proxy_duration_seconds", []string{"status_class", "2xx", "stream", "no"}, 1},
		{"proxy_duration_seconds", []string{"status_class", "5xx", "stream", "no"}, 1},
		{"proxy_duration_seconds", []string{"status_class", "4xx", "stream", "no"}, 0},
		{"proxy_time_to_first_byte_seconds", nil, 2},
		{"tokens_used_total", []string{"type", "input", "model", "claude-sonnet-4-5"}, 150},
		{"tokens_used_total", []string{"type", "output", "model", "claude-sonnet-4-5"}, 20},
		{"tokens_used_total", []string{"type", "cache_creation", "model", "claude-sonnet-4-5"}, 7},
		{"tokens_used_total", []string{"type", "cache_read", "model", "claude-sonnet-4-5"}, 3000},
		{"tokens_used_total", []string{"type", "input", "model", "other"}, 0},
	}
	for _, c := range checks {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := histSum(t, m, "proxy_duration_seconds", "status_class", "2xx", "stream", "yes"); got != 90 {
		t.Errorf("streamed duration sum = %v, want 90", got)
	}
	if got := histSum(t, m, "proxy_time_to_first_byte_seconds"); got < 0.8039 || got > 0.8041 {
		t.Errorf("ttfb sum = %v, want 0.804", got)
	}
	// A 90 s stream must land in a finite bucket (le=120), not only in +Inf.
	if got := bucket(t, m, "proxy_duration_seconds", 60, "status_class", "2xx", "stream", "yes"); got != 0 {
		t.Errorf("le=60 bucket = %v, want 0", got)
	}
	if got := bucket(t, m, "proxy_duration_seconds", 120, "status_class", "2xx", "stream", "yes"); got != 1 {
		t.Errorf("le=120 bucket = %v, want 1", got)
	}
	// A 5 ms count_tokens call lands in the first bucket.
	if got := bucket(t, m, "proxy_duration_seconds", 0.005, "status_class", "2xx", "stream", "no"); got != 1 {
		t.Errorf("le=0.005 bucket = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.Registry(), "proxy_duration_seconds"); got != 12 {
		t.Errorf("proxy_duration_seconds has %d series, want 6 status classes x 2 = 12 (pre-created)", got)
	}
}

func TestRequestsByRouteClass(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	m.ObserveRequest(metrics.RouteAdmin, 401, "")
	m.ObserveRequest(metrics.RouteAdmin, 401, "")
	m.ObserveRequest(metrics.RouteAPI, 200, "")
	m.ObserveRequest(metrics.RouteProxy, 0, "claude-3-5-haiku-20241022")
	m.ObserveTTFB(time.Second)
	m.AddTokens("claude-opus-4-1-20250805", domain.Usage{OutputTokens: 9})

	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route_class", "admin", "status_class", "4xx", "model", "none"}, 2},
		{[]string{"route_class", "api", "status_class", "2xx", "model", "none"}, 1},
		{[]string{"route_class", "proxy", "status_class", "other", "model", "claude-3-5-haiku"}, 1},
	} {
		if got := value(t, m, "relay_requests_total", c.labels...); got != c.want {
			t.Errorf("relay_requests_total%v = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := value(t, m, "proxy_time_to_first_byte_seconds"); got != 1 {
		t.Errorf("ttfb count = %v, want 1", got)
	}
	if got := value(t, m, "tokens_used_total", "type", "output", "model", "claude-opus-4-1"); got != 9 {
		t.Errorf("output tokens = %v, want 9", got)
	}
}

func TestQuotaPushed(t *testing.T) {
	m := NewMetrics(t, metrics.Options{MaxQuotaKeys: 2, QuotaKeyNames: true})
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	m.SetKeyQuota(a, "team-a", 800, 1000)
	m.SetKeyQuota(b, "team-b", 50, 100)
	m.SetKeyQuota(a, "team-a-renamed", 960, 1000) // an update, not a new key
	m.SetKeyQuota(c, "team-c", 1, 10)             // over the cap of 2

	if got := value(t, m, "token_quota_usage_ratio", "key_id", a.String(), "key_name", "team-a-renamed"); got != 0.96 {
		t.Errorf("ratio a = %v, want 0.96", got)
	}
	if got := value(t, m, "token_quota_usage_ratio", "key_id", b.String(), "key_name", "team-b"); got != 0.5 {
		t.Errorf("ratio b = %v, want 0.5", got)
	}
	if got := testutil.CollectAndCount(m.Registry(), "token_quota_usage_ratio"); got != 2 {
		t.Errorf("%d quota series, want 2 (the cap)", got)
	}
	if got := value(t, m, "relay_quota_keys_dropped_total"); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}

	m.DeleteKeyQuota(a)
	m.SetKeyQuota(b, "team-b", 50, 0) // limit removed: no longer exported
	m.SetKeyQuota(c, "team-c", 12, 10)
	if got := testutil.CollectAndCount(m.Registry(), "token_quota_usage_ratio"); got != 1 {
		t.Errorf("%d quota series after deletes, want 1", got)
	}
	if got := value(t, m, "token_quota_usage_ratio", "key_id", c.String(), "key_name", "team-c"); got != 1.2 {
		t.Errorf("overspent ratio = %v, want 1.2", got)
	}
}

func TestQuotaSource(t *testing.T) {
	m := NewMetrics(t, metrics.Options{MaxQuotaKeys: 2, QuotaKeyNames: true})
	pushed := uuid.New()
	m.SetKeyQuota(pushed, "pushed", 1, 2)

	ids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	var fail bool
	m.SetQuotaSource(func(ctx context.Context) ([]metrics.KeyQuota, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("source called without a deadline")
		}
		if fail {
			return nil, errors.New("db down")
		}
		return []metrics.KeyQuota{
			{ID: ids[0], Name: "low", Used: 10, Limit: 100},
			{ID: ids[1], Name: "high", Used: 99, Limit: 100},
			{ID: ids[2], Name: "unlimited", Used: 5},
			{ID: ids[3], Name: "mid", Used: 50, Limit: 100},
		}, nil
	})
	// Three limited keys, cap two: the two closest to their limit stay.
	if got := value(t, m, "token_quota_usage_ratio", "key_id", ids[1].String(), "key_name", "high"); got != 0.99 {
		t.Errorf("high = %v, want 0.99", got)
	}
	if got := value(t, m, "token_quota_usage_ratio", "key_id", ids[3].String(), "key_name", "mid"); got != 0.5 {
		t.Errorf("mid = %v, want 0.5", got)
	}
	if got := value(t, m, "token_quota_usage_ratio", "key_id", ids[0].String(), "key_name", "low"); got != 0 {
		t.Errorf("low exported (%v) over the cap", got)
	}
	// value gathered twice so far: one dropped entry per scrape.
	if got := value(t, m, "relay_quota_keys_dropped_total"); got < 2 {
		t.Errorf("dropped = %v, want at least 2", got)
	}

	fail = true
	if got := value(t, m, "token_quota_usage_ratio", "key_id", pushed.String(), "key_name", "pushed"); got != 0.5 {
		t.Errorf("fallback to pushed value = %v, want 0.5", got)
	}
	if got := value(t, m, "relay_quota_source_errors_total"); got < 1 {
		t.Errorf("source errors = %v, want >= 1", got)
	}
}

func TestUpstreamCounters(t *testing.T) {
	m := NewMetrics(t, metrics.Options{MaxUpstreams: 2})
	m.UpstreamAttempt("primary", metrics.OutcomeOverloaded)
	m.UpstreamRetry("primary", metrics.RetryOverloaded)
	m.UpstreamAttempt("primary", metrics.OutcomeSuccess)
	m.UpstreamAttempt("primary", "made-up")
	m.UpstreamFailover("primary", "backup")
	m.UpstreamAttempt("backup", metrics.OutcomeTimeout)
	m.UpstreamAttempt("third", metrics.OutcomeSuccess) // over the cap of 2 upstreams

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"relay_upstream_attempts_total", []string{"upstream", "primary", "outcome", "overloaded"}, 1},
		{"relay_upstream_attempts_total", []string{"upstream", "primary", "outcome", "success"}, 1},
		{"relay_upstream_attempts_total", []string{"upstream", "primary", "outcome", "other"}, 1},
		{"relay_upstream_attempts_total", []string{"upstream", "backup", "outcome", "timeout"}, 1},
		{"relay_upstream_attempts_total", []string{"upstream", "other", "outcome", "success"}, 1},
		{"relay_upstream_retries_total", []string{"upstream", "primary", "reason", "overloaded"}, 1},
		{"relay_upstream_failovers_total", []string{"from", "primary", "to", "backup"}, 1},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := testutil.CollectAndCount(m.Registry(), "relay_upstream_attempts_total"); got != 5 {
		t.Errorf("%d attempt series, want 5", got)
	}
}

func TestUpstreamPoolMetrics(t *testing.T) {
	m := NewMetrics(t, metrics.Options{MaxUpstreams: 2})
	m.SetUpstreamStates([]metrics.UpstreamState{{Upstream: "a", State: "healthy"}, {Upstream: "b", State: "healthy"}})
	m.UpstreamPicked("a", "pinned")
	m.UpstreamPicked("a", "moved")
	m.UpstreamPicked("a", "made-up")
	m.UpstreamSkipped("b", "low_headroom")
	m.UpstreamStateChanged("b", true, "cooling", "overloaded")
	m.UpstreamStateChanged("b", false, "disabled", "auth")
	m.UpstreamStateChanged("c", false, "cooling", "no-such-cause") // over the cap: "other"
	m.SetUpstreamStates([]metrics.UpstreamState{{Upstream: "b", State: "disabled", ModelsUnhealthy: 1}})
	m.ObserveProxy(metrics.ProxyResult{Upstream: "a", Status: 200, Model: "claude-sonnet-4-5",
		Usage: domain.Usage{InputTokens: 10, CacheCreationInputTokens: 20, CacheReadInputTokens: 70, OutputTokens: 5}})

	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"relay_upstream_picks_total", []string{"upstream", "a", "why", "pinned"}, 1},
		{"relay_upstream_input_tokens_total", []string{"upstream", "a", "type", "input"}, 10},
		{"relay_upstream_input_tokens_total", []string{"upstream", "a", "type", "cache_creation"}, 20},
		{"relay_upstream_input_tokens_total", []string{"upstream", "a", "type", "cache_read"}, 70},
		{"relay_upstream_picks_total", []string{"upstream", "a", "why", "moved"}, 1},
		{"relay_upstream_picks_total", []string{"upstream", "a", "why", "other"}, 1},
		{"relay_upstream_skips_total", []string{"upstream", "b", "reason", "low_headroom"}, 1},
		{"relay_upstream_state_changes_total", []string{"upstream", "b", "scope", "model", "to", "cooling", "cause", "overloaded"}, 1},
		{"relay_upstream_state_changes_total", []string{"upstream", "b", "scope", "upstream", "to", "disabled", "cause", "auth"}, 1},
		{"relay_upstream_state_changes_total", []string{"upstream", "other", "scope", "upstream", "to", "cooling", "cause", "other"}, 1},
		{"relay_upstream_disabled_total", []string{"upstream", "b"}, 1},
		{"relay_upstream_disabled_total", []string{"upstream", "a"}, 0},
		{"relay_upstream_state", []string{"upstream", "b", "state", "disabled"}, 1},
		{"relay_upstream_state", []string{"upstream", "b", "state", "healthy"}, 0},
		{"relay_upstream_models_unhealthy", []string{"upstream", "b"}, 1},
	} {
		if got := value(t, m, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// a is no longer reported: its state series are gone; b has one per state.
	if got := testutil.CollectAndCount(m.Registry(), "relay_upstream_state"); got != 5 {
		t.Errorf("%d state series, want 5 (b's)", got)
	}
	// The disabled counter exists from the first report, at 0, for increase().
	if got := testutil.CollectAndCount(m.Registry(), "relay_upstream_disabled_total"); got != 2 {
		t.Errorf("%d disabled series, want 2", got)
	}
}

func TestRejectionsAndAuthFailures(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	m.Rejected(metrics.RejectQuota)
	m.Rejected("tokens") // a domain.Error Reason
	m.Rejected(metrics.RejectRateLimitTokens)
	m.Rejected("requests")
	m.Rejected("no-such-reason")
	m.AuthFailed(metrics.AuthUnknown)
	m.AuthFailed(metrics.AuthAdminLogin)
	m.AuthFailed(metrics.AuthAdminLogin)
	m.AuthFailed("weird")

	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"relay_rejections_total", "reason", "quota", 1},
		{"relay_rejections_total", "reason", "rate_limit_tokens", 2},
		{"relay_rejections_total", "reason", "rate_limit_requests", 1},
		{"relay_rejections_total", "reason", "concurrency", 0},
		{"relay_rejections_total", "reason", "other", 1},
		{"relay_auth_failures_total", "kind", "unknown", 1},
		{"relay_auth_failures_total", "kind", "admin_login", 2},
		{"relay_auth_failures_total", "kind", "other", 1},
	} {
		if got := value(t, m, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
	// Every known kind is exported at zero from the start, so rate() and
	// alerts see the first failure.
	if got := testutil.CollectAndCount(m.Registry(), "relay_auth_failures_total"); got != 12 {
		t.Errorf("%d auth failure series, want 11 kinds + other", got)
	}
}

func TestGauges(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	m.RequestStarted()
	m.RequestStarted()
	m.RequestFinished()
	m.StreamOpened()
	m.StreamOpened()
	m.StreamOpened()
	m.StreamClosed()
	if got := testutil.CollectAndCount(m.Registry(), "relay_ready"); got != 0 {
		t.Errorf("relay_ready exported before any readiness check")
	}
	m.SetReady(true)
	for name, want := range map[string]float64{"relay_inflight_requests": 1, "relay_open_streams": 2, "relay_ready": 1} {
		if got := value(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	m.SetReady(false)
	if got := value(t, m, "relay_ready"); got != 0 {
		t.Errorf("relay_ready = %v after SetReady(false)", got)
	}
}

func TestUsageWriterObserver(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	o := m.UsageWriter()
	o.QueueDepth(42)
	o.FlushDone(20*time.Millisecond, 500, nil)
	o.FlushDone(30*time.Millisecond, 300, errors.New("connection refused"))
	o.FlushDone(10*time.Millisecond, 300, nil) // the retry
	o.Dropped(7)
	o.QueueDepth(3)

	for name, want := range map[string]float64{
		"relay_usage_queue_depth":            3,
		"relay_usage_flush_duration_seconds": 3,
		"relay_usage_write_errors_total":     1,
		"relay_usage_records_written_total":  800,
		"relay_usage_records_dropped_total":  7,
	} {
		if got := value(t, m, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	want := `
# HELP relay_usage_records_written_total Usage records written to storage.
# TYPE relay_usage_records_written_total counter
relay_usage_records_written_total 800
# HELP relay_usage_write_errors_total Usage batches whose write failed.
# TYPE relay_usage_write_errors_total counter
relay_usage_write_errors_total 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"relay_usage_records_written_total", "relay_usage_write_errors_total"); err != nil {
		t.Error(err)
	}
	if got := histSum(t, m, "relay_usage_flush_duration_seconds"); got < 0.0599 || got > 0.0601 {
		t.Errorf("flush duration sum = %v, want 0.06", got)
	}
}

func TestNilMetricsIsANoop(t *testing.T) {
	var m *metrics.Metrics
	m.ObserveProxy(metrics.ProxyResult{Status: 200})
	m.ObserveRequest(metrics.RouteAPI, 200, "")
	m.ObserveTTFB(time.Second)
	m.AddTokens("x", domain.Usage{InputTokens: 1})
	m.SetKeyQuota(uuid.New(), "k", 1, 2)
	m.DeleteKeyQuota(uuid.New())
	m.SetQuotaSource(nil)
	m.Priced("x", domain.RecordCost{Total: 1, Unpriced: true})
	m.SetBudgetSource(nil)
	m.UpstreamAttempt("a", "b")
	m.UpstreamRetry("a", "b")
	m.UpstreamFailover("a", "b")
	m.Rejected("quota")
	m.AuthFailed("ip")
	m.RequestStarted()
	m.RequestFinished()
	m.StreamOpened()
	m.StreamClosed()
	m.SetReady(true)
	o := m.UsageWriter()
	if o != nil {
		t.Fatal("nil Metrics returned a non-nil observer")
	}
	o.QueueDepth(1)
	o.FlushDone(time.Second, 1, nil)
	o.Dropped(1)
}

func TestMetricNamesMatchTheRegistry(t *testing.T) {
	m := NewMetrics(t, metrics.Options{Version: "v1.2.3"})
	touchAll(m)
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]bool{}
	for _, f := range fams {
		gathered[f.GetName()] = true
	}
	names := m.MetricNames()
	for _, n := range names {
		if !gathered[n] {
			t.Errorf("MetricNames lists %s, which the registry does not export", n)
		}
	}
	for n := range gathered {
		if !slices.Contains(names, n) && !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
			t.Errorf("registry exports %s, missing from MetricNames", n)
		}
	}
	required := []string{
		"relay_requests_total", "proxy_duration_seconds", "proxy_time_to_first_byte_seconds",
		"tokens_used_total", "token_quota_usage_ratio",
		"relay_upstream_attempts_total", "relay_upstream_retries_total", "relay_upstream_failovers_total",
		"relay_rejections_total", "relay_auth_failures_total",
		"relay_inflight_requests", "relay_open_streams",
		"relay_usage_queue_depth", "relay_usage_flush_duration_seconds",
		"relay_usage_write_errors_total", "relay_usage_records_written_total",
		"relay_ready", "relay_build_info",
		"relay_cost_usd_total", "relay_cost_usd_by_class_total", "relay_unpriced_requests_total",
		"relay_budget_usage_ratio", "relay_budget_keys_dropped_total", "relay_budget_source_errors_total",
		"relay_upstream_state", "relay_upstream_models_unhealthy", "relay_upstream_state_changes_total",
		"relay_upstream_disabled_total", "relay_upstream_picks_total", "relay_upstream_skips_total",
	}
	for _, n := range required {
		if !slices.Contains(names, n) {
			t.Errorf("required metric %s is missing", n)
		}
	}
	for _, n := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds"} {
		if !gathered[n] {
			t.Errorf("runtime/process metric %s is missing", n)
		}
	}
	if got := value(t, m, "relay_build_info", "version", "v1.2.3", "goversion", goVersion(fams)); got != 1 {
		t.Errorf("relay_build_info = %v, want 1", got)
	}
	if !slices.IsSorted(names) {
		t.Error("MetricNames is not sorted")
	}
}

func goVersion(fams []*dto.MetricFamily) string {
	for _, f := range fams {
		if f.GetName() == "relay_build_info" {
			return labelOf(f.GetMetric()[0], "goversion")
		}
	}
	return ""
}

// touchAll makes every vector have at least one child so every family is
// gathered.
func touchAll(m *metrics.Metrics) {
	m.ObserveProxy(metrics.ProxyResult{Status: 200, Model: "claude-sonnet-4-5", TTFB: time.Millisecond, Usage: domain.Usage{InputTokens: 1}})
	m.SetKeyQuota(uuid.New(), "k", 1, 2)
	m.Priced("claude-sonnet-4-5", domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 1}, Total: 1})
	key := uuid.New()
	m.SetBudgetSource(func(context.Context) ([]metrics.KeyBudgetUse, error) {
		return []metrics.KeyBudgetUse{{ID: key, Window: "day", Used: 1, Limit: 2}}, nil
	})
	m.UpstreamAttempt("primary", metrics.OutcomeSuccess)
	m.UpstreamRetry("primary", metrics.RetryTimeout)
	m.UpstreamFailover("primary", "backup")
	m.UpstreamPicked("primary", "pinned")
	m.UpstreamSkipped("backup", "cooling")
	m.UpstreamStateChanged("backup", false, "cooling", "overloaded")
	m.SetUpstreamStates([]metrics.UpstreamState{{Upstream: "primary", State: "healthy"}, {Upstream: "backup", State: "cooling"}})
	m.UsageWriter().FlushDone(time.Millisecond, 1, nil)
	m.SetReady(true)
}

func TestHandler(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	m.Rejected(metrics.RejectConcurrency)

	t.Run("open", func(t *testing.T) {
		srv := httptest.NewServer(m.Handler(""))
		defer srv.Close()
		body := get(t, srv.URL, "", http.StatusOK)
		if !strings.Contains(body, `relay_rejections_total{reason="concurrency"} 1`) {
			t.Errorf("exposition lacks the rejection:\n%.500s", body)
		}
		if !strings.Contains(body, "# TYPE proxy_duration_seconds histogram") {
			t.Error("exposition lacks the duration histogram")
		}
	})

	t.Run("token", func(t *testing.T) {
		srv := httptest.NewServer(m.Handler("s3cret-token"))
		defer srv.Close()
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret-toke", "Basic s3cret-token", "s3cret-token"} {
			body := get(t, srv.URL, auth, http.StatusUnauthorized)
			want := `{"type":"error","error":{"type":"authentication_error","message":"a valid metrics bearer token is required"},"request_id":""}`
			if strings.TrimSpace(body) != want {
				t.Errorf("auth %q: body %s, want %s", auth, body, want)
			}
		}
		for _, auth := range []string{"Bearer s3cret-token", "bearer s3cret-token"} {
			if body := get(t, srv.URL, auth, http.StatusOK); !strings.Contains(body, "relay_rejections_total") {
				t.Errorf("auth %q: no metrics in body", auth)
			}
		}
	})
}

func get(tb testing.TB, url, auth string, wantStatus int) string {
	tb.Helper()
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		tb.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		tb.Fatal(err)
	}
	if res.StatusCode != wantStatus {
		tb.Fatalf("GET /metrics with %q: status %d, want %d: %s", auth, res.StatusCode, wantStatus, b)
	}
	if wantStatus == http.StatusUnauthorized {
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			tb.Errorf("401 content type %q", ct)
		}
		if res.Header.Get("WWW-Authenticate") == "" {
			tb.Error("401 without WWW-Authenticate")
		}
	}
	return string(b)
}

func TestConcurrentObservations(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1-20250805", "claude-haiku-4-5", "x"}
	var wg sync.WaitGroup
	const workers, each = 8, 500
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m.ObserveProxy(metrics.ProxyResult{Status: 200 + 100*(i%4), Model: models[(w+i)%len(models)], Usage: domain.Usage{OutputTokens: 1}})
				m.UpstreamAttempt(fmt.Sprintf("up%d", i%3), metrics.OutcomeSuccess)
				m.Priced(models[(w+i)%len(models)], domain.RecordCost{CostBreakdown: domain.CostBreakdown{Output: 1_000_000}, Total: 1_000_000})
			}
		}()
	}
	wg.Wait()
	var total float64
	for _, class := range []string{"2xx", "3xx", "4xx", "5xx"} {
		for _, model := range []string{"claude-sonnet-4-5", "claude-opus-4-1", "claude-haiku-4-5", "other"} {
			total += value(t, m, "relay_requests_total", "route_class", "proxy", "status_class", class, "model", model)
		}
	}
	if total != workers*each {
		t.Errorf("requests counted %v, want %d", total, workers*each)
	}
	if got := testutil.ToFloat64(counterFamilySum(t, m, "tokens_used_total")); got != workers*each {
		t.Errorf("output tokens %v, want %d", got, workers*each)
	}
	if got, want := testutil.ToFloat64(counterFamilySum(t, m, "relay_cost_usd_total")), float64(workers*each)*0.001; !near(got, want) {
		t.Errorf("cost %v USD, want %v", got, want)
	}
}

// counterFamilySum sums every series of a counter family into a gauge.
func counterFamilySum(tb testing.TB, m *metrics.Metrics, name string) prometheus.Gauge {
	tb.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sum"})
	for _, f := range fams {
		if f.GetName() == name {
			for _, s := range f.GetMetric() {
				g.Add(s.GetCounter().GetValue())
			}
		}
	}
	return g
}

// TestQuotaKeyNamesAreOptIn: by default the per-key gauge carries the key
// id only; names (people's, teams') appear only when asked for.
func TestQuotaKeyNamesAreOptIn(t *testing.T) {
	m := NewMetrics(t, metrics.Options{})
	a := uuid.New()
	m.SetKeyQuota(a, "alice-personal", 500, 1000)
	if got := value(t, m, "token_quota_usage_ratio", "key_id", a.String()); got != 0.5 {
		t.Fatalf("ratio = %v, want 0.5 with only a key_id label", got)
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetValue() == "alice-personal" {
					t.Fatalf("%s exports the key name", f.GetName())
				}
			}
		}
	}
}

// scrape GETs /metrics through the handler and parses the exposition, as
// Prometheus would read it.
func scrape(tb testing.TB, m *metrics.Metrics) map[string]*dto.MetricFamily {
	tb.Helper()
	srv := httptest.NewServer(m.Handler(""))
	defer srv.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(get(tb, srv.URL, "", http.StatusOK)))
	if err != nil {
		tb.Fatalf("parse exposition: %v", err)
	}
	return fams
}

// scraped returns the value of the series of family name with exactly
// these labels, and whether it exists.
func scraped(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
series:
	for _, s := range f.GetMetric() {
		if len(s.GetLabel()) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			if labelOf(s, labels[i]) != labels[i+1] {
				continue series
			}
		}
		switch {
		case s.Counter != nil:
			return s.GetCounter().GetValue(), true
		case s.Gauge != nil:
			return s.GetGauge().GetValue(), true
		case s.Untyped != nil:
			return s.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

// labelValues lists the values label takes across family name.
func labelValues(fams map[string]*dto.MetricFamily, name, label string) []string {
	var out []string
	for _, s := range fams[name].GetMetric() {
		out = append(out, labelOf(s, label))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// near compares dollar amounts summed in float64.
func near(got, want float64) bool { return math.Abs(got-want) <= 1e-9*math.Max(1, math.Abs(want)) }

func TestPriced(t *testing.T) {
	t.Parallel()
	m := NewMetrics(t, metrics.Options{NoRuntimeCollectors: true})
	sonnet := domain.RecordCost{
		CostBreakdown: domain.CostBreakdown{Input: 3_000_000, Output: 15_000_000, CacheWrite5m: 3_750_000, CacheWrite1h: 6_000_000, CacheRead: 300_000, WebSearch: 10_000_000, WebFetch: 1},
		Total:         38_050_001, PriceVersion: "2026-01-01",
	}
	m.Priced("claude-sonnet-4-5-20250929", sonnet)
	m.Priced("claude-sonnet-4-5", domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: 2_000_000_000}, Total: 2_000_000_000})
	// Partly priced: a newer model whose web fetches have no price.
	m.Priced("claude-opus-5-20270101", domain.RecordCost{CostBreakdown: domain.CostBreakdown{Output: 75_000_000}, Total: 75_000_000, Unpriced: true})
	// Not priced at all, under the fallback policy.
	for i := range 50 {
		m.Priced(fmt.Sprintf("my-finetune-%d", i), domain.RecordCost{Unpriced: true})
	}
	m.Priced("", domain.RecordCost{})
	// A negative amount (never from pricing) must neither panic nor count.
	m.Priced("claude-haiku-4-5", domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: -5}, Total: -5})

	fams := scrape(t, m)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"relay_cost_usd_total", []string{"model", "claude-sonnet-4-5"}, 2.038050001},
		{"relay_cost_usd_total", []string{"model", "claude-opus-5"}, 0.075},
		{"relay_cost_usd_total", []string{"model", "other"}, 0},
		{"relay_cost_usd_total", []string{"model", "claude-haiku-4-5"}, 0},
		{"relay_unpriced_requests_total", []string{"model", "other"}, 50},
		{"relay_unpriced_requests_total", []string{"model", "claude-opus-5"}, 1},
		// Exported at 0 once the model was priced, so increase() sees the
		// first unpriced request.
		{"relay_unpriced_requests_total", []string{"model", "claude-sonnet-4-5"}, 0},
		{"relay_cost_usd_by_class_total", []string{"class", "input"}, 2.003},
		{"relay_cost_usd_by_class_total", []string{"class", "output"}, 0.09},
		{"relay_cost_usd_by_class_total", []string{"class", "cache_write_5m"}, 0.00375},
		{"relay_cost_usd_by_class_total", []string{"class", "cache_write_1h"}, 0.006},
		{"relay_cost_usd_by_class_total", []string{"class", "cache_read"}, 0.0003},
		{"relay_cost_usd_by_class_total", []string{"class", "web_search"}, 0.01},
		{"relay_cost_usd_by_class_total", []string{"class", "web_fetch"}, 0.000000001},
	} {
		got, ok := scraped(fams, c.name, c.labels...)
		if !ok || !near(got, c.want) {
			t.Errorf("%s%v = %v (exported %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	// The model label is NormalizeModel's, whatever was requested.
	wantModels := []string{"claude-haiku-4-5", "claude-opus-5", "claude-sonnet-4-5", "none", "other"}
	for _, name := range []string{"relay_cost_usd_total", "relay_unpriced_requests_total"} {
		if got := labelValues(fams, name, "model"); !slices.Equal(got, wantModels) {
			t.Errorf("%s models = %q, want %q", name, got, wantModels)
		}
	}
	// Every class is exported from the start, and no class is invented.
	if got := len(fams["relay_cost_usd_by_class_total"].GetMetric()); got != 7 {
		t.Errorf("%d class series, want 7", got)
	}
	fresh := scrape(t, NewMetrics(t, metrics.Options{NoRuntimeCollectors: true}))
	if got := len(fresh["relay_cost_usd_by_class_total"].GetMetric()); got != 7 {
		t.Errorf("%d class series before any request, want 7", got)
	}
}

func TestBudgetSource(t *testing.T) {
	t.Parallel()
	m := NewMetrics(t, metrics.Options{MaxQuotaKeys: 3, NoRuntimeCollectors: true})
	if _, ok := scrape(t, m)["relay_budget_usage_ratio"]; ok {
		t.Error("relay_budget_usage_ratio exported without a source")
	}

	a, b, c, d := uuid.New(), uuid.New(), uuid.New(), uuid.New()
	var mu sync.Mutex
	var fail bool
	calls := 0
	m.SetBudgetSource(func(ctx context.Context) ([]metrics.KeyBudgetUse, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("source called without a deadline")
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if fail {
			return nil, errors.New("ledger down")
		}
		return []metrics.KeyBudgetUse{
			// Reserved is left out of the ratio: 0.8, not 1.3.
			{ID: a, Name: "team-a", Window: "day", Used: 80, Reserved: 50, Limit: 100},
			{ID: a, Name: "team-a", Window: "5h", Used: 3}, // no limit: not exported
			// A second day budget in another zone: same labels, the
			// higher ratio is exported.
			{ID: a, Name: "team-a", Window: "day", Used: 95, Limit: 100},
			{ID: b, Name: "team-b", Window: "month", Used: 120, Limit: 100},
			{ID: b, Name: "team-b", Window: "total", Used: 10, Limit: 1000},
			{ID: c, Name: "team-c", Window: "week", Used: 50, Limit: 100},
			{ID: d, Name: "team-d", Window: "fortnight", Used: 40, Limit: 100},
		}, nil
	})

	// Five series, cap three: the three closest to their limit stay.
	fams := scrape(t, m)
	for _, s := range []struct {
		id     uuid.UUID
		window string
		want   float64
	}{
		{b, "month", 1.2},
		{a, "day", 0.95},
		{c, "week", 0.5},
	} {
		if got, ok := scraped(fams, "relay_budget_usage_ratio", "key_id", s.id.String(), "window", s.window); !ok || got != s.want {
			t.Errorf("ratio %s/%s = %v (exported %v), want %v", s.id, s.window, got, ok, s.want)
		}
	}
	if got := len(fams["relay_budget_usage_ratio"].GetMetric()); got != 3 {
		t.Errorf("%d budget series, want 3 (the cap)", got)
	}
	if got, _ := scraped(fams, "relay_budget_keys_dropped_total"); got != 2 {
		t.Errorf("dropped = %v after one scrape, want 2", got)
	}
	if got := labelValues(fams, "relay_budget_usage_ratio", "key_name"); !slices.Equal(got, []string{""}) {
		t.Errorf("key names %q exported without Options.QuotaKeyNames", got)
	}

	// With room for all, an unknown window is exported as "other".
	wide := NewMetrics(t, metrics.Options{QuotaKeyNames: true, NoRuntimeCollectors: true})
	wide.SetBudgetSource(func(context.Context) ([]metrics.KeyBudgetUse, error) {
		return []metrics.KeyBudgetUse{{ID: d, Name: "team-d", Window: "fortnight", Used: 40, Limit: 100}}, nil
	})
	wf := scrape(t, wide)
	if got, ok := scraped(wf, "relay_budget_usage_ratio", "key_id", d.String(), "window", "other", "key_name", "team-d"); !ok || got != 0.4 {
		t.Errorf("unknown window ratio = %v (exported %v), want 0.4 as window=other with key_name", got, ok)
	}

	// The source fails: the last good values stay, and the error is counted.
	mu.Lock()
	fail = true
	mu.Unlock()
	fams = scrape(t, m)
	if got, ok := scraped(fams, "relay_budget_usage_ratio", "key_id", b.String(), "window", "month"); !ok || got != 1.2 {
		t.Errorf("fallback ratio = %v (exported %v), want the last good 1.2", got, ok)
	}
	if got, _ := scraped(fams, "relay_budget_source_errors_total"); got != 1 {
		t.Errorf("source errors = %v, want 1", got)
	}
	if got, _ := scraped(fams, "relay_budget_keys_dropped_total"); got != 2 {
		t.Errorf("dropped = %v, want 2: a fallback scrape drops nothing new", got)
	}

	m.SetBudgetSource(nil)
	if _, ok := scrape(t, m)["relay_budget_usage_ratio"]; ok {
		t.Error("relay_budget_usage_ratio still exported after SetBudgetSource(nil)")
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 2 {
		t.Errorf("source called %d times for two scrapes, want 2", calls)
	}
}
