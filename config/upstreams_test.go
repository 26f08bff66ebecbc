package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/secretbox"
	"github.com/relaystation/relay/domain/upstreams"
)

func TestUpstreamSeeds(t *testing.T) {
	p := writeFile(t, `
upstream:
  primary: {url: "https://api.anthropic.com/v1", api_key: "${UPSTREAM_API_KEY}"}
  fallbacks:
    - {name: org-b, url: "https://b.example.com", api_key: "sk-b"}
    - {url: "https://c.example.com"}
`)
	cfg, _, err := Load(Source{File: p, Environ: []string{"UPSTREAM_API_KEY=sk-a"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []upstreams.SeedUpstream{
		{ID: "primary", Name: "primary", URL: "https://api.anthropic.com/v1", APIKey: "sk-a", Priority: 0, Weight: 1, Enabled: true},
		{ID: "org-b", Name: "org-b", URL: "https://b.example.com", APIKey: "sk-b", Priority: 1, Weight: 1, Enabled: true},
		{ID: "fallback-2", Name: "fallback-2", URL: "https://c.example.com", Priority: 2, Weight: 1, Enabled: true},
	}
	if got := cfg.Upstream.Seeds(); !reflect.DeepEqual(got, want) {
		t.Fatalf("seeds:\n got %+v\nwant %+v", got, want)
	}
	if cfg.Upstream.Refresh != upstreams.DefaultRefresh {
		t.Fatalf("refresh = %v, want the registry's default", cfg.Upstream.Refresh)
	}
}

func TestUpstreamKeySecrets(t *testing.T) {
	cur, old := strings.Repeat("n", 32), strings.Repeat("o", 32)
	cfg, _, err := Load(Source{File: writeFile(t, "upstream: {refresh: 2s}\n"), Environ: []string{
		"UPSTREAM_KEY_SECRET=" + cur, "UPSTREAM_PREVIOUS_KEY_SECRETS=" + old + ", " + strings.Repeat("p", 16),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Upstream.KeySecret != cur || len(cfg.Upstream.PreviousKeySecrets) != 2 || cfg.Upstream.Refresh != 2*time.Second {
		t.Fatalf("upstream = %+v", cfg.Upstream)
	}
	box, err := cfg.Upstream.KeyBox("the-jwt-secret-of-at-least-16")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := secretbox.DeriveKey(cur)
	prev, _ := secretbox.DeriveKey(old)
	if box.Current.ID() != want.ID() || len(box.Previous) != 2 || box.Previous[0].ID() != prev.ID() {
		t.Fatalf("box %v", box)
	}
	// A key sealed under the old secret opens with the new box.
	sealed, err := secretbox.Box{Current: prev}.Seal(secretbox.NewSecret("sk-ant-xyz"), "primary")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := box.Open(sealed, "primary"); err != nil || got.Reveal() != "sk-ant-xyz" || !box.NeedsRotation(sealed) {
		t.Fatalf("open old: %v", err)
	}

	// Without UPSTREAM_KEY_SECRET the key is derived from SECRET_KEY.
	def := Defaults()
	box, err = def.Upstream.KeyBox("the-jwt-secret-of-at-least-16")
	if err != nil {
		t.Fatal(err)
	}
	fromSecret, _ := secretbox.DeriveKey("the-jwt-secret-of-at-least-16")
	if box.Current.ID() != fromSecret.ID() || len(box.Previous) != 0 {
		t.Fatalf("derived box %v", box)
	}
	if _, err := def.Upstream.KeyBox("short"); err == nil || !strings.Contains(err.Error(), "SECRET_KEY") {
		t.Fatalf("short SECRET_KEY: %v", err)
	}

	// Printed, every secret is masked.
	s := cfg.String()
	if strings.Contains(s, cur) || strings.Contains(s, old) || strings.Contains(s, "pppp") {
		t.Fatalf("String() leaks an upstream key secret:\n%s", s)
	}
	if cfg.Upstream.KeySecret != cur {
		t.Fatal("Redacted modified the original")
	}
}

func TestUpstreamSettingsInvalid(t *testing.T) {
	for env, wantKey := range map[string]string{
		"UPSTREAM_KEY_SECRET=short":           "upstream.key_secret (UPSTREAM_KEY_SECRET)",
		"UPSTREAM_PREVIOUS_KEY_SECRETS=short": "upstream.previous_key_secrets[0]",
	} {
		_, _, err := Load(Source{File: writeFile(t, ""), Environ: []string{env}})
		if err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Errorf("%s: err = %v, want it to name %s", env, err, wantKey)
		}
		if err != nil && strings.Contains(err.Error(), "short") {
			t.Errorf("%s: the error shows the secret: %v", env, err)
		}
	}
	for yaml, wantKey := range map[string]string{
		"upstream: {refresh: 0}": "upstream.refresh",
		"upstream: {fallbacks: [{name: primary, url: 'https://b.example.com'}]}":    "upstream.fallbacks[0].name",
		"upstream: {fallbacks: [{name: 'org b', url: 'https://b.example.com'}]}":    "upstream.fallbacks[0]",
		"upstream: {primary: {url: 'https://u:p@api.anthropic.com'}}":               "upstream.primary",
		"upstream: {fallbacks: [{name: x, url: 'https://x.test', api_key: 'a b'}]}": "upstream.fallbacks[0]",
	} {
		_, _, err := Load(Source{File: writeFile(t, yaml)})
		if err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Errorf("%s: err = %v, want it to name %s", yaml, err, wantKey)
		}
	}
}
