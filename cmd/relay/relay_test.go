package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/storage"
	"github.com/relaystation/relay/config"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
	"github.com/relaystation/relay/internal/testenv"
)

const (
	testUpstreamKey   = "sk-ant-api03-UPSTREAM-SECRET-never-leak-0123456789"
	testAdminPassword = "admin-pass-SECRET-never-leak-42"
	testSecretKey     = "jwt-signing-SECRET-never-leak-abcdef0123456789"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type testRelay struct {
	URL     string
	Logs    *syncBuffer
	Env     []string
	Fake    *fakeanthropic.Server
	cfg     config.Config
	cancel  context.CancelFunc
	done    chan error
	stopped bool
}

// startRelay builds and runs a real relay (the same wiring as `relay serve`)
// against a fake Anthropic upstream. extra env entries override defaults.
func startRelay(t *testing.T, fake *fakeanthropic.Server, extra ...string) *testRelay {
	t.Helper()
	return startRelayWith(t, fake, nil, extra...)
}

// startRelayWith is startRelay with a hook to adjust the loaded configuration.
func startRelayWith(t *testing.T, fake *fakeanthropic.Server, mutate func(*config.Config), extra ...string) *testRelay {
	t.Helper()
	up := httptest.NewServer(fake)
	t.Cleanup(up.Close)
	envList := []string{
		"DATA_DIR=" + t.TempDir(),
		"UPSTREAM_URL=" + up.URL + "/v1",
		"UPSTREAM_API_KEY=" + testUpstreamKey,
		"ADMIN_PASSWORD=" + testAdminPassword,
		"SECRET_KEY=" + testSecretKey,
		"LOG_LEVEL=debug",
	}
	envList = append(envList, extra...)
	cfg, _, err := config.Load(config.Source{Environ: envList, File: "/dev/null"})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Usage.FlushInterval = 20 * time.Millisecond
	cfg.Server.ShutdownGrace = 20 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := env{environ: envList, stdin: strings.NewReader(""), stdout: logs, stderr: logs}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := build(ctx, cfg, e, log, logs)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{URL: "http://" + ln.Addr().String(), Logs: logs, Env: envList, Fake: fake, cfg: cfg, cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := a.run(ctx, ln)
		a.close()
		r.done <- err
	}()
	t.Cleanup(func() { r.Stop(t) })
	return r
}

// Stop shuts the relay down as SIGTERM would and waits for it.
func (r *testRelay) Stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("relay shutdown: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("relay did not shut down")
	}
}

func (r *testRelay) do(t *testing.T, method, path, auth string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.URL+path, rd)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("anthropic-version", "2023-06-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (r *testRelay) adminToken(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/admin/login", nil)
	req.SetBasicAuth("admin", testAdminPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return out.AccessToken
}

func (r *testRelay) createKey(t *testing.T, token string, body map[string]any) (id, key string) {
	t.Helper()
	resp, b := r.do(t, http.MethodPost, "/admin/api-keys", "Bearer "+token, body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create key: %d %s", resp.StatusCode, b)
	}
	var out struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(b, &out)
	return out.ID, out.APIKey
}

func messagesBody(stream bool) map[string]any {
	return map[string]any{
		"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": stream,
		"messages": []map[string]any{{"role": "user", "content": "Hello there"}},
	}
}

// keyUsage reads the key holder's totals until they reach want requests.
func (r *testRelay) waitUsage(t *testing.T, key string, want int64) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := r.do(t, http.MethodGet, "/api/usage", "Bearer "+key, nil)
		var u map[string]any
		_ = json.Unmarshal(b, &u)
		if resp.StatusCode == 200 && int64(u["requests"].(float64)) >= want {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage did not reach %d requests: %d %s", want, resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRelayEndToEndAndCLI(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{Deltas: 5})
	r := startRelay(t, fake)

	// The admin CLI against the live relay, through the generated client.
	cli := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		e := env{environ: []string{"RELAY_URL=" + r.URL, "RELAY_ADMIN_PASSWORD=" + testAdminPassword}, stdin: strings.NewReader(""), stdout: &out, stderr: &errb}
		if err := run(context.Background(), args, e); err != nil {
			t.Fatalf("relay %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return out.String()
	}
	var created struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
		Name   string `json:"name"`
	}
	if err := json.Unmarshal([]byte(cli("keys", "create", "--name", "cli-key", "--token-limit", "100000", "--json")), &created); err != nil {
		t.Fatal(err)
	}
	if created.Name != "cli-key" || !strings.HasPrefix(created.APIKey, "sk-proxy-") {
		t.Fatalf("created: %+v", created)
	}
	if out := cli("keys", "list"); !strings.Contains(out, created.ID) || !strings.Contains(out, "cli-key") || strings.Contains(out, created.APIKey) {
		t.Fatalf("keys list output:\n%s", out)
	}

	// A real proxied call, non-streaming and streaming, both auth styles.
	resp, b := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+created.APIKey, messagesBody(false))
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"usage"`) {
		t.Fatalf("messages: %d %s", resp.StatusCode, b)
	}
	req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("x-api-key", created.APIKey)
	req.Header.Set("content-type", "application/json")
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := io.ReadAll(sresp.Body)
	sresp.Body.Close()
	if !strings.Contains(string(sb), "event: message_stop") {
		t.Fatalf("stream: %s", sb)
	}
	u := r.waitUsage(t, created.APIKey, 2)
	du := fakeanthropic.DefaultUsage
	wantInput := 2 * du.InputTokens
	if got := int64(u["input_tokens"].(float64)); got != wantInput {
		t.Fatalf("input_tokens = %d, want %d", got, wantInput)
	}

	if out := cli("keys", "disable", created.ID); !strings.Contains(out, "false") {
		t.Fatalf("disable output: %s", out)
	}
	if resp, _ := r.do(t, http.MethodPost, "/v1/messages", "Bearer "+created.APIKey, messagesBody(false)); resp.StatusCode != 401 {
		t.Fatalf("disabled key: %d", resp.StatusCode)
	}
	cli("keys", "enable", created.ID)
	rot := cli("keys", "rotate", created.ID, "--json")
	var rotated struct {
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal([]byte(rot), &rotated)
	if resp, _ := r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+created.APIKey, nil); resp.StatusCode != 401 {
		t.Fatalf("old key after rotate: %d", resp.StatusCode)
	}
	if resp, b := r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+rotated.APIKey, nil); resp.StatusCode != 200 {
		t.Fatalf("new key after rotate: %d %s", resp.StatusCode, b)
	}
	if out := cli("usage", "--group-by", "model"); !strings.Contains(out, "TOTAL") {
		t.Fatalf("usage output: %s", out)
	}
	cli("keys", "delete", created.ID)
	if resp, _ := r.do(t, http.MethodGet, "/api/usage/quota", "Bearer "+rotated.APIKey, nil); resp.StatusCode != 401 {
		t.Fatalf("deleted key: %d", resp.StatusCode)
	}

	// /metrics moved with the traffic.
	resp, b = r.do(t, http.MethodGet, "/metrics", "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `relay_requests_total{`) || !strings.Contains(string(b), "tokens_used_total") {
		t.Fatalf("metrics: %d\n%.2000s", resp.StatusCode, b)
	}
}

// TestSecretsNeverLogged drives traffic with every kind of secret in use and
// scans everything the relay wrote.
func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	fake := fakeanthropic.New(fakeanthropic.Options{Deltas: 3})
	fake.Script(fakeanthropic.Step{Status: 529}, fakeanthropic.Step{Status: 400})
	r := startRelay(t, fake)
	token := r.adminToken(t)
	_, key := r.createKey(t, token, map[string]any{"name": "scan"})

	req, _ := http.NewRequest(http.MethodPost, r.URL+"/admin/login", nil)
	req.SetBasicAuth("admin", "wrong-"+testAdminPassword)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
	}
	r.do(t, http.MethodGet, "/admin/api-keys", "Bearer "+token+"tampered", nil)
	r.do(t, http.MethodGet, "/admin/api-keys", "Bearer "+key, nil)
	for i := 0; i < 3; i++ {
		r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key, messagesBody(i%2 == 0))
	}
	r.do(t, http.MethodPost, "/v1/messages", "Bearer "+key+"x", messagesBody(false))
	r.waitUsage(t, key, 2)
	r.Stop(t)

	logs := r.Logs.String()
	if !strings.Contains(logs, `"msg"`) {
		t.Fatal("no log output captured")
	}
	for name, secret := range map[string]string{
		"upstream key": testUpstreamKey, "proxy key": key, "proxy key secret part": strings.TrimPrefix(key, domain.KeyPrefix),
		"admin password": testAdminPassword, "jwt": token, "secret key": testSecretKey,
	} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
	}
}

// TestShutdownDrainsStreams: SIGTERM during 20 open streams lets every one
// finish, and every usage record lands in the database.
func TestShutdownDrainsStreams(t *testing.T) {
	t.Parallel()
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			var extra []string
			if engine == "postgres" {
				extra = append(extra, "DATABASE_URL="+testenv.MustPostgresDB(t))
			}
			fake := fakeanthropic.New(fakeanthropic.Options{Deltas: 10, Spacing: 80 * time.Millisecond})
			r := startRelay(t, fake, extra...)
			token := r.adminToken(t)
			keyID, key := r.createKey(t, token, map[string]any{"name": "drain", "token_limit": 10_000_000})

			const n = 20
			var wg sync.WaitGroup
			started := make(chan struct{}, n)
			results := make(chan string, n)
			for i := 0; i < n; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					req, _ := http.NewRequest(http.MethodPost, r.URL+"/v1/messages", strings.NewReader(`{"model":"claude-sonnet-4-5","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}`))
					req.Header.Set("x-api-key", key)
					req.Header.Set("content-type", "application/json")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						results <- "error: " + err.Error()
						started <- struct{}{}
						return
					}
					defer resp.Body.Close()
					sc := bufio.NewScanner(resp.Body)
					first := true
					last := ""
					for sc.Scan() {
						if first && strings.HasPrefix(sc.Text(), "event:") {
							started <- struct{}{}
							first = false
						}
						if strings.HasPrefix(sc.Text(), "event:") {
							last = sc.Text()
						}
					}
					if first {
						started <- struct{}{}
					}
					results <- last
				}()
			}
			for i := 0; i < n; i++ {
				<-started
			}
			r.Stop(t) // as SIGTERM: waits for the streams, flushes usage
			wg.Wait()
			close(results)
			for res := range results {
				if res != "event: message_stop" {
					t.Fatalf("a stream did not complete: last line %q", res)
				}
			}
			// Every record is in the database, counted once.
			store, err := storage.Open(context.Background(), r.cfg.DatabaseURL, r.cfg.DataDir, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			id := mustUUID(t, keyID)
			logs, err := store.UsageLogs(context.Background(), domain.LogQuery{KeyID: &id, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(logs) != n {
				t.Fatalf("%d usage records, want %d", len(logs), n)
			}
			k, err := store.GetKey(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			per := fake.StreamUsage()
			want := int64(n) * (per.InputTokens + per.CacheCreationInputTokens + per.CacheReadInputTokens + per.OutputTokens)
			if k.TokensUsed != want {
				t.Fatalf("tokens_used = %d, want %d", k.TokensUsed, want)
			}
		})
	}
}

// TestReadyFlipsWhenPostgresIsDown cuts the connection to PostgreSQL.
func TestReadyFlipsWhenPostgresIsDown(t *testing.T) {
	t.Parallel()
	dbURL := testenv.MustPostgresDB(t)
	u, _ := url.Parse(dbURL)
	proxy := testenv.NewTCPProxy(t, u.Host)
	u.Host = proxy.Addr()
	r := startRelay(t, fakeanthropic.New(fakeanthropic.Options{}), "DATABASE_URL="+u.String())
	if resp, b := r.do(t, http.MethodGet, "/ready", "", nil); resp.StatusCode != 200 {
		t.Fatalf("ready before outage: %d %s", resp.StatusCode, b)
	}
	proxy.Cut()
	resp, b := r.do(t, http.MethodGet, "/ready", "", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(b), "database") {
		t.Fatalf("ready during outage: %d %s", resp.StatusCode, b)
	}
	if resp, _ := r.do(t, http.MethodGet, "/health", "", nil); resp.StatusCode != 200 {
		t.Fatalf("health during outage: %d", resp.StatusCode)
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, b := r.do(t, http.MethodGet, "/ready", "", nil)
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready after outage: %d %s", resp.StatusCode, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCommandLineErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args    []string
		environ []string
		want    string
	}{
		{[]string{"frobnicate"}, nil, "unknown command"},
		{[]string{"migrate", "sideways"}, nil, "migrate up|down|version"},
		{[]string{"serve"}, []string{"DATABASE_URL=mysql://x/y"}, "postgres://"},
		{[]string{"serve"}, []string{"LOG_FORMAT=xml"}, "log.format"},
		{[]string{"keys", "disable", "not-a-uuid"}, []string{"RELAY_ADMIN_PASSWORD=x"}, "UUID"},
		{[]string{"hash-password"}, nil, "no password"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out bytes.Buffer
			e := env{environ: append([]string{"DATA_DIR=" + t.TempDir()}, tc.environ...), stdin: strings.NewReader(""), stdout: &out, stderr: &out}
			err := run(context.Background(), tc.args, e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestHashPassword(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := env{stdin: strings.NewReader("correct horse battery\n"), stdout: &out, stderr: io.Discard}
	if err := run(context.Background(), []string{"hash-password"}, e); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "$argon2id$v=19$") {
		t.Fatalf("hash: %q", out.String())
	}
}

func TestUnreachableDatabaseFailsStart(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var out bytes.Buffer
	e := env{environ: []string{"DATA_DIR=" + t.TempDir(), "DATABASE_URL=postgres://postgres@" + addr + "/x?sslmode=disable&connect_timeout=2", "ADMIN_PASSWORD=x"}, stdout: &out, stderr: &out}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := run(ctx, []string{"serve"}, e)
	if err == nil || !strings.Contains(err.Error(), "database") {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "panic") {
		t.Fatal(err)
	}
}

func mustUUID(t *testing.T, s string) uuid.UUID {
	t.Helper()
	u, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestLogSinkFlushes(t *testing.T) {
	t.Parallel()
	var buf syncBuffer
	s := newLogSink(&buf, 10*time.Millisecond)
	_, _ = s.Write([]byte("one\n"))
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(buf.String(), "one") {
		if time.Now().After(deadline) {
			t.Fatal("a buffered line was never flushed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	big := strings.Repeat("x", 40<<10) + "\n"
	_, _ = s.Write([]byte("two\n"))
	_, _ = s.Write([]byte(big))
	s.Close()
	if got := buf.String(); !strings.HasSuffix(got, "one\ntwo\n"+big) {
		t.Fatalf("lines lost or reordered: %d bytes", len(got))
	}
}

func TestCLIHelpShowsNoSecrets(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	e := env{environ: []string{"RELAY_ADMIN_PASSWORD=pw-Secret-123", "RELAY_ADMIN_TOKEN=eyJhbGciOiJIUzI1NiJ9.secret"}, stdin: strings.NewReader(""), stdout: &out, stderr: &out}
	_ = run(context.Background(), []string{"keys", "list", "--bogus"}, e)
	_ = run(context.Background(), []string{"usage", "--help"}, e)
	if strings.Contains(out.String(), "pw-Secret-123") || strings.Contains(out.String(), "eyJhbGciOiJIUzI1NiJ9") {
		t.Fatalf("usage text shows a secret:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "-password") {
		t.Fatalf("no usage text printed:\n%s", out.String())
	}
	err := run(context.Background(), []string{"keys", "create", "--name", "x", "--token-limit", "-5"}, e)
	if err == nil || !strings.Contains(err.Error(), "token-limit") {
		t.Fatalf("negative --token-limit: %v", err)
	}
}
