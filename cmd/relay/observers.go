package main

import (
	"context"
	"log/slog"
	"strings"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/proxy"
)

// These small adapters connect each component's Observer port to the one
// Prometheus registry, so no component imports the metrics package.

type relayObserver struct {
	m   *metrics.Metrics
	log *slog.Logger
}

// Rejected maps admission's bounded reasons onto the metrics' label sets:
// authentication refusals are auth failures, the rest rejections.
func (o relayObserver) Rejected(reason string) {
	switch {
	case authReasons[reason]:
		o.m.AuthFailed(reason)
	case reason == "usage_queue" || strings.HasSuffix(reason, "_backend"):
		o.m.Rejected(metrics.RejectOverloaded)
	default:
		o.m.Rejected(reason)
	}
}

// BackendFailure: Redis could not answer; counted by concern and by the
// policy applied, and logged.
func (o relayObserver) BackendFailure(c relay.Concern, failOpen bool) {
	o.m.BackendFailure(string(c), failOpen)
	o.log.Warn("limiter backend unavailable", "concern", string(c), "fail_open", failOpen)
}

var _ relay.Observer = relayObserver{}

var authReasons = map[string]bool{
	string(relay.AuthMissing): true, string(relay.AuthUnknown): true, string(relay.AuthDisabled): true,
	string(relay.AuthExpired): true, string(relay.AuthDeleted): true, string(relay.AuthIP): true,
	string(relay.AuthOrigin): true,
}

// proxyObserver feeds the proxy's per-request events to the metrics.
type proxyObserver struct{ m *metrics.Metrics }

func (o proxyObserver) RequestStarted()  { o.m.RequestStarted() }
func (o proxyObserver) RequestFinished() { o.m.RequestFinished() }
func (o proxyObserver) StreamOpened()    { o.m.StreamOpened() }
func (o proxyObserver) StreamClosed()    { o.m.StreamClosed() }
func (o proxyObserver) Done(rec *domain.UsageRecord) {
	o.m.ObserveProxy(metrics.ProxyResult{Status: rec.Status, Model: rec.Model, Stream: rec.Stream,
		Duration: rec.Latency, TTFB: rec.TTFB, Usage: rec.Usage})
}

var _ proxy.Observer = proxyObserver{}

type upstreamObserver struct{ m *metrics.Metrics }

func (o upstreamObserver) Attempt(name string, outcome upstream.Outcome) {
	switch outcome {
	case upstream.OutcomeOK:
		o.m.UpstreamAttempt(name, metrics.OutcomeSuccess)
	case upstream.OutcomeConnectError:
		o.m.UpstreamAttempt(name, metrics.OutcomeNetwork)
	default:
		o.m.UpstreamAttempt(name, string(outcome))
	}
}
func (o upstreamObserver) Retry(name string)        { o.m.UpstreamRetry(name, "retryable") }
func (o upstreamObserver) Failover(from, to string) { o.m.UpstreamFailover(from, to) }

var _ upstream.Observer = upstreamObserver{}

type serverObserver struct{ m *metrics.Metrics }

func (o serverObserver) AdminRequest(op string, status int) {
	route := metrics.RouteAdmin
	if strings.HasPrefix(op, "key") || op == "health" || op == "ready" {
		route = metrics.RouteAPI
	}
	o.m.ObserveRequest(route, status, "")
}

// AuthFailure maps the management API's kinds onto the metric's.
func (o serverObserver) AuthFailure(kind string) {
	switch {
	case kind == "login":
		o.m.AuthFailed(metrics.AuthAdminLogin)
	case kind == "admin_ip":
		o.m.AuthFailed(metrics.AuthAdminIP)
	case strings.HasPrefix(kind, "admin_token"):
		o.m.AuthFailed(metrics.AuthAdminJWT)
	case strings.HasPrefix(kind, "key_"):
		o.m.AuthFailed(strings.TrimPrefix(kind, "key_"))
	default:
		o.m.AuthFailed(kind)
	}
}

// LoginFailure also fires for throttled attempts, which are not credential
// failures; those are counted as rejections.
func (o serverObserver) LoginFailure() {}

var _ httpadapter.Observer = serverObserver{}

// quotaSource lists keys with a token limit for token_quota_usage_ratio, at
// most max of them, on each scrape.
func quotaSource(store ports.KeyStore, max int) metrics.QuotaSource {
	return func(ctx context.Context) ([]metrics.KeyQuota, error) {
		var out []metrics.KeyQuota
		f := domain.KeyFilter{Limit: 500}
		for len(out) < max {
			keys, err := store.ListKeys(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if k.TokenLimit != nil && k.DeletedAt == nil {
					out = append(out, metrics.KeyQuota{ID: k.ID, Name: k.Name, Used: k.TokensUsed, Limit: *k.TokenLimit})
				}
			}
			if len(keys) < f.Limit {
				break
			}
			last := keys[len(keys)-1]
			f.After = &domain.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		return out, nil
	}
}
