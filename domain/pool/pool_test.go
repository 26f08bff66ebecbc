package pool_test

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/domain/pool"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// up is an enabled upstream in the default group serving every model.
func up(id string, priority, weight int) pool.Upstream {
	return pool.Upstream{ID: id, Name: id, Priority: priority, Weight: weight, Enabled: true}
}

// MustPool returns a pool on a fake clock and a seeded draw.
func MustPool(tb testing.TB, ups ...pool.Upstream) (*pool.Pool, *fakeClock) {
	tb.Helper()
	clock := &fakeClock{t: time.Date(2027, 1, 4, 12, 0, 0, 0, time.UTC)}
	p, err := pool.New(pool.Config{Clock: clock, Rand: rand.New(rand.NewPCG(1, 2))}, ups)
	if err != nil {
		tb.Fatalf("pool.New: %v", err)
	}
	return p, clock
}

// pins plays the caller's side of stickiness: it reads the session's pin
// into the input and pins as the choice says, as the use case will with a
// ports.SessionPins.
type pins map[string]string

func (ps pins) pick(p *pool.Pool, in pool.PickInput) (pool.Choice, []pool.Skip) {
	in.Pinned = ps[in.Session]
	c, skips := p.Pick(in)
	if c.Pin {
		ps[in.Session] = c.Upstream
	}
	return c, skips
}

func mustChoose(tb testing.TB, p *pool.Pool, in pool.PickInput, want string) []pool.Skip {
	tb.Helper()
	c, skips := p.Pick(in)
	if c.Upstream != want {
		tb.Fatalf("Pick(%+v) = %q (%s), want %q; skips %v", in, c.Upstream, c.Why, want, skips)
	}
	return skips
}

func findSkip(skips []pool.Skip, id string) (pool.Skip, bool) {
	for _, s := range skips {
		if s.Upstream == id {
			return s, true
		}
	}
	return pool.Skip{}, false
}

func mustSkip(tb testing.TB, skips []pool.Skip, id string, reason pool.SkipReason) pool.Skip {
	tb.Helper()
	s, ok := findSkip(skips, id)
	if !ok || s.Reason != reason {
		tb.Fatalf("skip of %s = %+v (found %v), want reason %s; all: %v", id, s, ok, reason, skips)
	}
	return s
}

func mustEvent(tb testing.TB, evs []pool.Event, from, to pool.State, cause pool.Cause) pool.Event {
	tb.Helper()
	if len(evs) != 1 || evs[0].From != from || evs[0].To != to || evs[0].Cause != cause {
		tb.Fatalf("events %v, want one %s -> %s (%s)", evs, from, to, cause)
	}
	return evs[0]
}

func mustNoEvent(tb testing.TB, evs []pool.Event) {
	tb.Helper()
	if len(evs) != 0 {
		tb.Fatalf("events %v, want none", evs)
	}
}

func TestConfigDefaultsAndBounds(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1))
	if p.PinTTL() != time.Hour {
		t.Errorf("PinTTL = %v, want the 1h default", p.PinTTL())
	}
	for name, cfg := range map[string]pool.Config{
		"negative cooldown":    {DefaultCooldown: -time.Second},
		"headroom of one":      {LowHeadroom: 1},
		"max below default":    {DefaultCooldown: time.Minute, MaxCooldown: time.Second},
		"negative burst count": {BurstErrors: -1},
	} {
		if _, err := pool.New(cfg, nil); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}

func TestUpstreamValidate(t *testing.T) {
	t.Parallel()
	ok := up("a", 0, 1)
	ok.Models = []string{"claude-sonnet-*", "claude-3-5-haiku-20241022"}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid upstream refused: %v", err)
	}
	for name, mut := range map[string]func(*pool.Upstream){
		"no id":            func(u *pool.Upstream) { u.ID = "" },
		"zero weight":      func(u *pool.Upstream) { u.Weight = 0 },
		"negative tier":    func(u *pool.Upstream) { u.Priority = -1 },
		"negative cap":     func(u *pool.Upstream) { u.MaxConcurrency = -1 },
		"bad glob":         func(u *pool.Upstream) { u.Models = []string{"claude-["} },
		"empty model glob": func(u *pool.Upstream) { u.Models = []string{""} },
	} {
		u := ok
		mut(&u)
		if err := u.Validate(); err == nil {
			t.Errorf("%s: Validate accepted %+v", name, u)
		}
	}
	if _, err := pool.New(pool.Config{}, []pool.Upstream{up("a", 0, 1), up("a", 1, 1)}); err == nil {
		t.Error("New accepted two upstreams with one id")
	}
}

func TestServesModelGlobs(t *testing.T) {
	t.Parallel()
	u := up("a", 0, 1)
	u.Models = []string{"claude-sonnet-*"}
	for model, want := range map[string]bool{
		"claude-sonnet-4-5-20250929": true,
		"claude-opus-4-1":            false,
		"":                           true, // a request without a model (files, listings)
	} {
		if got := u.Serves(model); got != want {
			t.Errorf("Serves(%q) = %v, want %v", model, got, want)
		}
	}
}

func TestSetUpstreamsKeepsHealth(t *testing.T) {
	t.Parallel()
	p, _ := MustPool(t, up("a", 0, 1), up("b", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Status: 401, Message: "invalid x-api-key"})
	renamed := up("a", 0, 5)
	renamed.Name = "primary"
	if err := p.SetUpstreams([]pool.Upstream{renamed}); err != nil {
		t.Fatal(err)
	}
	st := p.Status()
	if len(st) != 1 || st[0].Upstream.Weight != 5 || st[0].Health.State != pool.Disabled {
		t.Fatalf("status after reconfiguring: %+v", st)
	}
	_, skips := p.Pick(pool.PickInput{Session: "s", Pinned: "b"})
	mustSkip(t, skips, "b", pool.SkipUnknown)
}

func TestSessionKey(t *testing.T) {
	t.Parallel()
	k := pool.SessionKey("key-1", "sess-abc", "user-1")
	if k != pool.SessionKey("key-1", "sess-abc", "user-2") {
		t.Error("the Claude Code session id must win over metadata.user_id")
	}
	if k == pool.SessionKey("key-2", "sess-abc", "") {
		t.Error("one session id under two proxy keys must pin apart")
	}
	if u := pool.SessionKey("key-1", "", "user-1"); u == pool.SessionKey("key-1", "", "") || u[0] != 'u' {
		t.Errorf("metadata.user_id must be used before the key id: %q", u)
	}
	if got := pool.SessionKey("key-1", "", ""); got[0] != 'k' || len(got) != 34 {
		t.Errorf("key-id session key %q: want a 'k.' prefix and 34 bytes", got)
	}
	long := make([]byte, 10_000)
	if got := pool.SessionKey("key-1", string(long), ""); len(got) != 34 {
		t.Errorf("a long session id gives a %d-byte key, want 34", len(got))
	}
}

// TestStatusCountsRecentErrors: failed attempts (not probes, not
// successes) within RecentWindow.
func TestStatusCountsRecentErrors(t *testing.T) {
	t.Parallel()
	p, clock := MustPool(t, up("a", 0, 1))
	p.Observe(pool.Observation{Upstream: "a", Model: "m", Status: 500})
	p.Observe(pool.Observation{Upstream: "a", Model: "m", Status: 200})
	p.Observe(pool.Observation{Upstream: "a", Status: 0})
	clock.Advance(pool.RecentWindow + time.Second)
	p.Observe(pool.Observation{Upstream: "a", Model: "m", Status: 529})
	p.Observe(pool.Observation{Upstream: "a", Model: "n", Status: 429})
	if got := p.Status()[0].RecentErrors; got != 2 {
		t.Fatalf("recent errors %d, want 2 (the two older ones left the window; the success is none)", got)
	}
}

// The pin key is stored (in Redis, shared by replicas): it must not
// change from one version to the next. This is the original formulation.
func TestSessionKeyIsStable(t *testing.T) {
	old := func(proxyKeyID, claudeSessionID, userID string) string {
		src, id := "k", proxyKeyID
		switch {
		case claudeSessionID != "":
			src, id = "c", claudeSessionID
		case userID != "":
			src, id = "u", userID
		}
		h := sha256.New()
		for _, part := range [...]string{"relay session pin v1", proxyKeyID, src, id} {
			h.Write([]byte(part))
			h.Write([]byte{0})
		}
		return src + "." + hex.EncodeToString(h.Sum(nil)[:16])
	}
	long := strings.Repeat("x", 1000)
	for _, c := range [][3]string{{"k1", "", ""}, {"k1", "s", ""}, {"k1", "", "u"}, {"k1", "s", "u"}, {long, long, ""}, {"k", "", long}, {"", "", ""}} {
		if got, want := pool.SessionKey(c[0], c[1], c[2]), old(c[0], c[1], c[2]); got != want {
			t.Fatalf("SessionKey(%.10q…) = %s, was %s", c, got, want)
		}
	}
}
