package config

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain/relay"
)

// TestTypedValues: address lists and failure policies arrive typed, so the
// wiring passes them on as they are; a bad one names its key and variable.
func TestTypedValues(t *testing.T) {
	t.Parallel()
	p := writeFile(t, "server: {trusted_proxies: ['10.1.2.3/8', '192.0.2.7']}\nquota: {fail_policy: fail_open}\n")
	cfg, _, err := Load(Source{File: p})
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32")}
	if !slices.Equal(cfg.Server.TrustedProxies, want) {
		t.Errorf("trusted_proxies = %v, want %v", cfg.Server.TrustedProxies, want)
	}
	if cfg.Quota.FailPolicy != relay.FailOpen || cfg.RateLimit.FailPolicy != relay.DefaultRatePolicy {
		t.Errorf("policies: quota %v, rate_limit %v", cfg.Quota.FailPolicy, cfg.RateLimit.FailPolicy)
	}
	if d := Defaults(); d.Quota.FailPolicy != relay.FailClosed || d.RateLimit.FailPolicy != relay.FailOpen {
		t.Errorf("default policies: quota %v, rate_limit %v", d.Quota.FailPolicy, d.RateLimit.FailPolicy)
	}
	_, _, err = Load(Source{File: "/dev/null", Environ: []string{"TRUSTED_PROXIES=10.0.0.1,unknown"}})
	if err == nil || !strings.Contains(err.Error(), "server.trusted_proxies[1] (TRUSTED_PROXIES)") {
		t.Errorf("a bad entry: %v", err)
	}
	if _, _, err := Load(Source{File: writeFile(t, "quota: {fail_policy: 2}")}); err == nil || !strings.Contains(err.Error(), "quota.fail_policy") {
		t.Errorf("a number for a policy: %v", err)
	}
}
