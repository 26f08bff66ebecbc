package httpadapter

import (
	"context"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
	"github.com/relaystation/relay/domain/upstreams"
	"github.com/relaystation/relay/ports"
)

// errNoUpstreams answers the upstream routes of a server built without
// the upstream registry.
var errNoUpstreams = &domain.Error{Kind: domain.KindUnavailable, Message: "this relay does not manage its upstreams"}

func (h *strictHandlers) registry() (*upstreams.Registry, error) {
	if h.s.upstreams == nil {
		return nil, errNoUpstreams
	}
	return h.s.upstreams, nil
}

func (h *strictHandlers) ListUpstreams(ctx context.Context, _ api.ListUpstreamsRequestObject) (api.ListUpstreamsResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	vs, err := reg.List(ctx, upstreams.ListInput{})
	if err != nil {
		return nil, err
	}
	out := api.ListUpstreams200JSONResponse{Data: make([]api.Upstream, 0, len(vs))}
	for _, v := range vs {
		out.Data = append(out.Data, toAPIUpstream(v))
	}
	return out, nil
}

func (h *strictHandlers) CreateUpstream(ctx context.Context, req api.CreateUpstreamRequestObject) (api.CreateUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	if req.Body == nil {
		return nil, errMissingBody
	}
	v, err := reg.Create(ctx, toCreateUpstreamInput(*req.Body, adminFrom(ctx)))
	if err != nil {
		return nil, err
	}
	return api.CreateUpstream201JSONResponse(toAPIUpstream(v)), nil
}

func (h *strictHandlers) GetUpstream(ctx context.Context, req api.GetUpstreamRequestObject) (api.GetUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	v, err := reg.Get(ctx, upstreams.GetInput{ID: req.Id})
	if err != nil {
		return nil, err
	}
	return api.GetUpstream200JSONResponse(toAPIUpstream(v)), nil
}

func (h *strictHandlers) UpdateUpstream(ctx context.Context, req api.UpdateUpstreamRequestObject) (api.UpdateUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	if req.Body == nil {
		return nil, errMissingBody
	}
	in, err := toUpdateUpstreamInput(req.Id, *req.Body, adminFrom(ctx))
	if err != nil {
		return nil, err
	}
	v, err := reg.Update(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateUpstream200JSONResponse(toAPIUpstream(v)), nil
}

func (h *strictHandlers) DeleteUpstream(ctx context.Context, req api.DeleteUpstreamRequestObject) (api.DeleteUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	if err := reg.Delete(ctx, upstreams.DeleteInput{ID: req.Id}); err != nil {
		return nil, err
	}
	return api.DeleteUpstream204Response{}, nil
}

func (h *strictHandlers) DisableUpstream(ctx context.Context, req api.DisableUpstreamRequestObject) (api.DisableUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	v, err := reg.Disable(ctx, upstreams.DisableInput{ID: req.Id, Actor: adminFrom(ctx)})
	if err != nil {
		return nil, err
	}
	return api.DisableUpstream200JSONResponse(toAPIUpstream(v)), nil
}

func (h *strictHandlers) EnableUpstream(ctx context.Context, req api.EnableUpstreamRequestObject) (api.EnableUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	v, err := reg.Enable(ctx, upstreams.EnableInput{ID: req.Id, Actor: adminFrom(ctx)})
	if err != nil {
		return nil, err
	}
	return api.EnableUpstream200JSONResponse(toAPIUpstream(v)), nil
}

func (h *strictHandlers) TestUpstream(ctx context.Context, req api.TestUpstreamRequestObject) (api.TestUpstreamResponseObject, error) {
	reg, err := h.registry()
	if err != nil {
		return nil, err
	}
	res, err := reg.Test(ctx, upstreams.TestInput{ID: req.Id})
	if err != nil {
		return nil, err
	}
	return api.TestUpstream200JSONResponse(toAPIUpstreamTest(res)), nil
}

func toCreateUpstreamInput(b api.CreateUpstreamRequest, actor string) upstreams.CreateInput {
	in := upstreams.CreateInput{Name: b.Name, URL: b.Url, Weight: b.Weight, Enabled: b.Enabled, Actor: actor}
	if b.ApiKey != nil {
		in.APIKey = *b.ApiKey
	}
	if b.Priority != nil {
		in.Priority = *b.Priority
	}
	if b.MaxConcurrency != nil {
		in.MaxConcurrency = *b.MaxConcurrency
	}
	if b.Models != nil {
		in.Models = *b.Models
	}
	if b.Group != nil {
		in.Group = *b.Group
	}
	return in
}

func toUpdateUpstreamInput(id string, b api.UpdateUpstreamRequest, actor string) (upstreams.UpdateInput, error) {
	in := upstreams.UpdateInput{
		ID: id, Name: b.Name, URL: b.Url, APIKey: b.ApiKey, Priority: b.Priority, Weight: b.Weight,
		Models: b.Models, Group: b.Group, Enabled: b.Enabled, Actor: actor,
	}
	conc, err := decodeNullable[int](b.MaxConcurrency, "max_concurrency must be an integer of at least 0, or null for no cap")
	if err != nil {
		return upstreams.UpdateInput{}, err
	}
	if conc.Set {
		n := 0 // null: no cap
		if conc.Value != nil {
			n = *conc.Value
		}
		in.MaxConcurrency = &n
	}
	return in, nil
}

func toAPIUpstream(v upstreams.View) api.Upstream {
	u := v.Record
	out := api.Upstream{
		Id: u.ID, Name: u.Name, Url: u.URL, ApiKeyLast4: nonEmpty(u.KeyLast4), Priority: u.Priority, Weight: u.Weight,
		Models: nonNil(u.Models), Group: u.Group, Enabled: u.Enabled, DisabledReason: nonEmpty(u.DisabledReason),
		State: api.UpstreamState(v.Health.State.String()), StateReason: nonEmpty(v.Health.Reason),
		StateSince: nonZeroTime(v.Health.Since), StateUntil: nonZeroTime(v.Health.Until),
		InFlight: v.InFlight, RecentErrors: v.RecentErrors, LastProbe: toAPIProbe(v.Health.LastProbe),
		Headroom: toAPIHeadroom(v.Headroom), CacheHitRate: v.CacheHitRate, Loaded: v.Loaded,
		ModelsState: make([]api.UpstreamModelState, 0, len(v.Models)),
		CreatedAt:   u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(),
	}
	if u.MaxConcurrency > 0 {
		c := u.MaxConcurrency
		out.MaxConcurrency = &c
	}
	for _, m := range v.Models {
		out.ModelsState = append(out.ModelsState, api.UpstreamModelState{
			Model: m.Model, State: api.UpstreamModelStateState(m.Health.State.String()), StateReason: nonEmpty(m.Health.Reason),
			StateSince: nonZeroTime(m.Health.Since), StateUntil: nonZeroTime(m.Health.Until),
			LastProbe: toAPIProbe(m.Health.LastProbe), Headroom: toAPIHeadroom(m.Headroom),
		})
	}
	return out
}

func toAPIProbe(p *upstreams.Probe) *api.UpstreamProbe {
	if p == nil {
		return nil
	}
	return &api.UpstreamProbe{At: p.At.UTC(), Ok: p.OK, Model: nonEmpty(p.Model)}
}

func toAPIHeadroom(h *upstreams.Headroom) *api.UpstreamHeadroom {
	if h == nil {
		return nil
	}
	return &api.UpstreamHeadroom{
		Requests: toAPIReading(h.Limits.Requests), InputTokens: toAPIReading(h.Limits.InputTokens),
		OutputTokens: toAPIReading(h.Limits.OutputTokens), ReadAt: h.ReadAt.UTC(), Model: nonEmpty(h.Model),
	}
}

func toAPIReading(b pool.Budget) *api.RateLimitReading {
	if b.Limit <= 0 {
		return nil
	}
	return &api.RateLimitReading{Limit: b.Limit, Remaining: b.Remaining, Reset: nonZeroTime(b.Reset)}
}

func toAPIUpstreamTest(r ports.UpstreamTest) api.UpstreamTestResult {
	out := api.UpstreamTestResult{Ok: r.OK, LatencyMs: float64(r.Latency.Microseconds()) / 1000, Message: r.Message}
	if r.Status != 0 {
		st := r.Status
		out.Status = &st
	}
	return out
}
