package upstreams_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/ports"
)

const (
	keyA = "sk-ant-api03-AAAAAAAAAAAAAAAAAAAA-aaaa"
	keyB = "sk-ant-api03-BBBBBBBBBBBBBBBBBBBB-bbbb"
)

func mustCreate(t *testing.T, e *env, in upstreams.CreateInput) upstreams.View {
	t.Helper()
	v, err := e.reg.Create(context.Background(), in)
	if err != nil {
		t.Fatalf("create %q: %v", in.Name, err)
	}
	return v
}

func TestCreate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := mustCreate(t, e, upstreams.CreateInput{
		Name: "org-a", URL: "https://api.anthropic.com", APIKey: keyA, Priority: 1, MaxConcurrency: 8,
		Models: []string{"claude-sonnet-*"}, Group: "team-a", Actor: "admin",
	})
	u := v.Record
	if !strings.HasPrefix(u.ID, upstreams.IDPrefix) || len(u.ID) != len(upstreams.IDPrefix)+16 {
		t.Fatalf("id %q", u.ID)
	}
	if u.Name != "org-a" || u.Weight != 1 || !u.Enabled || u.Priority != 1 || u.MaxConcurrency != 8 || u.Group != "team-a" ||
		!slices.Equal(u.Models, []string{"claude-sonnet-*"}) || u.KeyLast4 != "aaaa" || u.SealedKey != "" {
		t.Fatalf("view record: %+v", u)
	}
	if !u.CreatedAt.Equal(t0) || !u.UpdatedAt.Equal(t0) {
		t.Fatalf("times %v %v, want the clock's", u.CreatedAt, u.UpdatedAt)
	}
	if !v.Loaded || v.Health.State != pool.Healthy || v.InFlight != 0 || v.RecentErrors == nil || *v.RecentErrors != 0 {
		t.Fatalf("live state: %+v", v)
	}
	// Stored sealed for its id; applied with its key, on this replica at
	// once.
	stored, _ := e.mem.row(u.ID)
	if key, err := e.sealer.Open(stored.SealedKey, u.ID); err != nil || key != keyA {
		t.Fatalf("stored key opens to %q, %v", key, err)
	}
	if ep := e.runtime.last()[u.ID]; ep.APIKey != keyA || ep.URL != "https://api.anthropic.com" || ep.Name != "org-a" {
		t.Fatalf("endpoint %+v", ep)
	}
	if st := e.status(t, u.ID); !st.Upstream.Enabled || st.Upstream.Group != "team-a" {
		t.Fatalf("pool: %+v", st)
	}

	// Created disabled: the reason names the admin.
	off := mustCreate(t, e, upstreams.CreateInput{Name: "standby", URL: "http://127.0.0.1:9100/", APIKey: keyB,
		Weight: ptr(5), Enabled: ptr(false), Actor: "alice"})
	if off.Record.Enabled || off.Record.DisabledReason != "disabled by alice" || off.Health.State != pool.Disabled ||
		off.Health.Reason != "disabled by alice" || off.Record.Weight != 5 {
		t.Fatalf("created disabled: %+v", off)
	}
	if e.status(t, off.Record.ID).Upstream.Enabled {
		t.Fatal("the pool has the disabled upstream enabled")
	}

	// A name is taken once.
	_, err := e.reg.Create(ctx, upstreams.CreateInput{Name: "org-a", URL: "https://x.test", APIKey: keyB})
	wantKind(t, err, domain.KindConflict, "duplicate name")
	list, err := e.reg.List(ctx, upstreams.ListInput{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	e.noSecret(t, keyA, keyB)
}

func TestCreateInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	good := upstreams.CreateInput{Name: "n", URL: "https://api.anthropic.com", APIKey: keyA}
	for name, change := range map[string]func(*upstreams.CreateInput){
		"no name":           func(in *upstreams.CreateInput) { in.Name = " " },
		"name with newline": func(in *upstreams.CreateInput) { in.Name = "a\nb" },
		"no url":            func(in *upstreams.CreateInput) { in.URL = "" },
		"ftp url":           func(in *upstreams.CreateInput) { in.URL = "ftp://api.anthropic.com" },
		"no host":           func(in *upstreams.CreateInput) { in.URL = "https://" },
		"relative url":      func(in *upstreams.CreateInput) { in.URL = "/v1" },
		"url with user":     func(in *upstreams.CreateInput) { in.URL = "https://user:" + keyB + "@api.anthropic.com" },
		"url with query":    func(in *upstreams.CreateInput) { in.URL = "https://api.anthropic.com/?x=1" },
		"no api key":        func(in *upstreams.CreateInput) { in.APIKey = "" },
		"api key with CRLF": func(in *upstreams.CreateInput) { in.APIKey = "sk-ant\r\nx-evil: 1" },
		"api key too long":  func(in *upstreams.CreateInput) { in.APIKey = strings.Repeat("k", upstreams.MaxAPIKeyLen+1) },
		"weight 0":          func(in *upstreams.CreateInput) { in.Weight = ptr(0) },
		"weight too big":    func(in *upstreams.CreateInput) { in.Weight = ptr(pool.MaxWeight + 1) },
		"negative priority": func(in *upstreams.CreateInput) { in.Priority = -1 },
		"negative cap":      func(in *upstreams.CreateInput) { in.MaxConcurrency = -1 },
		"bad glob":          func(in *upstreams.CreateInput) { in.Models = []string{"claude-["} },
		"empty model":       func(in *upstreams.CreateInput) { in.Models = []string{""} },
		"too many models":   func(in *upstreams.CreateInput) { in.Models = make([]string, pool.MaxModels+1) },
		"group too long":    func(in *upstreams.CreateInput) { in.Group = strings.Repeat("g", pool.MaxGroupLen+1) },
		"group with NUL":    func(in *upstreams.CreateInput) { in.Group = "a\x00" },
	} {
		in := good
		change(&in)
		_, err := e.reg.Create(context.Background(), in)
		wantKind(t, err, domain.KindInvalid, name)
		if strings.Contains(err.Error(), keyB) {
			t.Errorf("%s: the error shows the key: %v", name, err)
		}
	}
	if len(e.mem.rows) != 0 || e.sealer.seals != 0 {
		t.Fatalf("invalid input was stored or sealed: %d rows, %d seals", len(e.mem.rows), e.sealer.seals)
	}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	v := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA, MaxConcurrency: 4,
		Models: []string{"claude-*"}, Group: "g"})
	mustCreate(t, e, upstreams.CreateInput{Name: "b", URL: "https://b.test", APIKey: keyB})
	id := v.Record.ID
	e.clock.Add(time.Second)

	// PATCH: only the fields given change; the id stays on a rename.
	got, err := e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Name: ptr("renamed"), Weight: ptr(7), Models: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	r := got.Record
	if r.ID != id || r.Name != "renamed" || r.Weight != 7 || r.Models != nil || r.URL != "https://a.test" || r.Group != "g" ||
		r.MaxConcurrency != 4 || r.KeyLast4 != "aaaa" || !r.UpdatedAt.Equal(t0.Add(time.Second)) || !r.CreatedAt.Equal(t0) {
		t.Fatalf("after update: %+v", r)
	}
	if st := e.status(t, id); st.Upstream.Name != "renamed" || st.Upstream.Weight != 7 {
		t.Fatalf("pool after update: %+v", st.Upstream)
	}

	// A new key is sealed again, for the same id.
	got, err = e.reg.Update(ctx, upstreams.UpdateInput{ID: id, APIKey: ptr(keyB), MaxConcurrency: ptr(0), URL: ptr("https://c.test/v1")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Record.KeyLast4 != "bbbb" || got.Record.MaxConcurrency != 0 || got.Record.URL != "https://c.test/v1" {
		t.Fatalf("after key change: %+v", got.Record)
	}
	if ep := e.runtime.last()[id]; ep.APIKey != keyB || ep.URL != "https://c.test/v1" {
		t.Fatalf("endpoint after key change: %+v", ep)
	}

	// Renaming onto another's name is refused; so is a bad value.
	_, err = e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Name: ptr("b")})
	wantKind(t, err, domain.KindConflict, "rename onto a taken name")
	_, err = e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Weight: ptr(0)})
	wantKind(t, err, domain.KindInvalid, "weight 0")
	_, err = e.reg.Update(ctx, upstreams.UpdateInput{ID: "ghost", Weight: ptr(2)})
	wantKind(t, err, domain.KindNotFound, "missing upstream")

	// An update that changes nothing writes nothing.
	before, _ := e.mem.row(id)
	if _, err := e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Weight: ptr(7)}); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.mem.row(id); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Fatal("a no-op update changed updated_at")
	}
	e.noSecret(t, keyA, keyB)
}

func TestUpdateRetriesStale(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	inner := e.store.update
	// Another writer changes the upstream once between each read and write:
	// the change is applied on top of theirs.
	raced := 0
	e.store.update = func(ctx context.Context, u ports.UpstreamRecord, prev time.Time) error {
		if raced < 2 {
			raced++
			cur, _ := e.mem.row(u.ID)
			cur.Group = fmt.Sprintf("theirs-%d", raced)
			cur.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond)
			e.mem.put(cur)
		}
		return inner(ctx, u, prev)
	}
	got, err := e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Priority: ptr(3)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Record.Priority != 3 || got.Record.Group != "theirs-2" {
		t.Fatalf("after two lost races: %+v", got.Record)
	}
	// Losing every time ends in a conflict the client may retry.
	e.store.update = func(context.Context, ports.UpstreamRecord, time.Time) error {
		return fmt.Errorf("x: %w", ports.ErrStale)
	}
	_, err = e.reg.Update(ctx, upstreams.UpdateInput{ID: id, Priority: ptr(4)})
	wantKind(t, err, domain.KindConflict, "always stale")
	if domain.ReasonOf(err) != domain.ReasonStale || strings.Contains(domain.AsError(err).Message, "API key") {
		t.Fatalf("always stale: %v", err)
	}
}

func TestDisableEnable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID

	v, err := e.reg.Disable(ctx, upstreams.DisableInput{ID: id, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Record.Enabled || v.Record.DisabledReason != "disabled by alice" || v.Health.State != pool.Disabled {
		t.Fatalf("disabled: %+v", v)
	}
	if e.status(t, id).Upstream.Enabled {
		t.Fatal("pool still has it enabled")
	}
	// Again: nothing changes, the first reason stays.
	v, err = e.reg.Disable(ctx, upstreams.DisableInput{ID: id, Actor: "bob"})
	if err != nil || v.Record.DisabledReason != "disabled by alice" {
		t.Fatalf("disabled twice: %+v, %v", v.Record, err)
	}

	v, err = e.reg.Enable(ctx, upstreams.EnableInput{ID: id, Actor: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Record.Enabled || v.Record.DisabledReason != "" || v.Health.State != pool.Healthy {
		t.Fatalf("enabled: %+v", v)
	}

	// A 401 seen by this replica disables it in the pool; Enable clears
	// that too, even though the store still had it enabled.
	e.pool.Observe(pool.Observation{Upstream: id, Status: 401, Message: "invalid x-api-key"})
	if st := e.status(t, id); st.Health.State != pool.Disabled {
		t.Fatalf("after a 401: %v", st.Health.State)
	}
	v, err = e.reg.Get(ctx, upstreams.GetInput{ID: id})
	if err != nil || v.Health.State != pool.Disabled || v.Health.Reason != "auth 401: invalid x-api-key" {
		t.Fatalf("view after a 401: %+v, %v", v.Health, err)
	}
	if _, err := e.reg.Enable(ctx, upstreams.EnableInput{ID: id}); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, id); st.Health.State != pool.Healthy || st.Health.Cause != pool.CauseOperator {
		t.Fatalf("after enable: %+v", st.Health)
	}
	if !strings.Contains(e.log.String(), "operator") {
		t.Errorf("the change of state was not logged:\n%s", e.log.String())
	}
	for _, err := range []error{
		func() error { _, err := e.reg.Disable(ctx, upstreams.DisableInput{ID: "ghost"}); return err }(),
		func() error { _, err := e.reg.Enable(ctx, upstreams.EnableInput{ID: "ghost"}); return err }(),
		e.reg.Delete(ctx, upstreams.DeleteInput{ID: "ghost"}),
	} {
		wantKind(t, err, domain.KindNotFound, "missing upstream")
	}
}

func TestPersistDisable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	id := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	// The transport's write races an operator's change once.
	inner := e.store.update
	raced := false
	e.store.update = func(ctx context.Context, u ports.UpstreamRecord, prev time.Time) error {
		if !raced {
			raced = true
			cur, _ := e.mem.row(u.ID)
			cur.Weight = 9
			cur.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond)
			e.mem.put(cur)
		}
		return inner(ctx, u, prev)
	}
	if err := e.reg.PersistDisable(ctx, id, "401 authentication_error: invalid x-api-key\n"); err != nil {
		t.Fatal(err)
	}
	u, _ := e.mem.row(id)
	if u.Enabled || u.DisabledReason != "401 authentication_error: invalid x-api-key" || u.Weight != 9 {
		t.Fatalf("stored: %+v", u)
	}
	if e.status(t, id).Upstream.Enabled {
		t.Fatal("the pool still has it enabled")
	}
	// Already disabled: the first reason stays.
	if err := e.reg.PersistDisable(ctx, id, "403 permission_error"); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.mem.row(id); u.DisabledReason != "401 authentication_error: invalid x-api-key" {
		t.Fatalf("reason replaced: %q", u.DisabledReason)
	}
	if err := e.reg.PersistDisable(ctx, "ghost", "401"); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("missing upstream: %v", err)
	}
	if !strings.Contains(e.log.String(), "upstream disabled by the relay") {
		t.Errorf("not logged:\n%s", e.log.String())
	}
}

func TestDeleteAndTest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	b := mustCreate(t, e, upstreams.CreateInput{Name: "b", URL: "https://b.test", APIKey: keyB, Enabled: ptr(false)}).Record.ID

	var tested []ports.UpstreamEndpoint
	e.runtime.test = func(_ context.Context, ep ports.UpstreamEndpoint) ports.UpstreamTest {
		tested = append(tested, ep)
		return ports.UpstreamTest{OK: true, Status: 200, Latency: 12 * time.Millisecond}
	}
	// A disabled upstream is tested too: it is how a fixed key is checked.
	for _, id := range []string{a, b} {
		res, err := e.reg.Test(ctx, upstreams.TestInput{ID: id})
		if err != nil || !res.OK || res.Status != 200 {
			t.Fatalf("test %s: %+v, %v", id, res, err)
		}
	}
	if len(tested) != 2 || tested[0].APIKey != keyA || tested[1].APIKey != keyB || tested[1].URL != "https://b.test" {
		t.Fatalf("tested %+v", tested)
	}
	_, err := e.reg.Test(ctx, upstreams.TestInput{ID: "ghost"})
	wantKind(t, err, domain.KindNotFound, "test a missing upstream")
	_, err = e.reg.Test(ctx, upstreams.TestInput{})
	wantKind(t, err, domain.KindInvalid, "test without an id")

	if err := e.reg.Delete(ctx, upstreams.DeleteInput{ID: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.reg.Get(ctx, upstreams.GetInput{ID: a}); domain.KindOf(err) != domain.KindNotFound {
		t.Fatalf("get deleted: %v", err)
	}
	if _, ok := e.runtime.last()[a]; ok {
		t.Fatal("the transport still reaches the deleted upstream")
	}
	for _, st := range e.pool.Status() {
		if st.Upstream.ID == a {
			t.Fatal("the pool still has the deleted upstream")
		}
	}
	e.noSecret(t, keyA, keyB)
}

// The transport always holds every endpoint the pool may pick: an
// upstream added reaches the transport before the pool, one removed leaves
// the pool first.
func TestApplyOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	n := e.runtime.count()
	if ids := e.runtime.poolAt[n-1]; slices.Contains(ids, a) {
		t.Fatalf("the pool had %s before the transport", a)
	}
	if err := e.reg.Delete(ctx, upstreams.DeleteInput{ID: a}); err != nil {
		t.Fatal(err)
	}
	applies := e.runtime.applies[n:]
	if len(applies) != 2 || len(applies[0]) != 1 || applies[0][0].ID != a || applies[0][0].APIKey != keyA || len(applies[1]) != 0 {
		t.Fatalf("applies on delete: %+v", applies)
	}
	if ids := e.runtime.poolAt[n+1]; slices.Contains(ids, a) {
		t.Fatal("the transport let go before the pool")
	}
	// Nothing changed: a refresh applies nothing.
	n = e.runtime.count()
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if e.runtime.count() != n {
		t.Fatal("an unchanged load applied again")
	}
}

// A key sealed under a secret this replica does not hold leaves its
// upstream disabled here, with the reason, and never fails the start.
func TestLoadKeyThatDoesNotOpen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	stranger := &fakeSealer{current: "other-secret"}
	sealed, _ := stranger.Seal(keyA, "primary")
	e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "primary", Name: "primary", Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: sealed, KeyLast4: "aaaa", CreatedAt: t0, UpdatedAt: t0})
	good, _ := e.sealer.Seal(keyB, "backup")
	e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "backup", Name: "backup", Priority: 1, Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: good, CreatedAt: t0, UpdatedAt: t0})
	// A row the pool refuses is left out, not every upstream.
	brokenKey, _ := e.sealer.Seal(keyB, "broken")
	e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "broken", Name: "broken", Weight: 0, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: brokenKey, CreatedAt: t0, UpdatedAt: t0})

	if err := e.reg.Load(ctx); err != nil {
		t.Fatalf("load: %v", err)
	}
	if st := e.status(t, "primary"); st.Upstream.Enabled {
		t.Fatal("an upstream whose key does not open is enabled in the pool")
	}
	if !e.status(t, "backup").Upstream.Enabled {
		t.Fatal("the other upstream is not enabled")
	}
	eps := e.runtime.last()
	if eps["primary"].APIKey != "" || eps["backup"].APIKey != keyB {
		t.Fatalf("endpoints %+v", eps)
	}
	if _, ok := eps["broken"]; ok {
		t.Fatal("the invalid row was applied")
	}
	// A key is bound to its upstream: moved to another row, it does not
	// open.
	moved := ports.UpstreamRecord{Upstream: pool.Upstream{ID: "moved", Name: "moved", Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: good, CreatedAt: t0, UpdatedAt: t0}
	e.mem.put(moved)
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if e.status(t, "moved").Upstream.Enabled || e.runtime.last()["moved"].APIKey != "" {
		t.Fatal("a key copied from another upstream's row opened")
	}
	v, err := e.reg.Get(ctx, upstreams.GetInput{ID: "primary"})
	if err != nil || v.Health.State != pool.Disabled || !strings.Contains(v.Health.Reason, "UPSTREAM_KEY_SECRET") || !v.Record.Enabled {
		t.Fatalf("view: %+v, %v", v, err)
	}
	log := e.log.String()
	if !strings.Contains(log, "cannot be decrypted") || !strings.Contains(log, "stored upstream is invalid") {
		t.Fatalf("not logged:\n%s", log)
	}
	_, err = e.reg.Test(ctx, upstreams.TestInput{ID: "primary"})
	wantKind(t, err, domain.KindUnavailable, "test with a key that does not open")
	// Loading again logs neither again.
	thirdKey, _ := e.sealer.Seal(keyB, "third")
	e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "third", Name: "third", Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: thirdKey, CreatedAt: t0, UpdatedAt: t0})
	before := strings.Count(e.log.String(), "cannot be decrypted")
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Count(e.log.String(), "cannot be decrypted") != before || strings.Count(e.log.String(), "stored upstream is invalid") != 1 {
		t.Fatalf("logged again:\n%s", e.log.String())
	}
	e.noSecret(t, keyA, keyB)
}

// Keys sealed under a previous secret are re-sealed under the current one
// at start, and open either way meanwhile.
func TestLoadRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t, rotating())
	old := &fakeSealer{current: "k1"}
	e.sealer.previous = []string{"k1"}
	for i, id := range []string{"primary", "backup"} {
		sealed, _ := old.Seal(keyA+id, id)
		e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: id, Name: id, Priority: i, Weight: 1, Enabled: true},
			URL: "https://api.anthropic.com", SealedKey: sealed, CreatedAt: t0, UpdatedAt: t0})
	}
	current, _ := e.sealer.Seal(keyB, "fresh")
	e.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "fresh", Name: "fresh", Priority: 2, Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: current, CreatedAt: t0, UpdatedAt: t0})
	e.clock.Add(time.Minute)

	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"primary", "backup", "fresh"} {
		u, _ := e.mem.row(id)
		if !strings.HasPrefix(u.SealedKey, "k2:") {
			t.Fatalf("%s is sealed as %q, want under k2", id, u.SealedKey)
		}
		if id != "fresh" && !u.UpdatedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("%s: updated_at %v", id, u.UpdatedAt)
		}
		if id == "fresh" && !u.UpdatedAt.Equal(t0) {
			t.Fatal("a key under the current secret was re-sealed")
		}
	}
	if eps := e.runtime.last(); eps["primary"].APIKey != keyA+"primary" || eps["backup"].APIKey != keyA+"backup" || eps["fresh"].APIKey != keyB {
		t.Fatalf("endpoints %+v", eps)
	}
	if !strings.Contains(e.log.String(), "re-sealed upstream api keys") {
		t.Fatalf("not logged:\n%s", e.log.String())
	}
	// The previous secret can go now.
	e.sealer.previous = nil
	e.mem.put(func() ports.UpstreamRecord {
		u, _ := e.mem.row("fresh")
		u.Weight = 2
		u.UpdatedAt = u.UpdatedAt.Add(time.Second)
		return u
	}())
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if eps := e.runtime.last(); eps["primary"].APIKey != keyA+"primary" {
		t.Fatalf("after dropping the previous secret: %+v", eps)
	}

	// Without a rotating sealer, nothing is re-sealed.
	plain := newEnv(t)
	plain.sealer.previous = []string{"k1"}
	sealed, _ := old.Seal(keyA, "primary")
	plain.mem.put(ports.UpstreamRecord{Upstream: pool.Upstream{ID: "primary", Name: "primary", Weight: 1, Enabled: true},
		URL: "https://api.anthropic.com", SealedKey: sealed, CreatedAt: t0, UpdatedAt: t0})
	if err := plain.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := plain.mem.row("primary"); u.SealedKey != sealed {
		t.Fatal("re-sealed without a KeyRotator")
	}
}

func TestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	seeds := []upstreams.SeedUpstream{
		{ID: "primary", Name: "primary", URL: "https://api.anthropic.com", APIKey: keyA, Priority: 0, Weight: 1, Enabled: true},
		{ID: "backup", Name: "backup", URL: "https://backup.test", APIKey: keyB, Priority: 1, Weight: 1, Enabled: true},
		{ID: "nokey", Name: "nokey", URL: "https://nokey.test", Priority: 2, Weight: 1, Enabled: true},
	}
	if err := e.reg.Seed(ctx, seeds); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := e.reg.List(ctx, upstreams.ListInput{})
	if err != nil || len(list) != 2 {
		t.Fatalf("seeded %+v, %v", list, err)
	}
	if p := list[0].Record; p.ID != "primary" || p.Name != "primary" || p.Priority != 0 || p.KeyLast4 != "aaaa" || !p.Enabled {
		t.Fatalf("primary: %+v", p)
	}
	if b := list[1].Record; b.ID != "backup" || b.Priority != 1 || b.URL != "https://backup.test" {
		t.Fatalf("backup: %+v", b)
	}
	if eps := e.runtime.last(); eps["primary"].APIKey != keyA || eps["backup"].APIKey != keyB {
		t.Fatalf("endpoints %+v", eps)
	}

	// A later start with another key in the configuration changes nothing,
	// and says so.
	changed := slices.Clone(seeds)
	changed[0].APIKey = "sk-ant-api03-CCCCCCCCCCCCCCCCCCCC-cccc"
	if err := e.reg.Seed(ctx, changed); err != nil {
		t.Fatal(err)
	}
	if u, _ := e.mem.row("primary"); u.KeyLast4 != "aaaa" {
		t.Fatal("a second seed changed the stored key")
	}
	if log := e.log.String(); !strings.Contains(log, "differs from the stored one") || !strings.Contains(log, "api_key") {
		t.Fatalf("not warned:\n%s", log)
	}

	// Nothing to seed without a key; bad seeds stop the start.
	empty := newEnv(t)
	if err := empty.reg.Seed(ctx, []upstreams.SeedUpstream{seeds[2]}); err != nil || len(empty.mem.rows) != 0 {
		t.Fatalf("seed without a key: %v, %d rows", err, len(empty.mem.rows))
	}
	for name, bad := range map[string][]upstreams.SeedUpstream{
		"duplicate id": {seeds[0], seeds[0]},
		"bad id":       {{ID: "a/b", Name: "x", URL: "https://x.test", APIKey: keyA, Weight: 1}},
		"bad url":      {{ID: "x", Name: "x", URL: "api.anthropic.com", APIKey: keyA, Weight: 1}},
		"weight 0":     {{ID: "x", Name: "x", URL: "https://x.test", APIKey: keyA}},
	} {
		if err := empty.reg.Seed(ctx, bad); domain.KindOf(err) != domain.KindInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	e.noSecret(t, keyA, keyB, "CCCCCCCCCCCC")
}

// Changes stored by another replica apply here at the next refresh, an
// enable there clearing this replica's own disabled state too.
func TestRefreshEvery(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnv(t)
	id := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	e.pool.Observe(pool.Observation{Upstream: id, Status: 403, Message: "forbidden"})
	var down atomic.Bool
	list := e.store.list
	e.store.list = func(ctx context.Context) ([]ports.UpstreamRecord, error) {
		if down.Load() {
			return nil, errors.New("database down")
		}
		return list(ctx)
	}
	done := make(chan struct{})
	go func() { e.reg.RefreshEvery(ctx, 5*time.Millisecond); close(done) }()

	// Another replica persists the disable, then an operator enables it
	// there.
	other, err := upstreams.New(upstreams.Deps{Store: e.store, Sealer: e.sealer, Pool: mustPool(t), Runtime: &fakeRuntime{}, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.PersistDisable(ctx, id, "403 forbidden"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return !e.status(t, id).Upstream.Enabled }, "the disable applied here")
	if _, err := other.Enable(ctx, upstreams.EnableInput{ID: id}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool {
		st := e.status(t, id)
		return st.Upstream.Enabled && st.Health.State == pool.Healthy
	}, "the enable applied here, clearing the pool's disabled state")

	// A store that fails is logged once, and the recovery too.
	down.Store(true)
	eventually(t, func() bool { return strings.Contains(e.log.String(), "database down") }, "the failure logged")
	time.Sleep(30 * time.Millisecond)
	down.Store(false)
	eventually(t, func() bool { return strings.Contains(e.log.String(), "works again") }, "the recovery logged")
	if n := strings.Count(e.log.String(), "database down"); n != 1 {
		t.Fatalf("failure logged %d times", n)
	}
	cancel()
	<-done
}

func TestViews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := newEnv(t)
	a := mustCreate(t, e, upstreams.CreateInput{Name: "a", URL: "https://a.test", APIKey: keyA}).Record.ID
	b := mustCreate(t, e, upstreams.CreateInput{Name: "b", URL: "https://b.test", APIKey: keyB, Priority: 1}).Record.ID
	now := e.clock.Now()
	var asked domain.UsageQuery
	e.usage.totals = func(_ context.Context, q domain.UsageQuery) ([]domain.UsageTotals, error) {
		asked = q
		return []domain.UsageTotals{
			{Group: a, Usage: domain.Usage{InputTokens: 10, CacheCreationInputTokens: 30, CacheReadInputTokens: 60}},
			{Group: "", Usage: domain.Usage{InputTokens: 5}},
			{Group: b, Usage: domain.Usage{OutputTokens: 5}},
		}, nil
	}
	// a: a 429 on one model with a stated reset, a reading on another,
	// one request in flight.
	e.pool.Observe(pool.Observation{Upstream: a, Model: "claude-opus-4-5", Status: 429, RetryAt: now.Add(30 * time.Second)})
	limits := pool.Limits{Requests: pool.Budget{Limit: 100, Remaining: 40, Reset: now.Add(time.Minute)},
		OutputTokens: pool.Budget{Limit: 8000, Remaining: 100, Reset: now.Add(time.Minute)}}
	e.pool.Observe(pool.Observation{Upstream: a, Model: "claude-sonnet-4-5", Status: 200, Limits: limits})
	release, ok := e.pool.Acquire(a)
	if !ok {
		t.Fatal("acquire")
	}
	defer release()

	list, err := e.reg.List(ctx, upstreams.ListInput{})
	if err != nil || len(list) != 2 {
		t.Fatalf("list: %v, %v", list, err)
	}
	if asked.GroupBy != domain.GroupUpstream || !asked.To.Equal(now) || !asked.From.Equal(now.Add(-upstreams.CacheHitWindow)) {
		t.Fatalf("cache hit rates asked for %+v", asked)
	}
	va, vb := list[0], list[1]
	if va.Record.ID != a || va.InFlight != 1 || va.Health.State != pool.Healthy || va.CacheHitRate == nil || *va.CacheHitRate != 0.6 {
		t.Fatalf("a: %+v", va)
	}
	if vb.CacheHitRate != nil || vb.Headroom != nil || len(vb.Models) != 0 {
		t.Fatalf("b: %+v", vb)
	}
	if h := va.Headroom; h == nil || h.Model != "claude-sonnet-4-5" || h.Limits != limits {
		t.Fatalf("headroom: %+v", h)
	}
	if len(va.Models) != 2 || va.Models[0].Model != "claude-opus-4-5" || va.Models[1].Model != "claude-sonnet-4-5" {
		t.Fatalf("models: %+v", va.Models)
	}
	opus := va.Models[0].Health
	if opus.State != pool.Cooling || opus.Reason != "rate_limited 429" || !opus.Until.Equal(now.Add(30*time.Second)) || !opus.Since.Equal(now) {
		t.Fatalf("opus: %+v", opus)
	}

	// The cooling ends; the probe's outcome is the last probe.
	e.clock.Add(31 * time.Second)
	probes, _ := e.pool.Probes()
	if len(probes) != 1 {
		t.Fatalf("probes %+v", probes)
	}
	e.pool.Observe(pool.Observation{Upstream: a, Model: "claude-opus-4-5", Status: 200, Probe: true})
	v, err := e.reg.Get(ctx, upstreams.GetInput{ID: a})
	if err != nil {
		t.Fatal(err)
	}
	if p := v.Health.LastProbe; p == nil || !p.OK || p.Model != "claude-opus-4-5" || !p.At.Equal(e.clock.Now()) {
		t.Fatalf("last probe: %+v", p)
	}

	// Without usage, or when it fails, no rate; the view stands.
	e.usage.totals = func(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error) { return nil, errors.New("boom") }
	if v, err := e.reg.Get(ctx, upstreams.GetInput{ID: a}); err != nil || v.CacheHitRate != nil {
		t.Fatalf("with usage failing: %+v, %v", v, err)
	}
	for _, v := range list {
		if v.Record.SealedKey != "" {
			t.Fatal("a view carries the sealed key")
		}
	}
}

func TestNewRequires(t *testing.T) {
	t.Parallel()
	store, _ := newMemStore()
	full := upstreams.Deps{Store: store, Sealer: &fakeSealer{}, Pool: mustPool(t), Runtime: &fakeRuntime{}, Clock: &fakeClock{}}
	for name, change := range map[string]func(*upstreams.Deps){
		"store": func(d *upstreams.Deps) { d.Store = nil }, "sealer": func(d *upstreams.Deps) { d.Sealer = nil },
		"pool": func(d *upstreams.Deps) { d.Pool = nil }, "runtime": func(d *upstreams.Deps) { d.Runtime = nil },
		"clock": func(d *upstreams.Deps) { d.Clock = nil },
	} {
		d := full
		change(&d)
		if _, err := upstreams.New(d); err == nil {
			t.Errorf("New without a %s", name)
		}
	}
	if _, err := upstreams.New(full); err != nil {
		t.Fatal(err)
	}
}

func TestLast4(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]string{keyA: "aaaa", "short-key": "", "123456789012": "9012"} {
		if got := upstreams.Last4(key); got != want {
			t.Errorf("Last4(%q) = %q, want %q", key, got, want)
		}
	}
}

func mustPool(t *testing.T) *pool.Pool {
	t.Helper()
	p, err := pool.New(pool.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, ok func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
