package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alexedwards/argon2id"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/keycache"
	"github.com/relaystation/relay/adapters/memory"
	"github.com/relaystation/relay/adapters/secretbox"
	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/ports"
)

// cliSealer and cliRuntime stand in for the sealer and the transport that
// `relay serve` wires, as far as the admin API needs them.
type cliSealer struct{ box secretbox.Box }

func (s cliSealer) Seal(plain, id string) (string, error) {
	return s.box.Seal(secretbox.NewSecret(plain), id)
}

func (s cliSealer) Open(sealed, id string) (string, error) {
	v, err := s.box.Open(sealed, id)
	return v.Reveal(), err
}

type cliRuntime struct{}

func (cliRuntime) Apply([]ports.UpstreamEndpoint) error { return nil }
func (cliRuntime) Test(_ context.Context, e ports.UpstreamEndpoint) ports.UpstreamTest {
	if e.APIKey == "" {
		return ports.UpstreamTest{Message: "no key"}
	}
	return ports.UpstreamTest{OK: true, Status: 200, Latency: 3 * time.Millisecond}
}

// startAdminAPI serves the management API, upstreams included, over a
// fresh SQLite store; its log goes to logs.
func startAdminAPI(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := storage.Open(ctx, "", t.TempDir(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	hash, err := argon2id.CreateHash(testAdminPassword, &argon2id.Params{Memory: 8 * 1024, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32})
	if err != nil {
		t.Fatal(err)
	}
	clock := ports.SystemClock{}
	hasher := domain.NewKeyHasher([]byte("cli-test-hmac"))
	cache := keycache.New(store, time.Second, clock)
	throttle, err := memory.NewLoginThrottle(10_000)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := admin.NewService(admin.Deps{Keys: store, Tiers: store, Usage: store, Cache: cache, Clock: clock, Hasher: hasher,
		LoginThrottle: throttle, Log: log}, admin.Config{AdminUsername: "admin", AdminPasswordHash: hash, MaxPasswordChecks: 2,
		LoginThrottle: config.Defaults().Admin.LoginThrottle.Policy()})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SeedTiers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	box, err := config.Defaults().Upstream.KeyBox(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pool.New(pool.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := upstreams.New(upstreams.Deps{Store: store, Sealer: cliSealer{box}, Pool: p, Runtime: cliRuntime{}, Usage: store, Clock: clock, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := httpadapter.New(httpadapter.Options{Log: log, Admin: svc, Auth: relay.NewAuthenticator(hasher, cache, clock),
		Upstreams: reg, JWT: httpadapter.JWTOptions{Secret: []byte(testSecretKey)}, AdminUsername: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs.URL
}

func TestUpstreamsCLI(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	url := startAdminAPI(t, logs)
	up := httptest.NewServer(fakeanthropic.New(fakeanthropic.Options{}))
	t.Cleanup(up.Close)
	const keyA, keyB = "sk-ant-api03-CLI-SECRET-never-leak-aaaa", "sk-ant-api03-CLI-SECRET-never-leak-bbbb"
	base := []string{"RELAY_URL=" + url, "RELAY_ADMIN_PASSWORD=" + testAdminPassword, "ORG_A_KEY=" + keyA}
	var outputs []string
	cli := func(stdin string, args ...string) (string, error) {
		t.Helper()
		var out, errb bytes.Buffer
		err := run(context.Background(), args, env{environ: base, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb})
		outputs = append(outputs, out.String(), errb.String())
		return out.String(), err
	}
	must := func(stdin string, args ...string) string {
		t.Helper()
		out, err := cli(stdin, args...)
		if err != nil {
			t.Fatalf("relay %s: %v", strings.Join(args, " "), err)
		}
		return out
	}

	// Create with the key from the environment, then one from stdin.
	var a struct {
		ID          string  `json:"id"`
		Name        string  `json:"name"`
		APIKeyLast4 *string `json:"api_key_last4"`
		Priority    int     `json:"priority"`
		Weight      int     `json:"weight"`
		MaxConc     *int    `json:"max_concurrency"`
		Models      []string
		Group       string
		Enabled     bool
	}
	out := must("", "upstreams", "create", "--name", "org-a", "--upstream-url", up.URL, "--api-key-env", "ORG_A_KEY",
		"--priority", "1", "--weight", "3", "--max-concurrency", "8", "--models", "claude-sonnet-*,claude-haiku-4-5", "--group", "team-a", "--json")
	if err := json.Unmarshal([]byte(out), &a); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !strings.HasPrefix(a.ID, "up_") || a.Name != "org-a" || *a.APIKeyLast4 != "aaaa" || a.Priority != 1 || a.Weight != 3 ||
		*a.MaxConc != 8 || len(a.Models) != 2 || a.Group != "team-a" || !a.Enabled {
		t.Fatalf("created: %s", out)
	}
	out = must(keyB+"\n", "upstreams", "create", "--name", "org-b", "--upstream-url", up.URL, "--api-key-stdin", "--enabled=false")
	if !strings.Contains(out, "org-b") || !strings.Contains(out, "…bbbb") || !strings.Contains(out, "disabled by admin") {
		t.Fatalf("created from stdin: %s", out)
	}

	out = must("", "upstreams", "list")
	if !strings.Contains(out, a.ID) || !strings.Contains(out, "org-b") || !strings.Contains(out, "team-a") || !strings.Contains(out, "healthy") {
		t.Fatalf("list: %s", out)
	}
	out = must("", "upstreams", "update", a.ID, "--name", "org-a2", "--max-concurrency", "none", "--models", "", "--weight", "2")
	if !strings.Contains(out, "org-a2") || !strings.Contains(out, "none") || !strings.Contains(out, "any") {
		t.Fatalf("update: %s", out)
	}
	if out := must("", "upstreams", "get", a.ID); !strings.Contains(out, "org-a2") || !strings.Contains(out, "team-a") {
		t.Fatalf("get: %s", out)
	}
	if out := must("", "upstreams", "test", a.ID); !strings.Contains(out, "ok (status 200") {
		t.Fatalf("test: %s", out)
	}
	if out := must("", "upstreams", "disable", a.ID); !strings.Contains(out, "disabled by admin") {
		t.Fatalf("disable: %s", out)
	}
	if out := must("", "upstreams", "enable", a.ID); !strings.Contains(out, "healthy") {
		t.Fatalf("enable: %s", out)
	}
	if out := must("", "upstreams", "delete", a.ID); !strings.Contains(out, "deleted upstream "+a.ID) {
		t.Fatalf("delete: %s", out)
	}
	if _, err := cli("", "upstreams", "get", a.ID); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("get deleted: %v", err)
	}

	// Keys name an upstream group; usage groups by upstream.
	var k struct {
		ID            string `json:"id"`
		UpstreamGroup string `json:"upstream_group"`
	}
	out = must("", "keys", "create", "--name", "grouped", "--upstream-group", "team-a", "--json")
	if err := json.Unmarshal([]byte(out), &k); err != nil || k.UpstreamGroup != "team-a" {
		t.Fatalf("key create: %v %s", err, out)
	}
	if out := must("", "keys", "update", k.ID, "--upstream-group", ""); !strings.Contains(out, "default") {
		t.Fatalf("key update: %s", out)
	}
	if out := must("", "usage", "--group-by", "upstream"); !strings.Contains(out, "UPSTREAM") {
		t.Fatalf("usage by upstream: %s", out)
	}

	// Mistakes are named before anything is sent.
	for _, args := range [][]string{
		{"upstreams", "create", "--upstream-url", up.URL, "--api-key-env", "ORG_A_KEY"},
		{"upstreams", "create", "--name", "x", "--api-key-env", "ORG_A_KEY"},
		{"upstreams", "create", "--name", "x", "--upstream-url", up.URL},
		{"upstreams", "create", "--name", "x", "--upstream-url", up.URL, "--api-key-env", "NOT_SET"},
		{"upstreams", "create", "--name", "x", "--upstream-url", up.URL, "--api-key", "k", "--api-key-env", "ORG_A_KEY"},
		{"upstreams", "create", "--name", "x", "--upstream-url", up.URL, "--api-key-stdin"},
		{"upstreams", "update", "some-id"},
		{"upstreams", "update", "some-id", "--max-concurrency", "many"},
		{"upstreams", "get"},
		{"upstreams", "frobnicate"},
	} {
		if _, err := cli("", args...); err == nil {
			t.Errorf("relay %s: no error", strings.Join(args, " "))
		} else if _, ok := err.(usageError); !ok {
			t.Errorf("relay %s: %v, want a usage error", strings.Join(args, " "), err)
		}
	}
	// The API's refusals come back as errors.
	if _, err := cli("", "upstreams", "create", "--name", "y", "--upstream-url", "ftp://x", "--api-key-env", "ORG_A_KEY"); err == nil ||
		!strings.Contains(err.Error(), "400") {
		t.Fatalf("bad url: %v", err)
	}
	if out := must("", "upstreams", "--help"); !strings.Contains(out, "--api-key-env") {
		t.Fatalf("help: %s", out)
	}
	for _, s := range []string{keyA, keyB, "CLI-SECRET"} {
		for _, o := range outputs {
			if strings.Contains(o, s) {
				t.Errorf("the CLI printed a secret: %s", o)
			}
		}
		if strings.Contains(logs.String(), s) {
			t.Errorf("the log shows a secret:\n%s", logs.String())
		}
	}
}
