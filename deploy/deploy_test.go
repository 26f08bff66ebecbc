// Package deploy_test checks the deploy assets that Docker cannot run here:
// the dashboard and alert rules reference only metrics the relay exports,
// the compose file is wired as documented, .env.example lists every
// variable, the Dockerfile builds the way deploy/check.sh does, and
// deploy.sh prepares .env and waits for /ready.
package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/config"
)

// synthetic are series Prometheus itself creates, not the relay.
var synthetic = map[string]bool{"up": true, "ALERTS": true, "ALERTS_FOR_STATE": true}

var (
	reVariable = regexp.MustCompile(`\$\{[^}]*\}|\$\w+`)
	reString   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	reMatchers = regexp.MustCompile(`\{[^}]*\}`)
	reRange    = regexp.MustCompile(`\[[^\]]*\]`)
	reGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	reToken    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*|[0-9][0-9.eE+\-]*[smhdwy]*`)
	keywords   = map[string]bool{
		"and": true, "or": true, "unless": true, "by": true, "without": true, "on": true,
		"ignoring": true, "group_left": true, "group_right": true, "bool": true, "offset": true,
		"inf": true, "nan": true, "Inf": true, "NaN": true, "atan2": true,
	}
)

// MetricNames returns the metric names a PromQL expression (or a Grafana
// label_values(...) query) selects. It strips Grafana variables, strings,
// label matchers, ranges and grouping clauses, then keeps identifiers that
// are not followed by "(" (functions, aggregations) and are not keywords.
func MetricNames(expr string) []string {
	s := reVariable.ReplaceAllString(expr, "")
	s = reString.ReplaceAllString(s, `""`)
	s = reMatchers.ReplaceAllString(s, " ")
	s = reRange.ReplaceAllString(s, " ")
	s = reGrouping.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range reToken.FindAllStringIndex(s, -1) {
		tok := s[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || keywords[tok] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		if !slices.Contains(out, tok) {
			out = append(out, tok)
		}
	}
	return out
}

func TestMetricNamesExtraction(t *testing.T) {
	cases := map[string][]string{
		`histogram_quantile(0.95, sum by (le) (rate(proxy_duration_seconds_bucket{stream=~"$stream"}[$__rate_interval])))`: {"proxy_duration_seconds_bucket"},
		`sum by (upstream) (rate(a_total{outcome=~"x|y"}[5m])) / sum by (upstream) (rate(b_total[5m])) > 0.1 and c > 1e-9`: {"a_total", "b_total", "c"},
		`relay_usage_queue_depth > 1000 and deriv(relay_usage_queue_depth[5m]) > 0`:                                        {"relay_usage_queue_depth"},
		`topk(20, max by (key_id, key_name) (token_quota_usage_ratio))`:                                                    {"token_quota_usage_ratio"},
		`label_values(tokens_used_total, model)`:                                                                           {"tokens_used_total", "model"},
		`sum(relay_ready) or vector(0)`:                                                                                    {"relay_ready"},
		`up{job="relay"} == 0`:                                                                                             {"up"},
		`x offset 5m + on (a) group_left (b) y`:                                                                            {"x", "y"},
		`label_replace(m, "dst", "$1", "src", "(.*)")`:                                                                     {"m"},
	}
	for expr, want := range cases {
		if got := MetricNames(expr); !slices.Equal(got, want) {
			t.Errorf("MetricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// exported is every metric family name the relay serves, including the Go
// runtime and process families, taken from a real registry.
func exported(tb testing.TB) map[string]bool {
	tb.Helper()
	m := metrics.New(metrics.Options{})
	names := map[string]bool{}
	for _, n := range m.MetricNames() {
		names[n] = true
	}
	fams, err := m.Registry().Gather()
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

// checkExported fails for each name that is neither exported (allowing the
// _bucket/_sum/_count series of a histogram) nor one of allowExtra.
func checkExported(t *testing.T, where, expr string, names map[string]bool, allowExtra map[string]bool) []string {
	t.Helper()
	refs := MetricNames(expr)
	if len(refs) == 0 {
		t.Errorf("%s: no metric found in %q", where, expr)
	}
	for _, r := range refs {
		base := r
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(r, suf); ok && names[b] {
				base = b
			}
		}
		if !names[base] && !synthetic[r] && !allowExtra[r] {
			t.Errorf("%s: %q references %s, which the relay does not export", where, expr, r)
		}
	}
	return refs
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/dashboards/relay.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("relay.json: %v", err)
	}
	return d
}

func flatten(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, flatten(p.Panels)...)
	}
	return out
}

func TestDashboardReferencesOnlyExportedMetrics(t *testing.T) {
	d := loadDashboard(t)
	names := exported(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs a uid and a title")
	}
	used := map[string]bool{}
	ids := map[int]bool{}
	var boxes []panel
	for _, p := range flatten(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: bad gridPos %+v", p.Title, p.GridPos)
		}
		for _, q := range boxes {
			if overlap(p, q) {
				t.Errorf("panels %q and %q overlap", p.Title, q.Title)
			}
		}
		boxes = append(boxes, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource must be the ${datasource} variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no queries", p.Title)
		}
		for _, tg := range p.Targets {
			for _, r := range checkExported(t, "panel "+p.Title, tg.Expr, names, nil) {
				used[r] = true
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// label_values(metric, label): the label is not a metric.
		checkExported(t, "variable "+v.Name, v.Definition, names, map[string]bool{"model": true})
	}
	// The panels the operations issue asks for.
	for _, want := range []string{
		"relay_requests_total", "proxy_duration_seconds_bucket", "proxy_time_to_first_byte_seconds_bucket",
		"tokens_used_total", "token_quota_usage_ratio", "relay_rejections_total", "relay_upstream_retries_total",
		"relay_auth_failures_total", "relay_usage_queue_depth",
	} {
		if !used[want] {
			t.Errorf("dashboard has no panel on %s", want)
		}
	}
}

func overlap(a, b panel) bool {
	ag, bg := a.GridPos, b.GridPos
	return ag.X < bg.X+bg.W && bg.X < ag.X+ag.W && ag.Y < bg.Y+bg.H && bg.Y < ag.Y+ag.H
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func TestAlertRulesReferenceOnlyExportedMetrics(t *testing.T) {
	var rf ruleFile
	mustYAML(t, "prometheus/alerts.yml", &rf)
	names := exported(t)
	refs := map[string][]string{} // metric -> alerts
	var exprs []string
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
				continue
			}
			if s := r.Labels["severity"]; s != "info" && s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want info, warning or critical", r.Alert, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs summary and description annotations", r.Alert)
			}
			for _, m := range checkExported(t, "alert "+r.Alert, r.Expr, names, nil) {
				refs[m] = append(refs[m], r.Alert)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	// What the alerting issue asks for.
	all := strings.Join(exprs, "\n")
	for _, want := range []string{"token_quota_usage_ratio > 0.8", "token_quota_usage_ratio > 0.95"} {
		if !strings.Contains(all, want) {
			t.Errorf("no rule with %q", want)
		}
	}
	for _, m := range []string{
		"relay_auth_failures_total", "relay_upstream_attempts_total", "relay_upstream_retries_total",
		"relay_usage_queue_depth", "relay_usage_write_errors_total", "relay_ready", "up",
	} {
		if len(refs[m]) == 0 {
			t.Errorf("no alert rule uses %s", m)
		}
	}
}

func TestPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (apt-get install prometheus); deploy/check.sh runs it when present")
	}
	for _, args := range [][]string{
		{"check", "rules", "prometheus/alerts.yml"},
		{"test", "rules", "prometheus/alerts_test.yml"},
	} {
		out, err := exec.Command("promtool", args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type compose struct {
	Services map[string]struct {
		Image       string         `yaml:"image"`
		Build       map[string]any `yaml:"build"`
		Command     any            `yaml:"command"`
		Environment map[string]string
		Volumes     []string                     `yaml:"volumes"`
		Ports       []string                     `yaml:"ports"`
		DependsOn   map[string]map[string]string `yaml:"depends_on"`
		Healthcheck struct {
			Test []string `yaml:"test"`
		} `yaml:"healthcheck"`
	} `yaml:"services"`
}

func TestComposeFile(t *testing.T) {
	var c compose
	mustYAML(t, "docker-compose.yml", &c)
	for _, name := range []string{"relay", "postgres", "redis", "prometheus", "grafana"} {
		s, ok := c.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		if len(s.Healthcheck.Test) == 0 {
			t.Errorf("service %s has no health check", name)
		}
	}
	relay := c.Services["relay"]
	if relay.Build["dockerfile"] != "deploy/Dockerfile" || relay.Build["context"] != ".." {
		t.Errorf("relay build = %v, want context .. and deploy/Dockerfile", relay.Build)
	}
	if got := strings.Join(relay.Healthcheck.Test, " "); !strings.Contains(got, "relay health") {
		t.Errorf("relay health check %q should use `relay health` (distroless has no curl)", got)
	}
	for _, dep := range []string{"postgres", "redis"} {
		if relay.DependsOn[dep]["condition"] != "service_healthy" {
			t.Errorf("relay must wait for a healthy %s", dep)
		}
	}
	if !strings.HasPrefix(relay.Environment["DATABASE_URL"], "postgres://") || !strings.Contains(relay.Environment["DATABASE_URL"], "@postgres:5432/") {
		t.Errorf("relay DATABASE_URL %q should point at the postgres service", relay.Environment["DATABASE_URL"])
	}
	if !strings.Contains(relay.Environment["REDIS_URL"], "@redis:6379") {
		t.Errorf("relay REDIS_URL %q should point at the redis service", relay.Environment["REDIS_URL"])
	}
	for _, v := range []string{"UPSTREAM_API_KEY", "ADMIN_PASSWORD", "SECRET_KEY", "METRICS_TOKEN"} {
		if !strings.Contains(relay.Environment[v], "${"+v) {
			t.Errorf("relay %s should come from .env, got %q", v, relay.Environment[v])
		}
	}
	// The seed's host ports.
	if !slices.Contains(c.Services["postgres"].Ports, "127.0.0.1:15432:5432") {
		t.Errorf("postgres ports %v, want host port 15432", c.Services["postgres"].Ports)
	}
	if !slices.Contains(c.Services["redis"].Ports, "127.0.0.1:16379:6379") {
		t.Errorf("redis ports %v, want host port 16379", c.Services["redis"].Ports)
	}
	// Every bind mount exists, and Prometheus gets both its files.
	mounts := map[string]bool{}
	for name, s := range c.Services {
		for _, v := range s.Volumes {
			src, dst, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("service %s mounts %s: %v", name, src, err)
				}
				mounts[name+" "+strings.TrimSuffix(dst, ":ro")] = true
			}
		}
	}
	for _, want := range []string{
		"prometheus /etc/prometheus/prometheus.yml", "prometheus /etc/prometheus/alerts.yml",
		"grafana /etc/grafana/provisioning", "grafana /var/lib/grafana/dashboards",
	} {
		if !mounts[want] {
			t.Errorf("missing bind mount: %s", want)
		}
	}

	// The Grafana provider reads the directory compose mounts, and the
	// datasource uid is the one the dashboard's variable selects by type.
	var prov struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	mustYAML(t, "grafana/provisioning/dashboards/relay.yml", &prov)
	if len(prov.Providers) != 1 || prov.Providers[0].Options.Path != "/var/lib/grafana/dashboards" {
		t.Errorf("dashboard provider %+v should read /var/lib/grafana/dashboards", prov)
	}
	var ds struct {
		Datasources []struct{ Type, URL string } `yaml:"datasources"`
	}
	mustYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("datasources %+v, want the compose prometheus", ds)
	}

	var prom struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	mustYAML(t, "prometheus/prometheus.yml", &prom)
	if !slices.Contains(prom.RuleFiles, "alerts.yml") {
		t.Errorf("prometheus.yml rule_files %v should load alerts.yml", prom.RuleFiles)
	}
	found := false
	for _, sc := range prom.ScrapeConfigs {
		if sc.JobName == "relay" && sc.MetricsPath == "/metrics" && len(sc.StaticConfigs) == 1 && slices.Contains(sc.StaticConfigs[0].Targets, "relay:8000") {
			found = true
		}
	}
	if !found {
		t.Error(`prometheus.yml should scrape relay:8000/metrics as job "relay" (the alerts use job="relay")`)
	}
}

var reComposeVar = regexp.MustCompile(`\$\{([A-Z0-9_]+)`)

func TestEnvExampleListsEveryVariable(t *testing.T) {
	b, err := os.ReadFile("../.env.example")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			if listed[k] {
				t.Errorf(".env.example lists %s twice", k)
			}
			listed[k] = true
		}
	}
	want := append(config.EnvNames(), "POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
	cb, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range reComposeVar.FindAllStringSubmatch(string(cb), -1) {
		want = append(want, m[1])
	}
	for _, v := range want {
		if !listed[v] {
			t.Errorf(".env.example does not list %s", v)
		}
	}
}

func TestDockerfileMatchesCheckScript(t *testing.T) {
	df := mustRead(t, "Dockerfile")
	for _, want := range []string{
		"FROM golang:${GO_VERSION} AS build", "ARG GO_VERSION=1.26", "CGO_ENABLED=0",
		`go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/relay ./cmd/relay`,
		"FROM gcr.io/distroless/static-debian12:nonroot", "USER nonroot", "EXPOSE 8000",
		`CMD ["serve"]`, `"health", "--url", "http://127.0.0.1:8000"`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	cs := mustRead(t, "check.sh")
	if !strings.Contains(cs, `CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=check"`) || !strings.Contains(cs, "./cmd/relay") {
		t.Error("check.sh must build ./cmd/relay with the Dockerfile's flags")
	}
	main := mustRead(t, "../cmd/relay/main.go")
	if !strings.Contains(main, "var version") {
		t.Error("cmd/relay has no `var version` for -X main.version")
	}
}

func mustRead(tb testing.TB, path string) string {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

func mustYAML(tb testing.TB, path string, v any) {
	tb.Helper()
	if err := yaml.Unmarshal([]byte(mustRead(tb, path)), v); err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
}

// NewStubBin writes fake docker and curl commands into a directory, for
// running deploy.sh without Docker. docker logs its arguments to
// docker.log; curl succeeds unless CURL_FAIL is set.
func NewStubBin(tb testing.TB) string {
	tb.Helper()
	dir := tb.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	write("docker", `echo "$*" >> "$STUB_LOG"; exit 0`+"\n")
	write("curl", `echo "curl $*" >> "$STUB_LOG"; [ -z "$CURL_FAIL" ]`+"\n")
	return dir
}

// NewDeployRoot lays out a repository root with deploy.sh and .env.example.
func NewDeployRoot(tb testing.TB) string {
	tb.Helper()
	root := tb.TempDir()
	if err := os.Mkdir(filepath.Join(root, "deploy"), 0o755); err != nil {
		tb.Fatal(err)
	}
	for src, dst := range map[string]string{"deploy.sh": "deploy/deploy.sh", "../.env.example": ".env.example"} {
		b, err := os.ReadFile(src)
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, dst), b, 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	return root
}

func runDeploy(t *testing.T, root string, env ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	bin := NewStubBin(t)
	cmd := exec.Command("bash", filepath.Join(root, "deploy/deploy.sh"))
	cmd.Env = append([]string{
		"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
		"STUB_LOG=" + filepath.Join(root, "stub.log"),
		"HOME=" + root,
	}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var reHex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

func TestDeployScriptPreparesEnvAndWaitsForReady(t *testing.T) {
	root := NewDeployRoot(t)
	out, err := runDeploy(t, root)
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, out)
	}
	env := readEnv(t, filepath.Join(root, ".env"))
	for _, k := range []string{"SECRET_KEY", "POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "ADMIN_PASSWORD"} {
		if !reHex64.MatchString(env[k]) {
			t.Errorf("%s = %q, want 64 hex characters", k, env[k])
		}
	}
	if env["SECRET_KEY"] == env["POSTGRES_PASSWORD"] {
		t.Error("secrets are not independent")
	}
	if fi, err := os.Stat(filepath.Join(root, ".env")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf(".env mode = %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	for _, k := range []string{"SECRET_KEY", "POSTGRES_PASSWORD", "ADMIN_PASSWORD"} {
		if strings.Contains(out, env[k]) {
			t.Errorf("deploy.sh printed %s", k)
		}
	}
	log := mustRead(t, filepath.Join(root, "stub.log"))
	wantUp := "compose --env-file " + filepath.Join(root, ".env") + " -f " + filepath.Join(root, "deploy/docker-compose.yml") + " up -d --build"
	if !strings.Contains(log, wantUp) {
		t.Errorf("docker was not called with %q:\n%s", wantUp, log)
	}
	if !strings.Contains(log, "http://localhost:8000/ready") {
		t.Errorf("deploy.sh did not poll /ready:\n%s", log)
	}

	// A second run keeps every existing value.
	if out, err := runDeploy(t, root); err != nil {
		t.Fatalf("second deploy.sh: %v\n%s", err, out)
	}
	again := readEnv(t, filepath.Join(root, ".env"))
	for _, k := range []string{"SECRET_KEY", "POSTGRES_PASSWORD", "ADMIN_PASSWORD"} {
		if again[k] != env[k] {
			t.Errorf("%s changed on the second run", k)
		}
	}
}

func TestDeployScriptKeepsValuesAndHonoursPasswordHash(t *testing.T) {
	root := NewDeployRoot(t)
	existing := "SECRET_KEY=mine\nADMIN_PASSWORD_HASH='$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA'\nRELAY_PORT=8100\n"
	if err := os.WriteFile(filepath.Join(root, ".env"), []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runDeploy(t, root)
	if err != nil {
		t.Fatalf("deploy.sh: %v\n%s", err, out)
	}
	env := readEnv(t, filepath.Join(root, ".env"))
	if env["SECRET_KEY"] != "mine" {
		t.Errorf("SECRET_KEY overwritten: %q", env["SECRET_KEY"])
	}
	if env["ADMIN_PASSWORD_HASH"] != "'$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA'" {
		t.Errorf("ADMIN_PASSWORD_HASH changed: %q", env["ADMIN_PASSWORD_HASH"])
	}
	if _, ok := env["ADMIN_PASSWORD"]; ok {
		t.Error("ADMIN_PASSWORD generated although ADMIN_PASSWORD_HASH is set")
	}
	if !reHex64.MatchString(env["POSTGRES_PASSWORD"]) {
		t.Errorf("POSTGRES_PASSWORD = %q, want generated", env["POSTGRES_PASSWORD"])
	}
	if log := mustRead(t, filepath.Join(root, "stub.log")); !strings.Contains(log, "http://localhost:8100/ready") {
		t.Errorf("deploy.sh ignored RELAY_PORT:\n%s", log)
	}
}

func TestDeployScriptTimesOut(t *testing.T) {
	root := NewDeployRoot(t)
	out, err := runDeploy(t, root, "CURL_FAIL=1", "READY_TIMEOUT=1")
	if err == nil {
		t.Fatalf("deploy.sh succeeded although /ready never answered:\n%s", out)
	}
	if !strings.Contains(out, "did not become ready within 1s") {
		t.Errorf("unexpected output:\n%s", out)
	}
	if log := mustRead(t, filepath.Join(root, "stub.log")); !strings.Contains(log, "logs --tail 50 relay") {
		t.Errorf("deploy.sh did not show the relay's logs on timeout:\n%s", log)
	}
}

func readEnv(tb testing.TB, path string) map[string]string {
	tb.Helper()
	env := map[string]string{}
	for _, line := range strings.Split(mustRead(tb, path), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	return env
}

func TestDockerComposeConfig(t *testing.T) {
	if err := exec.Command("docker", "compose", "version").Run(); err != nil {
		t.Skip("the docker compose plugin is not installed; deploy/check.sh runs `docker compose config` when it is")
	}
	env := mustRead(t, "../.env.example")
	for _, k := range []string{"POSTGRES_PASSWORD", "REDIS_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "SECRET_KEY"} {
		env = strings.Replace(env, "\n"+k+"=\n", "\n"+k+"=check\n", 1)
	}
	envFile := filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(envFile, []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("docker", "compose", "--env-file", envFile, "-f", "docker-compose.yml", "config", "--quiet").CombinedOutput()
	if err != nil {
		t.Fatalf("docker compose config: %v\n%s", err, out)
	}
	// Without the generated secrets, compose must refuse to start.
	out, err = exec.Command("docker", "compose", "--env-file", "../.env.example", "-f", "docker-compose.yml", "config", "--quiet").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "run deploy.sh") {
		t.Errorf("compose accepted empty secrets (err %v):\n%s", err, out)
	}
}
