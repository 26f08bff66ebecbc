package upstreams

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// DefaultRefresh is how often RefreshEvery re-reads the stored upstreams
// when given no interval: a change made on another replica applies here
// within it.
const DefaultRefresh = 5 * time.Second

// IDPrefix starts every generated upstream id.
const IDPrefix = "up_"

// KeyRotator is what a SecretSealer may also do: tell whether a sealed key
// is under an older key than the one it seals with now, so that Load
// re-seals it (see the package doc's "Rotation").
type KeyRotator interface {
	NeedsRotation(sealed string) bool
}

// Deps are what the Registry drives. All but Usage and Log are required.
type Deps struct {
	Store   ports.UpstreamStore
	Sealer  ports.SecretSealer
	Pool    *pool.Pool
	Runtime ports.UpstreamRuntime
	// Usage answers the cache hit rate of each upstream over the last
	// CacheHitWindow; without it the views show none.
	Usage ports.UsageStore
	Clock ports.Clock
	Log   *slog.Logger
}

// Registry runs the upstream-management use cases and keeps this replica's
// pool and transport in step with the stored upstreams.
type Registry struct {
	store   ports.UpstreamStore
	sealer  ports.SecretSealer
	pool    *pool.Pool
	runtime ports.UpstreamRuntime
	usage   ports.UsageStore
	clock   ports.Clock
	log     *slog.Logger
	newID   func() (string, error)

	// mu serialises applying upstreams to the pool and the transport, and
	// guards what was applied last.
	mu sync.Mutex
	// applied are the records applied last, by id; invalid those left out
	// (the pool refused them), with their updated_at; sealFailed the ids
	// whose key this replica could not open, with why. loaded is whether
	// anything was applied yet.
	applied    map[string]ports.UpstreamRecord
	invalid    map[string]time.Time
	sealFailed map[string]string
	loaded     bool
	// refreshFailing is whether the last refresh failed (to log a failure
	// once, and the recovery).
	refreshFailing bool
}

// New checks the dependencies and returns a Registry with nothing applied;
// call Seed (on a fresh database) and Load before serving.
func New(d Deps) (*Registry, error) {
	switch {
	case d.Store == nil || d.Sealer == nil || d.Runtime == nil:
		return nil, errors.New("upstreams: a store, a sealer and a runtime are required")
	case d.Pool == nil:
		return nil, errors.New("upstreams: a pool is required")
	case d.Clock == nil:
		return nil, errors.New("upstreams: a clock is required")
	}
	log := d.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Registry{
		store: d.Store, sealer: d.Sealer, pool: d.Pool, runtime: d.Runtime, usage: d.Usage, clock: d.Clock, log: log,
		newID: newID, applied: map[string]ports.UpstreamRecord{}, invalid: map[string]time.Time{}, sealFailed: map[string]string{},
	}, nil
}

// newID is "up_" and 16 random hex digits: unguessable is not needed, but
// ids created on two replicas at once must not collide.
func newID() (string, error) {
	var b [8]byte
	if _, err := crand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate upstream id: %w", err)
	}
	return IDPrefix + hex.EncodeToString(b[:]), nil
}

// now is the clock's time in UTC at the microsecond both SQL engines keep,
// so what a use case returns equals what a later read returns.
func (r *Registry) now() time.Time { return r.clock.Now().UTC().Truncate(time.Microsecond) }

func notFound(err error) error {
	return &domain.Error{Kind: domain.KindNotFound, Message: "upstream not found", Err: err}
}

// get reads one upstream, mapping absence to the use cases' not-found.
func (r *Registry) get(ctx context.Context, id string) (ports.UpstreamRecord, error) {
	u, err := r.store.GetUpstream(ctx, id)
	if errors.Is(err, domain.ErrNotFound) {
		return ports.UpstreamRecord{}, notFound(err)
	}
	if err != nil {
		return ports.UpstreamRecord{}, fmt.Errorf("get upstream: %w", err)
	}
	return u, nil
}

// List returns every upstream with its live state on this replica, by
// priority then name.
func (r *Registry) List(ctx context.Context, in ListInput) ([]View, error) {
	if err := in.Validate(); err != nil {
		return nil, err
	}
	recs, err := r.store.ListUpstreams(ctx)
	if err != nil {
		return nil, fmt.Errorf("list upstreams: %w", err)
	}
	return r.views(ctx, recs), nil
}

// Get returns one upstream with its live state on this replica.
func (r *Registry) Get(ctx context.Context, in GetInput) (View, error) {
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	u, err := r.get(ctx, in.ID)
	if err != nil {
		return View{}, err
	}
	return r.views(ctx, []ports.UpstreamRecord{u})[0], nil
}

// Create stores a new upstream under a generated id, with its key sealed
// for that id, and applies it on this replica.
func (r *Registry) Create(ctx context.Context, in CreateInput) (View, error) {
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	if err := r.nameFree(ctx, in.Name, ""); err != nil {
		return View{}, err
	}
	id, err := r.newID()
	if err != nil {
		return View{}, err
	}
	sealed, err := r.sealer.Seal(in.APIKey, id)
	if err != nil {
		return View{}, fmt.Errorf("seal the api key of upstream %s: %w", id, err)
	}
	now := r.now()
	u := ports.UpstreamRecord{
		Upstream: pool.Upstream{
			ID: id, Name: in.Name, Priority: in.Priority, Weight: 1, MaxConcurrency: in.MaxConcurrency,
			Models: slices.Clone(in.Models), Group: in.Group, Enabled: true,
		},
		URL: in.URL, SealedKey: sealed, KeyLast4: Last4(in.APIKey), CreatedAt: now, UpdatedAt: now,
	}
	if len(u.Models) == 0 {
		u.Models = nil
	}
	if in.Weight != nil {
		u.Weight = *in.Weight
	}
	if in.Enabled != nil && !*in.Enabled {
		u.Enabled, u.DisabledReason = false, disabledBy(in.Actor)
	}
	if err := u.Validate(); err != nil {
		return View{}, err
	}
	if err := r.store.CreateUpstream(ctx, u); err != nil {
		if errors.Is(err, domain.ErrConflict) {
			return View{}, &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("an upstream named %q already exists", in.Name), Err: err}
		}
		return View{}, fmt.Errorf("create upstream: %w", err)
	}
	r.log.Info("upstream created", "upstream", u.ID, "name", u.Name, "url", u.URL, "key_last4", u.KeyLast4,
		"priority", u.Priority, "weight", u.Weight, "group", u.Group, "enabled", u.Enabled, "by", in.Actor)
	r.reload(ctx, "create")
	return r.views(ctx, []ports.UpstreamRecord{u})[0], nil
}

// nameFree refuses a name another upstream than except has: names are for
// people, who would not tell two apart.
func (r *Registry) nameFree(ctx context.Context, name, except string) error {
	all, err := r.store.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("list upstreams: %w", err)
	}
	for _, u := range all {
		if u.Name == name && u.ID != except {
			return domain.Errorf(domain.KindConflict, "an upstream named %q already exists", name)
		}
	}
	return nil
}

// Update applies a partial update; a new api_key is sealed again.
func (r *Registry) Update(ctx context.Context, in UpdateInput) (View, error) {
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	if in.Name != nil {
		if err := r.nameFree(ctx, *in.Name, in.ID); err != nil {
			return View{}, err
		}
	}
	var sealed string
	if in.APIKey != nil {
		var err error
		if sealed, err = r.sealer.Seal(*in.APIKey, in.ID); err != nil {
			return View{}, fmt.Errorf("seal the api key of upstream %s: %w", in.ID, err)
		}
	}
	var reenabled bool
	u, err := r.mutate(ctx, in.ID, func(u *ports.UpstreamRecord) error {
		// mutate may run this more than once: decide from the record read.
		wasEnabled := u.Enabled
		if in.Name != nil {
			u.Name = *in.Name
		}
		if in.URL != nil {
			u.URL = *in.URL
		}
		if in.APIKey != nil {
			u.SealedKey, u.KeyLast4 = sealed, Last4(*in.APIKey)
		}
		if in.Priority != nil {
			u.Priority = *in.Priority
		}
		if in.Weight != nil {
			u.Weight = *in.Weight
		}
		if in.MaxConcurrency != nil {
			u.MaxConcurrency = *in.MaxConcurrency
		}
		if in.Models != nil {
			u.Models = slices.Clone(*in.Models)
			if len(u.Models) == 0 {
				u.Models = nil
			}
		}
		if in.Group != nil {
			u.Group = *in.Group
		}
		if in.Enabled != nil {
			setEnabled(u, *in.Enabled, in.Actor)
		}
		reenabled = !wasEnabled && u.Enabled
		return u.Validate()
	})
	if err != nil {
		return View{}, err
	}
	r.log.Info("upstream updated", "upstream", u.ID, "name", u.Name, "url", u.URL, "key_last4", u.KeyLast4,
		"key_changed", in.APIKey != nil, "priority", u.Priority, "weight", u.Weight, "group", u.Group, "enabled", u.Enabled, "by", in.Actor)
	r.reload(ctx, "update")
	if reenabled || in.APIKey != nil && u.Enabled {
		// A new key is the usual fix of a 401: this replica's disabled
		// state goes with the old one.
		r.poolEnable(u.ID)
	}
	return r.views(ctx, []ports.UpstreamRecord{u})[0], nil
}

// setEnabled turns u on or off; off keeps a reason already there (the
// relay's 401 says more than "disabled by admin").
func setEnabled(u *ports.UpstreamRecord, on bool, actor string) {
	switch {
	case on:
		u.Enabled, u.DisabledReason = true, ""
	case u.Enabled:
		u.Enabled, u.DisabledReason = false, disabledBy(actor)
	}
}

func disabledBy(actor string) string {
	if actor == "" {
		return "disabled by an operator"
	}
	return truncate("disabled by "+actor, MaxReasonLen)
}

// Disable turns an upstream off on every replica: it takes no new traffic.
// Disabling a disabled upstream changes nothing.
func (r *Registry) Disable(ctx context.Context, in DisableInput) (View, error) {
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	u, err := r.mutate(ctx, in.ID, func(u *ports.UpstreamRecord) error {
		setEnabled(u, false, in.Actor)
		return nil
	})
	if err != nil {
		return View{}, err
	}
	r.log.Info("upstream disabled", "upstream", u.ID, "name", u.Name, "reason", u.DisabledReason, "by", in.Actor)
	r.reload(ctx, "disable")
	return r.views(ctx, []ports.UpstreamRecord{u})[0], nil
}

// Enable turns an upstream on again, and clears a disable the relay itself
// set after a 401 or 403 (in the store, and in the pool: here at once, on
// other replicas at their next refresh).
func (r *Registry) Enable(ctx context.Context, in EnableInput) (View, error) {
	if err := in.Validate(); err != nil {
		return View{}, err
	}
	u, err := r.mutate(ctx, in.ID, func(u *ports.UpstreamRecord) error {
		setEnabled(u, true, in.Actor)
		return nil
	})
	if err != nil {
		return View{}, err
	}
	r.log.Info("upstream enabled", "upstream", u.ID, "name", u.Name, "by", in.Actor)
	r.reload(ctx, "enable")
	r.poolEnable(u.ID)
	return r.views(ctx, []ports.UpstreamRecord{u})[0], nil
}

// poolEnable clears the pool's disabled (or cooling) state of id, logging
// the change.
func (r *Registry) poolEnable(id string) {
	evs, err := r.pool.Enable(id)
	if err != nil {
		// Not in the pool: its record could not be applied (see the log).
		return
	}
	for _, ev := range evs {
		r.log.Info("upstream state changed", "event", ev)
	}
}

// Delete removes an upstream. Sessions pinned to it and objects it
// created are then skipped by selection as unknown.
func (r *Registry) Delete(ctx context.Context, in DeleteInput) error {
	if err := in.Validate(); err != nil {
		return err
	}
	err := r.store.DeleteUpstream(ctx, in.ID)
	if errors.Is(err, domain.ErrNotFound) {
		return notFound(err)
	}
	if err != nil {
		return fmt.Errorf("delete upstream: %w", err)
	}
	r.log.Info("upstream deleted", "upstream", in.ID)
	r.reload(ctx, "delete")
	return nil
}

// Test sends one cheap request to the upstream with its stored key,
// outside the pool (a disabled upstream is tested too), and reports the
// answer.
func (r *Registry) Test(ctx context.Context, in TestInput) (ports.UpstreamTest, error) {
	if err := in.Validate(); err != nil {
		return ports.UpstreamTest{}, err
	}
	u, err := r.get(ctx, in.ID)
	if err != nil {
		return ports.UpstreamTest{}, err
	}
	key, err := r.sealer.Open(u.SealedKey, u.ID)
	if err != nil {
		r.log.Error("open the api key of an upstream", "upstream", u.ID, "error", err.Error())
		return ports.UpstreamTest{}, &domain.Error{Kind: domain.KindUnavailable, Err: err,
			Message: "the stored api_key of upstream " + u.ID + " cannot be decrypted with this relay's UPSTREAM_KEY_SECRET; set the key again"}
	}
	res := r.runtime.Test(ctx, ports.UpstreamEndpoint{ID: u.ID, Name: u.Name, URL: u.URL, APIKey: key})
	r.log.Info("upstream tested", "upstream", u.ID, "ok", res.OK, "status", res.Status, "latency", res.Latency)
	return res, nil
}

// PersistDisable stores that the relay disabled upstream id, because it
// answered 401 or 403 (reason: the status and the upstream's message, with
// no secret), so that every replica and every restart stops using its key.
// The transport calls it off the request path and holding none of its own
// locks: it writes to the store, then applies the upstreams again through
// UpstreamRuntime.Apply. An upstream already disabled keeps its reason.
// This replica's pool has already disabled it (pool.Pool.Observe).
func (r *Registry) PersistDisable(ctx context.Context, id, reason string) error {
	reason = truncate(strings.TrimSpace(strings.ToValidUTF8(strings.Map(dropControl, reason), "")), MaxReasonLen)
	if reason == "" {
		reason = "the upstream refused its api key"
	}
	changed := false
	u, err := r.mutate(ctx, id, func(u *ports.UpstreamRecord) error {
		changed = u.Enabled
		if u.Enabled {
			u.Enabled, u.DisabledReason = false, reason
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("persist the disable of upstream %s: %w", id, err)
	}
	if changed {
		r.log.Warn("upstream disabled by the relay", "upstream", u.ID, "name", u.Name, "reason", reason)
		r.reload(ctx, "persist disable")
	}
	return nil
}

func dropControl(c rune) rune {
	if c < ' ' || c == 0x7f {
		return -1
	}
	return c
}

// maxUpdateAttempts bounds how often mutate re-applies a change after
// losing a race with another writer of the same upstream.
const maxUpdateAttempts = 5

// mutate reads upstream id, applies change and writes it back, but only if
// nobody changed it in between (the store compares updated_at); on
// ports.ErrStale it re-reads and re-applies change, which must therefore
// be safe to run more than once. A change that leaves the record as it was
// writes nothing.
func (r *Registry) mutate(ctx context.Context, id string, change func(*ports.UpstreamRecord) error) (ports.UpstreamRecord, error) {
	var err error
	for attempt := range maxUpdateAttempts {
		if attempt > 0 {
			if err := backoff(ctx, attempt); err != nil {
				return ports.UpstreamRecord{}, err
			}
		}
		var u ports.UpstreamRecord
		if u, err = r.get(ctx, id); err != nil {
			return ports.UpstreamRecord{}, err
		}
		before := u
		before.Models = slices.Clone(u.Models)
		prev := u.UpdatedAt
		if err = change(&u); err != nil {
			return ports.UpstreamRecord{}, err
		}
		if sameRecord(before, u) {
			return u, nil
		}
		// Strictly later than prev, so every write changes updated_at and a
		// writer that read the old row is always refused.
		u.UpdatedAt = r.now()
		if !u.UpdatedAt.After(prev) {
			u.UpdatedAt = prev.Add(time.Microsecond)
		}
		err = r.store.UpdateUpstream(ctx, u, prev)
		switch {
		case err == nil:
			return u, nil
		case errors.Is(err, ports.ErrStale):
			continue
		case errors.Is(err, domain.ErrNotFound):
			return ports.UpstreamRecord{}, notFound(err)
		case errors.Is(err, domain.ErrConflict):
			return ports.UpstreamRecord{}, &domain.Error{Kind: domain.KindConflict, Message: fmt.Sprintf("an upstream named %q already exists", u.Name), Err: err}
		default:
			return ports.UpstreamRecord{}, fmt.Errorf("update upstream: %w", err)
		}
	}
	// Still losing after several attempts: tell the client to retry (409).
	return ports.UpstreamRecord{}, &domain.Error{Kind: domain.KindConflict, Reason: domain.ReasonStale, Err: err,
		Message: "the upstream was changed concurrently too often; retry"}
}

func sameRecord(a, b ports.UpstreamRecord) bool {
	return a.Name == b.Name && a.Priority == b.Priority && a.Weight == b.Weight && a.MaxConcurrency == b.MaxConcurrency &&
		slices.Equal(a.Models, b.Models) && a.Group == b.Group && a.Enabled == b.Enabled && a.URL == b.URL &&
		a.SealedKey == b.SealedKey && a.KeyLast4 == b.KeyLast4 && a.DisabledReason == b.DisabledReason
}

// backoff waits a short random time before the attempt-th retry, so writers
// that collided do not collide again in lockstep.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(attempt) * int64(2*time.Millisecond))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("update upstream: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// Last4 is what views show of a key: its last four characters, or nothing
// for a key shorter than 12, where four would be a third of it.
func Last4(key string) string {
	if len(key) < 12 {
		return ""
	}
	return key[len(key)-4:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
