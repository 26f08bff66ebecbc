package upstreams

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/ports"
)

// Load reads every stored upstream, re-seals keys under an older sealing
// key (when the sealer is a KeyRotator: once per start, see the package
// doc), opens the keys and applies the upstreams to the pool and the
// transport. An upstream whose key does not open is applied disabled, with
// the reason logged and shown in its view; only a store that cannot be
// read, or a pool or transport that refuses the upstreams, fails it.
func (r *Registry) Load(ctx context.Context) error {
	recs, err := r.store.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("load upstreams: %w", err)
	}
	recs = r.rotate(ctx, recs)
	if err := r.apply(recs); err != nil {
		return fmt.Errorf("load upstreams: %w", err)
	}
	return nil
}

// Seed stores the configuration's upstreams if none is stored yet (the
// first start); after that the database is authoritative, and a
// configured upstream that differs from the stored one of its id is only
// warned about. Upstreams without an api_key are not seeded, so a relay
// first started without UPSTREAM_API_KEY seeds the key given on a later
// start.
func (r *Registry) Seed(ctx context.Context, seeds []SeedUpstream) error {
	ids, names := map[string]bool{}, map[string]bool{}
	var recs []ports.UpstreamRecord
	now := r.now()
	for _, s := range seeds {
		if err := s.Validate(); err != nil {
			return fmt.Errorf("seed upstream %q: %w", s.ID, err)
		}
		if ids[s.ID] || names[s.Name] {
			return domain.Invalidf("seed upstreams: the id or name %q appears twice", s.ID)
		}
		ids[s.ID], names[s.Name] = true, true
		if s.APIKey == "" {
			r.log.Info("configured upstream has no api_key; not seeded", "upstream", s.ID)
			continue
		}
		sealed, err := r.sealer.Seal(s.APIKey, s.ID)
		if err != nil {
			return fmt.Errorf("seal the api key of upstream %s: %w", s.ID, err)
		}
		u := ports.UpstreamRecord{
			Upstream: pool.Upstream{ID: s.ID, Name: s.Name, Priority: s.Priority, Weight: s.Weight, Group: s.Group, Enabled: s.Enabled},
			URL:      s.URL, SealedKey: sealed, KeyLast4: Last4(s.APIKey), CreatedAt: now, UpdatedAt: now,
		}
		if !s.Enabled {
			u.DisabledReason = "disabled in the configuration"
		}
		if err := u.Validate(); err != nil {
			return fmt.Errorf("seed upstream %q: %w", s.ID, err)
		}
		recs = append(recs, u)
	}
	if len(recs) == 0 {
		return nil
	}
	if err := r.store.SeedUpstreams(ctx, recs); err != nil {
		return fmt.Errorf("seed upstreams: %w", err)
	}
	stored, err := r.store.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("seed upstreams: %w", err)
	}
	for _, s := range seeds {
		if s.APIKey != "" {
			r.warnIfDiffers(s, stored)
		}
	}
	return nil
}

// warnIfDiffers says when the configuration names an upstream the stored
// one differs from: an operator who changed UPSTREAM_API_KEY or the URL
// after the first start would otherwise wonder why nothing changed.
func (r *Registry) warnIfDiffers(s SeedUpstream, stored []ports.UpstreamRecord) {
	i := slices.IndexFunc(stored, func(u ports.UpstreamRecord) bool { return u.ID == s.ID })
	if i < 0 {
		r.log.Warn("configured upstream is not stored (deleted through the admin API?); the database is authoritative",
			"upstream", s.ID)
		return
	}
	u := stored[i]
	var differs []string
	if u.URL != s.URL {
		differs = append(differs, "url")
	}
	if key, err := r.sealer.Open(u.SealedKey, u.ID); err == nil && key != s.APIKey {
		differs = append(differs, "api_key")
	}
	if len(differs) > 0 {
		r.log.Warn("configured upstream differs from the stored one, which is authoritative; change it with `relay upstreams update`",
			"upstream", s.ID, "fields", differs)
	}
}

// RefreshEvery re-reads the stored upstreams every interval (DefaultRefresh
// when 0 or less) and applies what changed, until ctx ends, so that
// changes made through another replica apply here too. A failure is logged
// once, and so is the recovery.
func (r *Registry) RefreshEvery(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultRefresh
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.refresh(ctx)
		}
	}
}

func (r *Registry) refresh(ctx context.Context) {
	err := r.loadStored(ctx)
	r.mu.Lock()
	was := r.refreshFailing
	r.refreshFailing = err != nil
	r.mu.Unlock()
	switch {
	case err != nil && !was && ctx.Err() == nil:
		r.log.Warn("refresh upstreams; the ones applied last stay in use", "error", err.Error())
	case err == nil && was:
		r.log.Info("refresh upstreams works again")
	}
}

// loadStored is Load without the re-sealing.
func (r *Registry) loadStored(ctx context.Context) error {
	recs, err := r.store.ListUpstreams(ctx)
	if err != nil {
		return fmt.Errorf("list upstreams: %w", err)
	}
	return r.apply(recs)
}

// reload applies the stored upstreams after a use case changed one. The
// change is stored already, so a failure here is logged, not returned: the
// next refresh applies it.
func (r *Registry) reload(ctx context.Context, after string) {
	if err := r.loadStored(context.WithoutCancel(ctx)); err != nil {
		r.log.Error("apply upstreams after "+after+"; the next refresh retries", "error", err.Error())
	}
}

// rotate re-seals, under the sealer's current key, every key sealed under
// an older one, and returns recs as stored after it. A key that does not
// open, or a record changed meanwhile, is left for the next start.
func (r *Registry) rotate(ctx context.Context, recs []ports.UpstreamRecord) []ports.UpstreamRecord {
	rot, ok := r.sealer.(KeyRotator)
	if !ok {
		return recs
	}
	out := slices.Clone(recs)
	n := 0
	for i, u := range out {
		if !rot.NeedsRotation(u.SealedKey) {
			continue
		}
		key, err := r.sealer.Open(u.SealedKey, u.ID)
		if err != nil {
			continue // apply reports it
		}
		sealed, err := r.sealer.Seal(key, u.ID)
		if err != nil {
			r.log.Error("re-seal the api key of an upstream", "upstream", u.ID, "error", err.Error())
			continue
		}
		next := u
		next.SealedKey = sealed
		next.UpdatedAt = r.now()
		if !next.UpdatedAt.After(u.UpdatedAt) {
			next.UpdatedAt = u.UpdatedAt.Add(time.Microsecond)
		}
		if err := r.store.UpdateUpstream(ctx, next, u.UpdatedAt); err != nil {
			r.log.Warn("re-seal the api key of an upstream; left for the next start", "upstream", u.ID, "error", err.Error())
			continue
		}
		out[i] = next
		n++
	}
	if n > 0 {
		r.log.Info("re-sealed upstream api keys under the current key", "count", n)
	}
	return out
}

// apply hands recs to the transport and the pool, unless they are what was
// applied last. The transport always holds every endpoint the pool may
// pick: one removed leaves the transport after the pool, one added enters
// it before.
func (r *Registry) apply(recs []ports.UpstreamRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.unchanged(recs) {
		return nil
	}
	byID := make(map[string]ports.UpstreamRecord, len(recs))
	invalid := map[string]time.Time{}
	sealFailed := map[string]string{}
	ups := make([]pool.Upstream, 0, len(recs))
	eps := make([]ports.UpstreamEndpoint, 0, len(recs))
	for _, u := range recs {
		p := u.Upstream
		p.Models = slices.Clone(u.Models)
		if err := p.Validate(); err != nil {
			// A stored row the pool refuses (written by hand?): leave it out
			// rather than every upstream.
			if at, known := r.invalid[u.ID]; !known || !at.Equal(u.UpdatedAt) {
				r.log.Error("stored upstream is invalid; not applied", "upstream", u.ID, "error", err.Error())
			}
			invalid[u.ID] = u.UpdatedAt
			continue
		}
		key, err := r.sealer.Open(u.SealedKey, u.ID)
		if err != nil {
			why := "its api_key cannot be decrypted with this relay's UPSTREAM_KEY_SECRET (or SECRET_KEY); " +
				"give the secret it was stored under as upstream.previous_key_secrets, or set the key again"
			sealFailed[u.ID] = why
			if _, known := r.sealFailed[u.ID]; !known {
				r.log.Error("upstream disabled on this replica: "+why, "upstream", u.ID, "name", u.Name, "error", err.Error())
			}
			p.Enabled, key = false, ""
		}
		byID[u.ID] = u
		ups = append(ups, p)
		eps = append(eps, ports.UpstreamEndpoint{ID: u.ID, Name: u.Name, URL: u.URL, APIKey: key})
	}
	var removed bool
	for id := range r.applied {
		if _, ok := byID[id]; !ok {
			removed = true
		}
	}
	first := eps
	if removed {
		// Until the pool has let go of them, the removed ones stay reachable.
		first = slices.Clone(eps)
		for id, u := range r.applied {
			if _, ok := byID[id]; !ok {
				first = append(first, r.lastEndpoint(u))
			}
		}
	}
	if err := r.runtime.Apply(first); err != nil {
		return fmt.Errorf("apply upstreams to the transport: %w", err)
	}
	if err := r.pool.SetUpstreams(ups); err != nil {
		return fmt.Errorf("apply upstreams to the pool: %w", err)
	}
	if removed {
		if err := r.runtime.Apply(eps); err != nil {
			return fmt.Errorf("apply upstreams to the transport: %w", err)
		}
	}
	// An operator's enable made on another replica: clear this replica's
	// own disabled state too.
	for id, u := range byID {
		if prev, ok := r.applied[id]; ok && !prev.Enabled && u.Enabled {
			if _, failed := sealFailed[id]; !failed {
				r.poolEnable(id)
			}
		}
	}
	r.applied, r.invalid, r.sealFailed, r.loaded = byID, invalid, sealFailed, true
	return nil
}

// lastEndpoint is the endpoint u was applied with, its key opened again
// (an upstream being removed stays reachable for one more step).
func (r *Registry) lastEndpoint(u ports.UpstreamRecord) ports.UpstreamEndpoint {
	key, err := r.sealer.Open(u.SealedKey, u.ID)
	if err != nil {
		key = ""
	}
	return ports.UpstreamEndpoint{ID: u.ID, Name: u.Name, URL: u.URL, APIKey: key}
}

// unchanged reports whether recs are exactly what was applied last (mu
// held), so that a refresh that finds nothing new costs no key opening and
// no transport change.
func (r *Registry) unchanged(recs []ports.UpstreamRecord) bool {
	if !r.loaded || len(recs) != len(r.applied)+len(r.invalid) {
		return false
	}
	for _, u := range recs {
		if at, ok := r.invalid[u.ID]; ok {
			if !at.Equal(u.UpdatedAt) {
				return false
			}
			continue
		}
		prev, ok := r.applied[u.ID]
		if !ok || !prev.UpdatedAt.Equal(u.UpdatedAt) || !sameRecord(prev, u) {
			return false
		}
	}
	return true
}
