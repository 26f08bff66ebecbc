package upstream

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain/pool"
)

// observe reports one attempt's outcome to the pool, and the changes of
// state it caused to the log and the Observer. a must not be a canceled
// attempt, which says nothing about the upstream.
func (t *Transport) observe(tg *target, model string, a *attempt, now time.Time, ra time.Duration, hasRA, probe bool) {
	o := pool.Observation{Upstream: tg.id, Model: model, Probe: probe}
	if resp := a.resp; resp != nil {
		o.Status = resp.StatusCode
		o.Limits = readLimits(resp.Header)
		if hasRA {
			o.RetryAt = now.Add(ra)
		}
		if o.Status == http.StatusUnauthorized || o.Status == http.StatusForbidden {
			// Kept as the disable's reason.
			o.Message = errorMessage(resp, tg.key)
		}
	}
	if evs := t.pool.Observe(o); len(evs) > 0 {
		t.emit(evs)
	}
}

// The anthropic-ratelimit-* headers, canonical, so that reading them on
// every answer costs map lookups and no allocation.
var limitHeaders = [3][3]string{
	{"Anthropic-Ratelimit-Requests-Limit", "Anthropic-Ratelimit-Requests-Remaining", "Anthropic-Ratelimit-Requests-Reset"},
	{"Anthropic-Ratelimit-Input-Tokens-Limit", "Anthropic-Ratelimit-Input-Tokens-Remaining", "Anthropic-Ratelimit-Input-Tokens-Reset"},
	{"Anthropic-Ratelimit-Output-Tokens-Limit", "Anthropic-Ratelimit-Output-Tokens-Remaining", "Anthropic-Ratelimit-Output-Tokens-Reset"},
}

// readLimits parses the rate-limit headers of an answer. A budget whose
// limit is missing or malformed is left out (the pool ignores it); a reset
// that is not RFC 3339 is left zero.
func readLimits(h http.Header) pool.Limits {
	var l pool.Limits
	for i, b := range [3]*pool.Budget{&l.Requests, &l.InputTokens, &l.OutputTokens} {
		names := &limitHeaders[i]
		limit, ok := headerInt(h, names[0])
		if !ok || limit <= 0 {
			continue
		}
		remaining, ok := headerInt(h, names[1])
		if !ok {
			continue
		}
		b.Limit, b.Remaining = limit, max(remaining, 0)
		if vs := h[names[2]]; len(vs) > 0 {
			if at, err := time.Parse(time.RFC3339, vs[0]); err == nil {
				b.Reset = at
			}
		}
	}
	return l
}

func headerInt(h http.Header, name string) (int64, bool) {
	vs := h[name]
	if len(vs) == 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vs[0]), 10, 64)
	return n, err == nil
}

// errorMessage is the error.message of an error answer (read from the first
// maxErrorBody bytes, which are put back), with the upstream's key removed
// should it appear: a disable keeps it as its reason.
func errorMessage(resp *http.Response, key string) string {
	prefix, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(prefix), resp.Body), Closer: resp.Body}
	msg := gjson.GetBytes(prefix, "error.message").String()
	if typ := gjson.GetBytes(prefix, "error.type").String(); typ != "" {
		msg = strings.TrimSpace(typ + ": " + msg)
	}
	return scrub(msg, key)
}

// scrub removes secret from s.
func scrub(s, secret string) string {
	if secret == "" || !strings.Contains(s, secret) {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// emit logs each change of state with its cause, hands it to the
// Observer and, for a disable, to OnDisable; then reports every state.
func (t *Transport) emit(evs []pool.Event) {
	if len(evs) == 0 {
		return
	}
	targets := *t.targets.Load()
	ctx := context.Background()
	for _, ev := range evs {
		name := ev.Upstream
		if tg := targets[ev.Upstream]; tg != nil {
			name = tg.name
		}
		level := slog.LevelInfo
		if ev.To == pool.Disabled || ev.To == pool.Cooling {
			level = slog.LevelWarn
		}
		t.log.LogAttrs(ctx, level, "upstream state changed: "+ev.String(),
			slog.String("upstream_name", name), slog.Any("event", ev))
		t.obs.StateChanged(name, ev)
		if ev.To == pool.Disabled && ev.Model == "" && t.onDisable != nil {
			// Persisting may take a database round trip; no request waits
			// for it.
			go t.onDisable(ev.Upstream, disableReason(ev))
		}
	}
	t.obs.States(t.states())
}

// disableReason is what OnDisable persists: the status and the upstream's
// message.
func disableReason(ev pool.Event) string {
	r := "the upstream answered " + strconv.Itoa(ev.Status)
	if ev.Detail != "" {
		r += ": " + ev.Detail
	}
	return r
}

// states is every upstream of the pool as Observer.States reports it.
func (t *Transport) states() []UpstreamState {
	st := t.pool.Status()
	out := make([]UpstreamState, 0, len(st))
	for _, s := range st {
		u := UpstreamState{ID: s.Upstream.ID, Name: s.Upstream.Name, State: s.Health.State, Enabled: s.Upstream.Enabled}
		if u.Name == "" {
			u.Name = u.ID
		}
		for _, m := range s.Models {
			if m.State == pool.Cooling || m.State == pool.Probing {
				u.ModelsUnhealthy++
			}
		}
		out = append(out, u)
	}
	return out
}

// readPin is the upstream session is pinned to, "" when none or when the
// pin could not be read in time: a pin is a hint.
func (t *Transport) readPin(ctx context.Context, session string) string {
	if t.pins == nil {
		return ""
	}
	if !t.pinsLocal {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.pinWait)
		defer cancel()
	}
	id, ok, err := t.pins.Get(ctx, session)
	if err != nil {
		t.log.LogAttrs(ctx, slog.LevelDebug, "session pin read failed; balancing instead", slog.String("error", err.Error()))
		return ""
	}
	if !ok {
		return ""
	}
	return id
}

// writePin pins session to id for ttl (renewing it when it is already
// there), even when the client has gone: the pin is for its next request.
func (t *Transport) writePin(ctx context.Context, session, id string, ttl time.Duration) {
	if t.pins == nil {
		return
	}
	if !t.pinsLocal {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), t.pinWait)
		defer cancel()
	}
	if err := t.pins.Set(ctx, session, id, ttl); err != nil {
		t.log.LogAttrs(ctx, slog.LevelDebug, "session pin write failed", slog.String("upstream", id), slog.String("error", err.Error()))
	}
}
