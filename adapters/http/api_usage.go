package httpadapter

import (
	"context"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain/admin"
)

// The key-holder views take the key id from authentication only.

func (h *strictHandlers) KeyUsage(ctx context.Context, req api.KeyUsageRequestObject) (api.KeyUsageResponseObject, error) {
	k, err := keyFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.s.admin.KeyUsage(ctx, admin.KeyUsageInput{KeyID: k.ID, From: req.Params.From, To: req.Params.To})
	if err != nil {
		return nil, err
	}
	return api.KeyUsage200JSONResponse(toAPIKeyUsage(r)), nil
}

func (h *strictHandlers) KeyUsageDaily(ctx context.Context, req api.KeyUsageDailyRequestObject) (api.KeyUsageDailyResponseObject, error) {
	k, err := keyFrom(ctx)
	if err != nil {
		return nil, err
	}
	r, err := h.s.admin.KeyDaily(ctx, admin.KeyUsageInput{KeyID: k.ID, From: req.Params.From, To: req.Params.To})
	if err != nil {
		return nil, err
	}
	return api.KeyUsageDaily200JSONResponse(toAPIDailyUsage(r)), nil
}

func (h *strictHandlers) KeyUsageLogs(ctx context.Context, req api.KeyUsageLogsRequestObject) (api.KeyUsageLogsResponseObject, error) {
	k, err := keyFrom(ctx)
	if err != nil {
		return nil, err
	}
	in := admin.KeyLogsInput{KeyID: k.ID}
	if req.Params.Cursor != nil {
		in.Cursor = *req.Params.Cursor
	}
	if req.Params.Limit != nil {
		in.Limit = *req.Params.Limit
	}
	page, err := h.s.admin.KeyLogs(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.KeyUsageLogs200JSONResponse(toAPILogList(page)), nil
}

func (h *strictHandlers) KeyQuota(ctx context.Context, _ api.KeyQuotaRequestObject) (api.KeyQuotaResponseObject, error) {
	k, err := keyFrom(ctx)
	if err != nil {
		return nil, err
	}
	q, err := h.s.admin.KeyQuota(ctx, k.ID)
	if err != nil {
		return nil, err
	}
	return api.KeyQuota200JSONResponse(toAPIQuota(q)), nil
}
