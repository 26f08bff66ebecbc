package metrics_test

import (
	"testing"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/domain"
)

// TestRefusedMapsReasons: every domain reason lands on one label of the
// closed sets, a refused key as an auth failure, the rest as rejections.
func TestRefusedMapsReasons(t *testing.T) {
	t.Parallel()
	m := NewMetrics(t, metrics.Options{})
	for _, r := range []domain.Reason{
		domain.ReasonKeyUnknown, domain.ReasonKeyOrigin, domain.ReasonAdminToken,
		domain.ReasonRequests, domain.ReasonTokens, domain.ReasonQuota,
		domain.ReasonUsageQueue, domain.ReasonQuotaBackend, domain.ReasonEstimator,
		domain.ReasonUpstreamNotConfigured, domain.ReasonBody, domain.ReasonNone,
	} {
		m.Refused(r)
	}
	for _, c := range []struct {
		name, label, value string
		want               float64
	}{
		{"relay_auth_failures_total", "kind", metrics.AuthUnknown, 1},
		{"relay_auth_failures_total", "kind", metrics.AuthOrigin, 1},
		{"relay_auth_failures_total", "kind", metrics.AuthAdminJWT, 1},
		{"relay_rejections_total", "reason", metrics.RejectRateLimitRequests, 1},
		{"relay_rejections_total", "reason", metrics.RejectRateLimitTokens, 1},
		{"relay_rejections_total", "reason", metrics.RejectQuota, 1},
		{"relay_rejections_total", "reason", metrics.RejectOverloaded, 3},
		{"relay_rejections_total", "reason", metrics.RejectUpstreamMissing, 1},
		{"relay_rejections_total", "reason", "other", 2},
	} {
		if got := value(t, m, c.name, c.label, c.value); got != c.want {
			t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.value, got, c.want)
		}
	}
}
