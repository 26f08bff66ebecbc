package httpadapter

import (
	"context"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
)

var errMissingBody = domain.Invalidf("a JSON request body is required")

func (h *strictHandlers) ListTiers(ctx context.Context, _ api.ListTiersRequestObject) (api.ListTiersResponseObject, error) {
	ts, err := h.s.admin.ListTiers(ctx)
	if err != nil {
		return nil, err
	}
	out := api.ListTiers200JSONResponse{Data: make([]api.Tier, 0, len(ts))}
	for _, t := range ts {
		out.Data = append(out.Data, toAPITier(t))
	}
	return out, nil
}

func (h *strictHandlers) PutTier(ctx context.Context, req api.PutTierRequestObject) (api.PutTierResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	t, err := h.s.admin.PutTier(ctx, toPutTierInput(req.Name, *req.Body))
	if err != nil {
		return nil, err
	}
	return api.PutTier200JSONResponse(toAPITier(t)), nil
}

func (h *strictHandlers) DeleteTier(ctx context.Context, req api.DeleteTierRequestObject) (api.DeleteTierResponseObject, error) {
	if err := h.s.admin.DeleteTier(ctx, req.Name); err != nil {
		return nil, err
	}
	return api.DeleteTier204Response{}, nil
}
