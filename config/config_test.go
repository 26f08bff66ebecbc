package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const seedYAML = `
upstream:
  primary:
    url: "https://api.anthropic.com/v1"
    api_key: "${UPSTREAM_API_KEY}"
    timeout: 60
    max_retries: 3
rate_limit:
  by_tier:
    basic:   {requests: 100,  period: 60}
    premium: {requests: 1000, period: 60}
`

func TestSeedConfigLoadsAsIs(t *testing.T) {
	p := writeFile(t, seedYAML)
	cfg, used, err := Load(Source{File: p, Environ: []string{"UPSTREAM_API_KEY=sk-ant-test"}})
	if err != nil {
		t.Fatal(err)
	}
	if used != p {
		t.Fatalf("used file %q, want %q", used, p)
	}
	if got := cfg.Upstream.Primary; got.APIKey != "sk-ant-test" || got.Timeout != 60*time.Second || got.MaxRetries != 3 || got.URL != "https://api.anthropic.com/v1" {
		t.Fatalf("primary = %+v", got)
	}
	tiers := cfg.Tiers()
	if len(tiers) != 2 || tiers[0].Name != "basic" || tiers[0].Requests != 100 || tiers[0].Period != time.Minute || tiers[1].Requests != 1000 {
		t.Fatalf("tiers = %+v", tiers)
	}
}

func TestPrecedenceDefaultsFileEnv(t *testing.T) {
	p := writeFile(t, "listen_addr: \":9000\"\nlog: {level: debug}\n")
	cfg, _, err := Load(Source{File: p, Environ: []string{"LOG_LEVEL=warn", "ADMIN_ALLOWED_IPS=10.0.0.0/8, 127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ListenAddr != ":9000" {
		t.Errorf("file did not override default: %q", cfg.ListenAddr)
	}
	if cfg.Log.Level != "warn" {
		t.Errorf("env did not override file: %q", cfg.Log.Level)
	}
	if cfg.Log.Format != "json" {
		t.Errorf("default lost: %q", cfg.Log.Format)
	}
	if len(cfg.Admin.AllowedIPs) != 2 || cfg.Admin.AllowedIPs[1] != netip.MustParsePrefix("127.0.0.1/32") {
		t.Errorf("list env = %q", cfg.Admin.AllowedIPs)
	}
	if cfg.Tiers() != nil {
		t.Errorf("no tiers configured, got %+v", cfg.Tiers())
	}
}

func TestConfigFileFromEnvAndMissingFile(t *testing.T) {
	p := writeFile(t, "listen_addr: \":9100\"\n")
	cfg, _, err := Load(Source{Environ: []string{"CONFIG_FILE=" + p}})
	if err != nil || cfg.ListenAddr != ":9100" {
		t.Fatalf("CONFIG_FILE not used: %v %q", err, cfg.ListenAddr)
	}
	_, _, err = Load(Source{Environ: []string{"CONFIG_FILE=/nonexistent/relay.yaml"}})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/relay.yaml") {
		t.Fatalf("missing explicit file: %v", err)
	}
}

func TestExpansionLeavesArgonHashAlone(t *testing.T) {
	hash := "$argon2id$v=19$m=65536,t=1,p=2$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"
	p := writeFile(t, "admin:\n  password_hash: '"+hash+"'\n")
	cfg, _, err := Load(Source{File: p})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.PasswordHash != hash {
		t.Fatalf("hash mangled: %q", cfg.Admin.PasswordHash)
	}
}

func TestInvalidValuesNameTheKey(t *testing.T) {
	cases := []struct {
		name, yaml string
		env        []string
		wantKey    string
	}{
		{"bad db scheme", "", []string{"DATABASE_URL=mysql://x/y"}, "database_url"},
		{"bad log level", "", []string{"LOG_LEVEL=loud"}, "log.level"},
		{"bad admin ips", "", []string{"ADMIN_ALLOWED_IPS=10.0.0.0/99"}, "ADMIN_ALLOWED_IPS"},
		{"bad upstream url", "upstream: {primary: {url: 'ftp://x'}}", nil, "upstream.primary.url"},
		{"bad tier", "rate_limit: {by_tier: {x: {requests: 0, period: 60}}}", nil, "rate_limit.by_tier.x.requests"},
		{"unknown key", "listen_adr: ':1'", nil, "listen_adr"},
		{"bad duration", "server: {shutdown_grace: soon}", nil, "shutdown_grace"},
		{"bad policy", "quota: {fail_policy: maybe}", nil, "quota.fail_policy"},
		{"malformed yaml", "upstream: [", nil, "config file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := Source{Environ: tc.env, File: writeFile(t, tc.yaml)}
			_, _, err := Load(src)
			if err == nil {
				t.Fatal("expected an error")
			}
			if !strings.Contains(err.Error(), tc.wantKey) {
				t.Fatalf("error %q does not name %q", err, tc.wantKey)
			}
		})
	}
}

func TestRedactedMasksSecrets(t *testing.T) {
	cfg := Defaults()
	cfg.SecretKey = "jwt-secret-value"
	cfg.Admin.Password = "hunter2-password"
	cfg.Upstream.Primary.APIKey = "sk-ant-api03-secret"
	cfg.DatabaseURL = "postgres://u:dbpass-secret@h/db"
	cfg.Metrics.Token = "metrics-token-secret"
	s := cfg.String()
	for _, secret := range []string{"jwt-secret-value", "hunter2-password", "sk-ant-api03-secret", "dbpass-secret", "metrics-token-secret"} {
		if strings.Contains(s, secret) {
			t.Errorf("String() leaks %q", secret)
		}
	}
	if cfg.SecretKey != "jwt-secret-value" {
		t.Error("Redacted modified the original")
	}
}

func TestExampleConfigLoads(t *testing.T) {
	cfg, _, err := Load(Source{File: "config.example.yaml", Environ: []string{"UPSTREAM_API_KEY=k"}})
	if err != nil {
		t.Fatal(err)
	}
	def := Defaults()
	if cfg.ListenAddr != def.ListenAddr || cfg.Usage != def.Usage || cfg.Quota != def.Quota || cfg.Upstream.IdleTimeout != def.Upstream.IdleTimeout {
		t.Fatalf("example config drifted from defaults: %+v", cfg)
	}
	if len(cfg.Tiers()) != 2 {
		t.Fatalf("tiers: %+v", cfg.Tiers())
	}
}

func TestLoginThrottleSettings(t *testing.T) {
	p := writeFile(t, "admin:\n  login_throttle: {per_address: 3, per_username: 50, window: 2h, known_address_ttl: 0}\n")
	cfg, _, err := Load(Source{File: p})
	if err != nil {
		t.Fatal(err)
	}
	lt := cfg.Admin.LoginThrottle
	if lt.PerAddress != 3 || lt.PerUsername != 50 || lt.Window != 2*time.Hour || lt.KnownAddressTTL != 0 ||
		lt.Global != 1000 || lt.MaxBackoff != 15*time.Minute || lt.MaxEntries != 100_000 {
		t.Fatalf("login_throttle = %+v", lt)
	}
	for yaml, wantKey := range map[string]string{
		// The old per-IP settings point to the new ones.
		"admin: {login_failures: 5}":                       "admin.login_throttle",
		"admin: {login_window: 1m}":                        "admin.login_throttle",
		"admin: {login_throttle: {per_address: 0}}":        "admin.login_throttle",
		"admin: {login_throttle: {window: 1m}}":            "admin.login_throttle",
		"admin: {login_throttle: {max_entries: 10}}":       "admin.login_throttle.max_entries",
		"admin: {login_throttle: {known_address_ttl: -1}}": "admin.login_throttle.known_address_ttl",
	} {
		if _, _, err := Load(Source{File: writeFile(t, yaml)}); err == nil || !strings.Contains(err.Error(), wantKey) {
			t.Errorf("%s: %v, want an error naming %s", yaml, err, wantKey)
		}
	}
}
