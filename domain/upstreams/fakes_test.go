package upstreams_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/ports"
)

// Test doubles built from function fields; a nil field panics if called,
// so each test states what it expects to be used. newMemStore fills the
// store's fields with an in-memory table, which a test may override one
// field at a time.

type fakeStore struct {
	list   func(context.Context) ([]ports.UpstreamRecord, error)
	get    func(context.Context, string) (ports.UpstreamRecord, error)
	create func(context.Context, ports.UpstreamRecord) error
	update func(ctx context.Context, u ports.UpstreamRecord, prev time.Time) error
	delete func(context.Context, string) error
	seed   func(context.Context, []ports.UpstreamRecord) error
}

var _ ports.UpstreamStore = (*fakeStore)(nil)

func (f *fakeStore) ListUpstreams(ctx context.Context) ([]ports.UpstreamRecord, error) {
	return f.list(ctx)
}
func (f *fakeStore) GetUpstream(ctx context.Context, id string) (ports.UpstreamRecord, error) {
	return f.get(ctx, id)
}
func (f *fakeStore) CreateUpstream(ctx context.Context, u ports.UpstreamRecord) error {
	return f.create(ctx, u)
}
func (f *fakeStore) UpdateUpstream(ctx context.Context, u ports.UpstreamRecord, prev time.Time) error {
	return f.update(ctx, u, prev)
}
func (f *fakeStore) DeleteUpstream(ctx context.Context, id string) error { return f.delete(ctx, id) }
func (f *fakeStore) SeedUpstreams(ctx context.Context, ups []ports.UpstreamRecord) error {
	return f.seed(ctx, ups)
}

// memStore is the table behind newMemStore's fields.
type memStore struct {
	mu   sync.Mutex
	rows map[string]ports.UpstreamRecord
}

func (m *memStore) put(u ports.UpstreamRecord) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u.Models = slices.Clone(u.Models)
	m.rows[u.ID] = u
}

func (m *memStore) row(id string) (ports.UpstreamRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok := m.rows[id]
	return u, ok
}

var errNotFound = &domain.Error{Kind: domain.KindNotFound, Message: "upstream not found"}

func newMemStore() (*fakeStore, *memStore) {
	m := &memStore{rows: map[string]ports.UpstreamRecord{}}
	f := &fakeStore{
		list: func(context.Context) ([]ports.UpstreamRecord, error) {
			m.mu.Lock()
			defer m.mu.Unlock()
			out := make([]ports.UpstreamRecord, 0, len(m.rows))
			for _, u := range m.rows {
				out = append(out, u)
			}
			slices.SortFunc(out, func(a, b ports.UpstreamRecord) int {
				if a.Priority != b.Priority {
					return a.Priority - b.Priority
				}
				return strings.Compare(a.Name, b.Name)
			})
			return out, nil
		},
		get: func(_ context.Context, id string) (ports.UpstreamRecord, error) {
			if u, ok := m.row(id); ok {
				return u, nil
			}
			return ports.UpstreamRecord{}, errNotFound
		},
		create: func(_ context.Context, u ports.UpstreamRecord) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, o := range m.rows {
				if o.ID == u.ID || o.Name == u.Name {
					return &domain.Error{Kind: domain.KindConflict, Message: "duplicate"}
				}
			}
			m.rows[u.ID] = u
			return nil
		},
		update: func(_ context.Context, u ports.UpstreamRecord, prev time.Time) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			cur, ok := m.rows[u.ID]
			if !ok {
				return errNotFound
			}
			if !cur.UpdatedAt.Equal(prev) {
				return fmt.Errorf("upstream %s: %w", u.ID, ports.ErrStale)
			}
			u.CreatedAt = cur.CreatedAt
			m.rows[u.ID] = u
			return nil
		},
		delete: func(_ context.Context, id string) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if _, ok := m.rows[id]; !ok {
				return errNotFound
			}
			delete(m.rows, id)
			return nil
		},
		seed: func(_ context.Context, ups []ports.UpstreamRecord) error {
			m.mu.Lock()
			defer m.mu.Unlock()
			if len(m.rows) > 0 {
				return nil
			}
			for _, u := range ups {
				m.rows[u.ID] = u
			}
			return nil
		},
	}
	return f, m
}

// fakeSealer seals as "<key name>:<id>:<hex of the reversed plaintext>",
// so a sealed key shows neither the plaintext nor its last four, and opens
// only under the key it names, for the id it was sealed for. It rotates
// (upstreams.KeyRotator) when rotates is set.
type fakeSealer struct {
	current  string
	previous []string
	rotates  bool
	seals    int
}

func (s *fakeSealer) Seal(plain, id string) (string, error) {
	s.seals++
	r := []byte(plain)
	slices.Reverse(r)
	return s.current + ":" + id + ":" + hex.EncodeToString(r), nil
}

func (s *fakeSealer) Open(sealed, id string) (string, error) {
	key, rest, _ := strings.Cut(sealed, ":")
	sid, body, _ := strings.Cut(rest, ":")
	if key != s.current && !slices.Contains(s.previous, key) {
		return "", errors.New("sealed under a key the sealer does not hold")
	}
	if sid != id {
		return "", errors.New("sealed for another upstream")
	}
	r, err := hex.DecodeString(body)
	if err != nil {
		return "", errors.New("malformed")
	}
	slices.Reverse(r)
	return string(r), nil
}

// rotatingSealer is a fakeSealer that is also a KeyRotator.
type rotatingSealer struct{ *fakeSealer }

func (s rotatingSealer) NeedsRotation(sealed string) bool {
	key, _, _ := strings.Cut(sealed, ":")
	return key != s.current
}

var (
	_ ports.SecretSealer    = (*fakeSealer)(nil)
	_ upstreams.KeyRotator  = rotatingSealer{}
	_ ports.UpstreamRuntime = (*fakeRuntime)(nil)
	_ ports.UsageStore      = (*fakeUsage)(nil)
)

// fakeRuntime records every Apply, with the pool's upstreams at that
// moment (when p is set), and answers Test with test.
type fakeRuntime struct {
	mu      sync.Mutex
	p       *pool.Pool
	applies [][]ports.UpstreamEndpoint
	// poolAt holds the ids the pool had at each Apply.
	poolAt [][]string
	apply  func([]ports.UpstreamEndpoint) error
	test   func(context.Context, ports.UpstreamEndpoint) ports.UpstreamTest
}

func (f *fakeRuntime) Apply(eps []ports.UpstreamEndpoint) error {
	f.mu.Lock()
	f.applies = append(f.applies, slices.Clone(eps))
	if f.p != nil {
		var ids []string
		for _, st := range f.p.Status() {
			ids = append(ids, st.Upstream.ID)
		}
		f.poolAt = append(f.poolAt, ids)
	}
	f.mu.Unlock()
	if f.apply != nil {
		return f.apply(eps)
	}
	return nil
}

func (f *fakeRuntime) Test(ctx context.Context, e ports.UpstreamEndpoint) ports.UpstreamTest {
	return f.test(ctx, e)
}

// last returns the endpoints applied last, by id.
func (f *fakeRuntime) last() map[string]ports.UpstreamEndpoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]ports.UpstreamEndpoint{}
	if len(f.applies) == 0 {
		return out
	}
	for _, e := range f.applies[len(f.applies)-1] {
		out[e.ID] = e
	}
	return out
}

func (f *fakeRuntime) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applies)
}

type fakeUsage struct {
	totals func(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error)
}

func (f *fakeUsage) InsertUsage(context.Context, []domain.UsageRecord) error {
	panic("unexpected InsertUsage")
}
func (f *fakeUsage) UsageTotals(ctx context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
	return f.totals(ctx, q)
}
func (f *fakeUsage) UsageLogs(context.Context, domain.LogQuery) ([]domain.UsageRecord, error) {
	panic("unexpected UsageLogs")
}
func (f *fakeUsage) UsageSeries(context.Context, domain.SeriesQuery) ([]domain.SeriesPoint, error) {
	panic("unexpected UsageSeries")
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for the refresh goroutine.
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

// env is a Registry over fakes, a real pool and a captured log.
type env struct {
	reg     *upstreams.Registry
	store   *fakeStore
	mem     *memStore
	sealer  *fakeSealer
	runtime *fakeRuntime
	pool    *pool.Pool
	clock   *fakeClock
	usage   *fakeUsage
	log     *syncBuffer
}

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

type envOpt func(*env, *upstreams.Deps)

func rotating() envOpt {
	return func(e *env, d *upstreams.Deps) { d.Sealer = rotatingSealer{e.sealer} }
}

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	store, mem := newMemStore()
	clock := &fakeClock{t: t0}
	p, err := pool.New(pool.Config{Clock: clock}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: store, mem: mem, sealer: &fakeSealer{current: "k2"}, runtime: &fakeRuntime{p: p}, pool: p, clock: clock,
		usage: &fakeUsage{totals: func(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error) { return nil, nil }},
		log:   &syncBuffer{}}
	d := upstreams.Deps{Store: store, Sealer: e.sealer, Pool: p, Runtime: e.runtime, Usage: e.usage, Clock: clock,
		Log: slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, o := range opts {
		o(e, &d)
	}
	if e.reg, err = upstreams.New(d); err != nil {
		t.Fatal(err)
	}
	return e
}

// status is the pool's view of id.
func (e *env) status(t *testing.T, id string) pool.Status {
	t.Helper()
	for _, st := range e.pool.Status() {
		if st.Upstream.ID == id {
			return st
		}
	}
	t.Fatalf("upstream %s is not in the pool", id)
	return pool.Status{}
}

// noSecret fails t if a secret appears in the log or in a stored row.
func (e *env) noSecret(t *testing.T, secrets ...string) {
	t.Helper()
	log := e.log.String()
	e.mem.mu.Lock()
	defer e.mem.mu.Unlock()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log shows a secret:\n%s", log)
		}
		for _, u := range e.mem.rows {
			if strings.Contains(fmt.Sprintf("%+v", u), s) {
				t.Errorf("upstream %s is stored with its secret: %+v", u.ID, u)
			}
		}
	}
}

func wantKind(t *testing.T, err error, kind domain.Kind, what string) {
	t.Helper()
	if got := domain.KindOf(err); err == nil || got != kind {
		t.Fatalf("%s: err = %v (kind %s), want kind %s", what, err, got, kind)
	}
}

func ptr[T any](v T) *T { return &v }
