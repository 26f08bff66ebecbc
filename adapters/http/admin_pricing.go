package httpadapter

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/ports"
)

func (h *strictHandlers) GetPricing(ctx context.Context, _ api.GetPricingRequestObject) (api.GetPricingResponseObject, error) {
	v, err := h.s.admin.Pricing(ctx)
	if err != nil {
		return nil, err
	}
	out, err := toAPIPricing(v)
	if err != nil {
		return nil, err
	}
	return api.GetPricing200JSONResponse(out), nil
}

func (h *strictHandlers) PutPricing(ctx context.Context, req api.PutPricingRequestObject) (api.PutPricingResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	in := admin.PutPricesInput{Table: req.Body.Table, Actor: adminFrom(ctx)}
	if req.Body.Comment != nil {
		in.Comment = *req.Body.Comment
	}
	v, err := h.s.admin.PutPrices(ctx, in)
	if err != nil {
		return nil, err
	}
	out, err := toAPIPricing(v)
	if err != nil {
		return nil, err
	}
	return api.PutPricing200JSONResponse(out), nil
}

func (h *strictHandlers) ExtendPricing(ctx context.Context, req api.ExtendPricingRequestObject) (api.ExtendPricingResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	b := req.Body
	in := admin.ExtendPricesInput{Version: b.Version, Models: b.Models, Actor: adminFrom(ctx)}
	if b.BaseVersion != nil {
		in.BaseVersion = *b.BaseVersion
	}
	if b.Comment != nil {
		in.Comment = *b.Comment
	}
	v, err := h.s.admin.ExtendPrices(ctx, in)
	if err != nil {
		return nil, err
	}
	out, err := toAPIPricing(v)
	if err != nil {
		return nil, err
	}
	return api.ExtendPricing200JSONResponse(out), nil
}

func (h *strictHandlers) ListPricingVersions(ctx context.Context, _ api.ListPricingVersionsRequestObject) (api.ListPricingVersionsResponseObject, error) {
	vs, err := h.s.admin.PriceVersions(ctx)
	if err != nil {
		return nil, err
	}
	out := api.ListPricingVersions200JSONResponse{Data: make([]api.PriceVersion, 0, len(vs))}
	for _, v := range vs {
		out.Data = append(out.Data, toAPIPriceVersion(v))
	}
	return out, nil
}

func (h *strictHandlers) GetPricingVersion(ctx context.Context, req api.GetPricingVersionRequestObject) (api.GetPricingVersionResponseObject, error) {
	v, err := h.s.admin.PriceVersion(ctx, req.Version)
	if err != nil {
		return nil, err
	}
	if !json.Valid(v.Table) {
		return nil, fmt.Errorf("price table version %q is not stored as JSON", v.Version)
	}
	m := toAPIPriceVersion(v)
	return api.GetPricingVersion200JSONResponse{Version: m.Version, CreatedAt: m.CreatedAt, CreatedBy: m.CreatedBy,
		Comment: m.Comment, Table: json.RawMessage(v.Table)}, nil
}

func toAPIPriceVersion(v ports.PriceTableVersion) api.PriceVersion {
	return api.PriceVersion{Version: v.Version, CreatedAt: nonZeroTime(v.CreatedAt), CreatedBy: v.CreatedBy, Comment: v.Comment}
}

func toAPIPricing(v admin.PricingView) (api.Pricing, error) {
	t := v.Table
	// Entries encode in the table's own format (decimal strings), which
	// is what a PUT takes back.
	models, err := json.Marshal(t.Models)
	if err != nil {
		return api.Pricing{}, fmt.Errorf("encode price table %q: %w", t.Version, err)
	}
	out := api.Pricing{
		Version: t.Version, Source: t.Source, Retrieved: t.Retrieved, Comment: t.Comment, Models: models,
		UnpricedModels: make([]api.UnpricedModel, 0, len(v.Unpriced)),
	}
	if len(t.Sources) > 0 {
		src := t.Sources
		out.Sources = &src
	}
	// The spec's values are the domain's; the zero policy refuses.
	out.Policy.Unpriced = api.PricingPolicyUnpriced(pricing.UnpricedRefuse)
	if v.Policy.Unpriced == pricing.UnpricedFallback {
		out.Policy.Unpriced = api.PricingPolicyUnpriced(pricing.UnpricedFallback)
		out.Policy.FallbackModel = nonEmpty(v.Policy.FallbackModel)
	}
	for _, u := range v.Unpriced {
		out.UnpricedModels = append(out.UnpricedModels, api.UnpricedModel{Model: u.Model, Requests: u.Requests,
			FirstSeen: u.FirstSeen.UTC(), LastSeen: u.LastSeen.UTC()})
	}
	return out, nil
}
