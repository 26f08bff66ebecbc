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
)

// These small adapters connect each component's Observer port to the one
// Prometheus registry, so no component imports the metrics package.

type relayObserver struct {
	m   *metrics.Metrics
	log *slog.Logger
}

// Rejected maps admission's bounded reasons onto the metric's label set.
func (o relayObserver) Rejected(reason string) {
	switch {
	case reason == string(relay.AuthOrigin):
		o.m.AuthFailed(metrics.AuthOrigin)
	case reason == "usage_queue" || strings.HasSuffix(reason, "_backend"):
		o.m.Rejected(metrics.RejectOverloaded)
	default:
		o.m.Rejected(reason)
	}
}

// BackendFailure: Redis could not answer. Refusals are already counted by
// Rejected; this leaves a trace of the fail-open ones too.
func (o relayObserver) BackendFailure(c relay.Concern, failOpen bool) {
	o.log.Warn("limiter backend unavailable", "concern", string(c), "fail_open", failOpen)
}

var _ relay.Observer = relayObserver{}

type upstreamObserver struct{ m *metrics.Metrics }

func (o upstreamObserver) Attempt(name string, outcome upstream.Outcome) {
	o.m.UpstreamAttempt(name, string(outcome))
}
func (o upstreamObserver) Retry(name string)        { o.m.UpstreamRetry(name, "retryable") }
func (o upstreamObserver) Failover(from, to string) { o.m.UpstreamFailover(from, to) }

var _ upstream.Observer = upstreamObserver{}

type serverObserver struct{ m *metrics.Metrics }

func (o serverObserver) AdminRequest(op string, status int) {
	route := metrics.RouteAdmin
	if strings.HasPrefix(op, "Key") || op == "Health" || op == "Ready" {
		route = metrics.RouteAPI
	}
	o.m.ObserveRequest(route, status, "")
}
func (o serverObserver) AuthFailure(kind string) { o.m.AuthFailed(kind) }
func (o serverObserver) LoginFailure()           { o.m.AuthFailed("admin_login") }

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
