package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

func TestParseBudgetFlags(t *testing.T) {
	t.Parallel()
	got, err := parseBudgetFlags([]string{"5h=10", "month=$200.50", " day = 5@Europe/Paris", "total=0.000000001"})
	if err != nil {
		t.Fatal(err)
	}
	paris := "Europe/Paris"
	want := []client.BudgetInput{
		{Window: "5h", LimitUsd: "10"}, {Window: "month", LimitUsd: "200.50"},
		{Window: "day", LimitUsd: "5", TimeZone: &paris}, {Window: "total", LimitUsd: "0.000000001"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	// The amount goes on the wire as the decimal text given, not a float.
	b, _ := json.Marshal(got[3])
	if !bytes.Contains(b, []byte(`"limit_usd":0.000000001`)) {
		t.Errorf("encoded %s", b)
	}
	if none, err := parseBudgetFlags([]string{"none"}); err != nil || none == nil || len(none) != 0 {
		t.Errorf("none: %v %v", none, err)
	}
	for _, bad := range [][]string{{"5h"}, {"=10"}, {"day="}, {"day=1e2"}, {"day=-1"}, {"day=ten"}, {"day=5@"},
		{"day=0.0000000001"}, {"none", "day=5"}} {
		if _, err := parseBudgetFlags(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestUpdateBodyHasOnlyTheFlagsGiven(t *testing.T) {
	t.Parallel()
	given := map[string]bool{"models": true, "budget": true, "token-limit": true, "url": true}
	body, err := updateBody(given, "", "", "", "none", "", "", "", "", []client.BudgetInput{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(body)
	if string(b) != `{"allowed_models":[],"budgets":[],"token_limit":null}` {
		t.Errorf("body %s", b)
	}
	if _, err := updateBody(map[string]bool{"url": true, "json": true}, "", "", "", "", "", "", "", "", nil); err == nil {
		t.Error("an update with nothing to change was accepted")
	}
	for _, tc := range []struct{ flag, limit, expires string }{{"token-limit", "-1", ""}, {"token-limit", "lots", ""}, {"expires", "", "soon"}} {
		if _, err := updateBody(map[string]bool{tc.flag: true}, "", "", "", tc.limit, tc.expires, "", "", "", nil); err == nil {
			t.Errorf("--%s %q%q accepted", tc.flag, tc.limit, tc.expires)
		}
	}
}

func TestUSDText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"10.000000": "10", "0.100000": "0.1", "0.000000001": "0.000000001", "-0.500000": "-0.5", "0.000000": "0"} {
		if got := usdText(json.Number(in)); got != want {
			t.Errorf("usdText(%s) = %s, want %s", in, got, want)
		}
	}
	for in, want := range map[string]string{"0.500000": "+$0.5", "-1.250000": "-$1.25", "0.000000": "$0"} {
		if got := signedUSD(json.Number(in)); got != want {
			t.Errorf("signedUSD(%s) = %s, want %s", in, got, want)
		}
	}
	if d, err := parseDay("2026-11-01"); err != nil || !d.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parseDay: %v %v", d, err)
	}
}

// TestCLIBudgetsModelsPricingAndReprice drives the money commands of the
// admin CLI against a real relay.
func TestCLIBudgetsModelsPricingAndReprice(t *testing.T) {
	t.Parallel()
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}))
	e := func() (env, *bytes.Buffer, *bytes.Buffer) {
		var out, errb bytes.Buffer
		return env{environ: []string{"RELAY_URL=" + r.URL, "RELAY_ADMIN_PASSWORD=" + testAdminPassword},
			stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, &out, &errb
	}
	cli := func(args ...string) string {
		t.Helper()
		env, out, errb := e()
		if err := run(context.Background(), args, env); err != nil {
			t.Fatalf("relay %s: %v\n%s", strings.Join(args, " "), err, errb)
		}
		return out.String()
	}
	cliErr := func(args ...string) error {
		t.Helper()
		env, _, _ := e()
		return run(context.Background(), args, env)
	}

	var created client.CreatedAPIKey
	if err := json.Unmarshal([]byte(cli("keys", "create", "--name", "budgeted", "--budget", "5h=10", "--budget", "day=5@Europe/Paris",
		"--budget", "total=0.1", "--models", "claude-sonnet-*, claude-haiku-4-5", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if got := budgetsText(created.Budgets); got != "5h=10 day=5@Europe/Paris total=0.1" {
		t.Errorf("created budgets %s", got)
	}
	if !reflect.DeepEqual(created.AllowedModels, []string{"claude-sonnet-*", "claude-haiku-4-5"}) {
		t.Errorf("created models %q", created.AllowedModels)
	}
	id := created.Id.String()
	if out := cli("keys", "list"); !strings.Contains(out, "5h=10 day=5@Europe/Paris total=0.1") || !strings.Contains(out, "claude-sonnet-*,claude-haiku-4-5") {
		t.Errorf("keys list:\n%s", out)
	}
	if out := cli("keys", "update", id, "--budget", "month=200", "--models", ""); !strings.Contains(out, "month=200") || !strings.Contains(out, "any") {
		t.Errorf("keys update:\n%s", out)
	}
	if out := cli("keys", "get", id); !strings.Contains(out, "month=200") || strings.Contains(out, "5h=10") {
		t.Errorf("keys get after update:\n%s", out)
	}
	if out := cli("keys", "update", id, "--budget", "none", "--name", "unbudgeted"); !strings.Contains(out, "unbudgeted") || !strings.Contains(out, "none") {
		t.Errorf("keys update --budget none:\n%s", out)
	}
	for _, args := range [][]string{
		{"keys", "create", "--name", "x", "--budget", "day=1e2"},
		{"keys", "create", "--name", "x", "--budget", "5h"},
		{"keys", "update", id},
		{"usage", "reprice", "--from", "2026-11-01"},
		{"usage", "reprice", "--from", "November", "--to", "2026-12-01"},
	} {
		if err := cliErr(args...); err == nil {
			t.Errorf("relay %s succeeded", strings.Join(args, " "))
		}
	}
	// The relay's own checks come back as its message.
	if err := cliErr("keys", "create", "--name", "x", "--budget", "5h=1@Europe/Paris"); err == nil || !strings.Contains(err.Error(), "time_zone") {
		t.Errorf("a zone on 5h: %v", err)
	}

	// One request, priced when recorded: repricing with the same table
	// changes nothing.
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "spender"})
	if resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(false)); resp.StatusCode != 200 {
		t.Fatalf("message: %d %s", resp.StatusCode, b)
	}
	r.waitUsage(t, key, 1)
	day := time.Now().UTC()
	from, to := day.AddDate(0, 0, -1).Format(time.DateOnly), day.AddDate(0, 0, 1).Format(time.DateOnly)
	var rep client.RepriceReport
	if err := json.Unmarshal([]byte(cli("usage", "reprice", "--from", from, "--to", to, "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Examined < 1 || rep.Changed != 0 || rep.Apply {
		t.Errorf("reprice: %+v", rep)
	}
	if out := cli("usage", "reprice", "--from", from, "--to", to); !strings.Contains(out, "dry run") || !strings.Contains(out, "records examined") {
		t.Errorf("reprice output:\n%s", out)
	}
	if out := cli("usage", "reprice", "--from", from, "--to", to, "--apply"); !strings.Contains(out, "applied: 0 costs rewritten") {
		t.Errorf("reprice --apply output:\n%s", out)
	}
	if err := cliErr("usage", "reprice", "--from", to, "--to", from); err == nil || !strings.Contains(err.Error(), "400") {
		t.Errorf("reversed range: %v", err)
	}
	if out := cli("usage", "--group-by", "model"); !strings.Contains(out, "COST_USD") {
		t.Errorf("usage:\n%s", out)
	}

	// Pricing, through pricingCmd (main dispatches `relay pricing` to it).
	pricingCLI := func(args ...string) (string, error) {
		env, out, errb := e()
		err := pricingCmd(context.Background(), args, env)
		if err != nil {
			err = &cliFailure{err: err, stderr: errb.String()}
		}
		return out.String(), err
	}
	seed, _ := pricing.Seed()
	out, err := pricingCLI("show")
	if err != nil || !strings.Contains(out, seed.Version) || !strings.Contains(out, "claude-sonnet-4-5-20250929") || !strings.Contains(out, "refused") {
		t.Fatalf("pricing show: %v\n%s", err, out)
	}
	var m map[string]any
	if err := json.Unmarshal(pricing.SeedJSON(), &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = "cli-1"
	b, _ := json.Marshal(m)
	file := filepath.Join(t.TempDir(), "table.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := pricingCLI("set", "--file", file, "--comment", "from the CLI"); err != nil || !strings.Contains(out, "cli-1") {
		t.Fatalf("pricing set: %v\n%s", err, out)
	}
	if _, err := pricingCLI("set", "--file", file); err == nil || !strings.Contains(err.Error(), "already stored") {
		t.Errorf("pricing set twice: %v", err)
	}
	if out, err := pricingCLI("versions"); err != nil || !strings.Contains(out, "cli-1") || !strings.Contains(out, "from the CLI") || !strings.Contains(out, "seed") {
		t.Errorf("pricing versions: %v\n%s", err, out)
	}
	if out, err := pricingCLI("show", "--version", seed.Version); err != nil || !strings.Contains(out, "price table "+seed.Version) {
		t.Errorf("pricing show --version: %v\n%s", err, out)
	}
	if out, err := pricingCLI("show", "--json"); err != nil || !strings.Contains(out, `"version": "cli-1"`) {
		t.Errorf("pricing show --json: %v\n%s", err, out)
	}
	if _, err := pricingCLI("set"); err == nil {
		t.Error("pricing set without --file succeeded")
	}
}

type cliFailure struct {
	err    error
	stderr string
}

func (c *cliFailure) Error() string { return c.err.Error() + " " + c.stderr }
