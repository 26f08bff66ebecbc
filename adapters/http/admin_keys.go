package httpadapter

import (
	"context"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain/admin"
)

func (h *strictHandlers) CreateKey(ctx context.Context, req api.CreateKeyRequestObject) (api.CreateKeyResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	k, err := h.s.admin.IssueKey(ctx, toIssueKeyInput(*req.Body))
	if err != nil {
		return nil, err
	}
	return api.CreateKey201JSONResponse(toAPICreatedKey(k)), nil
}

func (h *strictHandlers) ListKeys(ctx context.Context, req api.ListKeysRequestObject) (api.ListKeysResponseObject, error) {
	p := req.Params
	in := admin.ListKeysInput{Active: p.Active}
	if p.Name != nil {
		in.Name = *p.Name
	}
	if p.Cursor != nil {
		in.Cursor = *p.Cursor
	}
	if p.Limit != nil {
		in.Limit = *p.Limit
	}
	page, err := h.s.admin.ListKeys(ctx, in)
	if err != nil {
		return nil, err
	}
	out := api.ListKeys200JSONResponse{Data: make([]api.APIKey, 0, len(page.Keys))}
	for i, k := range page.Keys {
		a := toAPIKey(k)
		if i < len(page.Quotas) && page.Quotas[i] != nil {
			v := toAPIQuotaView(*page.Quotas[i])
			a.Quota = &v
		}
		out.Data = append(out.Data, a)
	}
	if page.NextCursor != "" {
		c := page.NextCursor
		out.NextCursor = &c
	}
	return out, nil
}

func (h *strictHandlers) GetKey(ctx context.Context, req api.GetKeyRequestObject) (api.GetKeyResponseObject, error) {
	k, err := h.s.admin.GetKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetKey200JSONResponse(toAPIKey(k)), nil
}

func (h *strictHandlers) UpdateKey(ctx context.Context, req api.UpdateKeyRequestObject) (api.UpdateKeyResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	in, err := toUpdateKeyInput(req.Id, *req.Body)
	if err != nil {
		return nil, err
	}
	k, err := h.s.admin.UpdateKey(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateKey200JSONResponse(toAPIKey(k)), nil
}

func (h *strictHandlers) DisableKey(ctx context.Context, req api.DisableKeyRequestObject) (api.DisableKeyResponseObject, error) {
	k, err := h.s.admin.DisableKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.DisableKey200JSONResponse(toAPIKey(k)), nil
}

func (h *strictHandlers) EnableKey(ctx context.Context, req api.EnableKeyRequestObject) (api.EnableKeyResponseObject, error) {
	k, err := h.s.admin.EnableKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.EnableKey200JSONResponse(toAPIKey(k)), nil
}

func (h *strictHandlers) RotateKey(ctx context.Context, req api.RotateKeyRequestObject) (api.RotateKeyResponseObject, error) {
	k, err := h.s.admin.RotateKey(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.RotateKey200JSONResponse(toAPICreatedKey(k)), nil
}

func (h *strictHandlers) GetKeyQuota(ctx context.Context, req api.GetKeyQuotaRequestObject) (api.GetKeyQuotaResponseObject, error) {
	q, err := h.s.admin.KeyQuota(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetKeyQuota200JSONResponse(toAPIQuota(q)), nil
}

func (h *strictHandlers) DeleteKey(ctx context.Context, req api.DeleteKeyRequestObject) (api.DeleteKeyResponseObject, error) {
	if err := h.s.admin.DeleteKey(ctx, req.Id); err != nil {
		return nil, err
	}
	return api.DeleteKey204Response{}, nil
}

func (h *strictHandlers) BulkKeys(ctx context.Context, req api.BulkKeysRequestObject) (api.BulkKeysResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	r, err := h.s.admin.BulkKeys(ctx, admin.BulkKeysInput{
		Action: admin.BulkAction(req.Body.Action), IDs: req.Body.Ids, Actor: adminFrom(ctx),
	})
	if err != nil {
		return nil, err
	}
	return api.BulkKeys200JSONResponse(toAPIBulkResult(r)), nil
}
