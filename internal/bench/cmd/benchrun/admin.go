package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

var adminClient = &http.Client{Timeout: 15 * time.Second}

// waitReady polls url until it answers (200 when want200), the process
// exits, or timeout passes.
func (h *harness) waitReady(ctx context.Context, p *proc, url string, timeout time.Duration, want200 bool) error {
	deadline := time.Now().Add(timeout)
	last := "no answer"
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%v); log: %s", p.name, p.err, h.tail(p.log))
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := adminClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if !want200 || resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v at %s (last: %s); log: %s", p.name, timeout, url, last, h.tail(p.log))
}

// provision logs in as admin, creates a tier that never limits the
// benchmark and a key on it with a huge token limit and money budgets, so
// that every request runs the full admission path (rate limit, quota and
// budget reservations) without being refused. It returns the key.
func provision(ctx context.Context, base, user, password, upstreamURL string) (*relayAdmin, error) {
	var login struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(ctx, http.MethodPost, base+"/admin/login", func(r *http.Request) { r.SetBasicAuth(user, password) }, nil, &login); err != nil {
		return nil, fmt.Errorf("POST /admin/login: %w", err)
	}
	if login.AccessToken == "" {
		return nil, fmt.Errorf("POST /admin/login: no access_token in the answer")
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+login.AccessToken) }
	tier := map[string]any{"requests": 100_000_000, "period": 60}
	if err := call(ctx, http.MethodPut, base+"/admin/tiers/bench", bearer, tier, nil); err != nil {
		return nil, fmt.Errorf("PUT /admin/tiers/bench: %w", err)
	}
	// A pool of three upstreams (the configured one and two more, all on
	// the fake), so every request is picked, pinned and observed as in a
	// real pool.
	for _, name := range []string{"bench-b", "bench-c"} {
		up := map[string]any{"name": name, "url": upstreamURL, "api_key": "sk-ant-bench-" + name, "priority": 0, "weight": 1}
		if err := call(ctx, http.MethodPost, base+"/admin/upstreams", bearer, up, nil); err != nil {
			return nil, fmt.Errorf("POST /admin/upstreams: %w", err)
		}
	}
	var created struct {
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	// Every money feature on too: two budgets (reserved and settled in both
	// windows on every request) and a model allow-list.
	key := map[string]any{"name": "bench", "rate_limit_tier": "bench", "token_limit": int64(1_000_000_000_000),
		"budgets":        []map[string]any{{"window": "5h", "limit_usd": 1_000_000}, {"window": "month", "limit_usd": 5_000_000}},
		"allowed_models": []string{"claude-*"}}
	if err := call(ctx, http.MethodPost, base+"/admin/api-keys", bearer, key, &created); err != nil {
		return nil, fmt.Errorf("POST /admin/api-keys: %w", err)
	}
	if created.APIKey == "" {
		return nil, fmt.Errorf("POST /admin/api-keys: no api_key in the answer")
	}
	return &relayAdmin{base: base, token: login.AccessToken, keyID: created.ID, key: created.APIKey}, nil
}

// relayAdmin is what the harness keeps to ask a relay about its key later.
type relayAdmin struct {
	name, base, token, keyID, key string
}

// tokensUsed reads the bench key's tokens_used: proof that usage recording
// ran during the measurements.
func (a *relayAdmin) tokensUsed(ctx context.Context) (int64, error) {
	var k struct {
		TokensUsed int64 `json:"tokens_used"`
	}
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+a.token) }
	if err := call(ctx, http.MethodGet, a.base+"/admin/api-keys/"+a.keyID, bearer, nil, &k); err != nil {
		return 0, fmt.Errorf("GET /admin/api-keys/%s: %w", a.keyID, err)
	}
	return k.TokensUsed, nil
}

func call(ctx context.Context, method, url string, auth func(*http.Request), in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	auth(req)
	resp, err := adminClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("decode answer %q: %w", b, err)
		}
	}
	return nil
}
