package main

import (
	"context"
	"strings"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/ports"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/proxy"
)

// These small adapters connect each component's Observer port to the one
// Prometheus registry, so no component imports the metrics package.

type relayObserver struct{ m *metrics.Metrics }

// Rejected counts a refusal under its reason's label (a refused key is an
// auth failure; the rest are rejections).
func (o relayObserver) Rejected(reason domain.Reason) { o.m.Refused(reason) }

// BackendFailure: Redis could not answer; counted by concern and by the
// policy applied. The service logs it, with the request id.
func (o relayObserver) BackendFailure(c relay.Concern, failOpen bool) {
	o.m.BackendFailure(string(c), failOpen)
}

var _ relay.Observer = relayObserver{}

// proxyObserver feeds the proxy's per-request events to the metrics.
type proxyObserver struct{ m *metrics.Metrics }

func (o proxyObserver) RequestStarted()  { o.m.RequestStarted() }
func (o proxyObserver) RequestFinished() { o.m.RequestFinished() }
func (o proxyObserver) StreamOpened()    { o.m.StreamOpened() }
func (o proxyObserver) StreamClosed()    { o.m.StreamClosed() }
func (o proxyObserver) Done(rec *domain.UsageRecord) {
	o.m.ObserveProxy(metrics.ProxyResult{Upstream: rec.Upstream, Status: rec.Status, Model: rec.Model, Stream: rec.Stream,
		Duration: rec.Latency, TTFB: rec.TTFB, Usage: rec.Usage})
	if rec.Cost.PriceVersion != "" {
		o.m.Priced(rec.Model, rec.Cost)
	}
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
func (o upstreamObserver) Picked(name string, why pool.Why) {
	o.m.UpstreamPicked(name, string(why))
}
func (o upstreamObserver) Skipped(name string, reason pool.SkipReason) {
	o.m.UpstreamSkipped(name, string(reason))
}
func (o upstreamObserver) StateChanged(name string, ev pool.Event) {
	o.m.UpstreamStateChanged(name, ev.Model != "", ev.To.String(), string(ev.Cause))
}

// States publishes each upstream's state; one turned off by an operator
// is "off" whatever its health.
func (o upstreamObserver) States(states []upstream.UpstreamState) {
	out := make([]metrics.UpstreamState, len(states))
	for i, s := range states {
		state := s.State.String()
		if !s.Enabled {
			state = metrics.UpstreamStateOff
		}
		out[i] = metrics.UpstreamState{Upstream: s.Name, State: state, ModelsUnhealthy: s.ModelsUnhealthy}
	}
	o.m.SetUpstreamStates(out)
}

var _ upstream.Observer = upstreamObserver{}

type serverObserver struct{ m *metrics.Metrics }

func (o serverObserver) AdminRequest(op string, status int) {
	route := metrics.RouteAdmin
	if strings.HasPrefix(op, "key") || op == "health" || op == "ready" {
		route = metrics.RouteAPI
	}
	o.m.ObserveRequest(route, status, "")
}

// AuthFailure counts the management API's kinds under their reasons.
func (o serverObserver) AuthFailure(kind string) {
	if r, ok := serverAuthKinds[kind]; ok {
		o.m.Refused(r)
		return
	}
	o.m.AuthFailed(kind)
}

// serverAuthKinds are the reasons behind the management API's failure kinds.
var serverAuthKinds = map[string]domain.Reason{
	httpadapter.AuthKindLogin:                         domain.ReasonLogin,
	httpadapter.AuthKindAdminIP:                       domain.ReasonAdminIP,
	httpadapter.AuthKindAdminTokenMissing:             domain.ReasonAdminToken,
	httpadapter.AuthKindAdminTokenInvalid:             domain.ReasonAdminToken,
	httpadapter.AuthKindKey(domain.ReasonKeyMissing):  domain.ReasonKeyMissing,
	httpadapter.AuthKindKey(domain.ReasonKeyUnknown):  domain.ReasonKeyUnknown,
	httpadapter.AuthKindKey(domain.ReasonKeyDisabled): domain.ReasonKeyDisabled,
	httpadapter.AuthKindKey(domain.ReasonKeyExpired):  domain.ReasonKeyExpired,
	httpadapter.AuthKindKey(domain.ReasonKeyDeleted):  domain.ReasonKeyDeleted,
	httpadapter.AuthKindKey(domain.ReasonKeyIP):       domain.ReasonKeyIP,
	httpadapter.AuthKindKey(domain.ReasonKeyOrigin):   domain.ReasonKeyOrigin,
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

// budgetSource reports every budget of the keys that have any, at most max
// key×window pairs, for relay_budget_usage_ratio, from the live ledger
// (what admission sees). Each key is one ledger read per scrape.
func budgetSource(store ports.KeyStore, budgets *billing.Budgets, clock ports.Clock, max int) metrics.BudgetSource {
	return func(ctx context.Context) ([]metrics.KeyBudgetUse, error) {
		var out []metrics.KeyBudgetUse
		f := domain.KeyFilter{Limit: 500}
		now := clock.Now()
		for len(out) < max {
			keys, err := store.ListKeys(ctx, f)
			if err != nil {
				return nil, err
			}
			for _, k := range keys {
				if len(k.Budgets) == 0 || k.DeletedAt != nil {
					continue
				}
				sts, err := budgets.State(ctx, k, now)
				if err != nil {
					return nil, err
				}
				for _, st := range sts {
					out = append(out, metrics.KeyBudgetUse{ID: k.ID, Name: k.Name, Window: string(st.Budget.Window),
						Used: st.Used, Reserved: st.Reserved, Limit: st.Budget.Limit})
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
