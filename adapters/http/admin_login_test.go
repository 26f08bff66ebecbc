package httpadapter_test

import (
	"context"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	httpadapter "github.com/relaystation/relay/adapters/http"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain/admin"
)

// testLoginThrottle is the production shape, with budgets that no test
// spends by accident.
var testLoginThrottle = admin.LoginThrottlePolicy{PerAddress: 5, MaxBackoff: 15 * time.Minute,
	PerUsername: 1000, Global: 1000, Window: time.Hour, KnownAddressTTL: 30 * 24 * time.Hour}

// testClock tells the real time until stopped; then it moves only when
// told to.
type testClock struct {
	mu      sync.Mutex
	stopped bool
	at      time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stopped {
		return time.Now()
	}
	return c.at
}

func (c *testClock) Stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stopped, c.at = true, time.Now()
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// forwardedFor makes the request come from addr, through a trusted proxy.
func forwardedFor(addr string) client.RequestEditorFn {
	return func(_ context.Context, r *http.Request) error {
		r.Header.Set("X-Forwarded-For", addr)
		return nil
	}
}

func withTrustedLoopback(o *httpadapter.Options) {
	o.ClientIP = httpx.NewClientIPResolver([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
}

// loginStatus logs in and returns the status and, for a 429, retry-after.
func (e *testEnv) loginStatus(pass string, editors ...client.RequestEditorFn) (int, string) {
	e.t.Helper()
	r, err := e.c.AdminLoginWithResponse(context.Background(), append([]client.RequestEditorFn{basic(testAdminUser, pass)}, editors...)...)
	if err != nil {
		e.t.Fatalf("login: %v", err)
	}
	switch r.StatusCode() {
	case 200, 401:
	case 429:
		if r.JSON429 == nil || r.JSON429.Error.Type != "rate_limit_error" {
			e.t.Fatalf("429 not in Anthropic's shape: %s", r.Body)
		}
		ra := r.HTTPResponse.Header.Get("retry-after")
		if ra == "" || ra == "0" {
			e.t.Fatalf("429 with retry-after %q", ra)
		}
		return 429, ra
	default:
		e.t.Fatalf("login: %d %s", r.StatusCode(), r.Body)
	}
	return r.StatusCode(), ""
}

// TestLoginThrottle: past the free failures even the right password waits,
// but only as long as retry-after says, and the wait doubles with each
// further failure; it is never a lock.
func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""))
	e.throttleClock.Stop()
	for i := range 5 {
		if code, _ := e.loginStatus("wrong"); code != 401 {
			t.Fatalf("failure %d: %d", i, code)
		}
	}
	if code, ra := e.loginStatus(testAdminPass); code != 429 || ra != "1" {
		t.Fatalf("the right password after 5 failures: %d retry-after %q, want 429 and 1", code, ra)
	}
	e.throttleClock.Advance(time.Second)
	if code, _ := e.loginStatus("wrong"); code != 401 {
		t.Fatalf("after the wait: %d, want the password checked", code)
	}
	if code, ra := e.loginStatus(testAdminPass); code != 429 || ra != "2" {
		t.Fatalf("after a sixth failure: %d retry-after %q, want 429 and 2", code, ra)
	}
	e.throttleClock.Advance(2 * time.Second)
	if code, _ := e.loginStatus(testAdminPass); code != 200 {
		t.Fatalf("the right password after the wait: %d", code)
	}
	// The login forgot the failures.
	for range 5 {
		if code, _ := e.loginStatus("wrong"); code != 401 {
			t.Fatalf("failure after a login: %d", code)
		}
	}
}

// TestLoginThrottleParallel: parallel wrong guesses are counted while the
// password is being checked, so no more than the free ones get to guess.
func TestLoginThrottleParallel(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""))
	e.throttleClock.Stop()
	const n = 30
	var wg sync.WaitGroup
	var unauth, limited atomic.Int64
	for range n {
		wg.Go(func() {
			switch code, _ := e.loginStatus("wrong"); code {
			case 401:
				unauth.Add(1)
			case 429:
				limited.Add(1)
			}
		})
	}
	wg.Wait()
	if unauth.Load() > 5 || unauth.Load() < 1 || unauth.Load()+limited.Load() != n {
		t.Errorf("%d parallel wrong logins: %d got 401, %d got 429; want at most 5 401s, the rest 429",
			n, unauth.Load(), limited.Load())
	}
	if code, _ := e.loginStatus(testAdminPass); unauth.Load() == 5 && code != 429 {
		t.Errorf("the right password after 5 failures: %d, want 429", code)
	}
}

// TestLoginThrottleIsPerAddress: one address's failures do not hold back
// another; IPv6 addresses count per /64.
func TestLoginThrottleIsPerAddress(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t, mustOpenStore(t, ""), withTrustedLoopback)
	e.throttleClock.Stop()
	for _, blocked := range []string{"198.51.100.7", "2001:db8:1:2::1"} {
		for range 5 {
			if code, _ := e.loginStatus("wrong", forwardedFor(blocked)); code != 401 {
				t.Fatalf("%s: %d", blocked, code)
			}
		}
	}
	for addr, want := range map[string]int{
		"198.51.100.7":       429,
		"2001:db8:1:2::ffff": 429, // the same /64
		"198.51.100.8":       200,
		"2001:db8:1:3::1":    200,
	} {
		if code, _ := e.loginStatus(testAdminPass, forwardedFor(addr)); code != want {
			t.Errorf("the right password from %s: %d, want %d", addr, code, want)
		}
	}
}
