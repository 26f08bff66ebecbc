package httpadapter

import (
	"context"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
)

func (h *strictHandlers) AdminUsage(ctx context.Context, req api.AdminUsageRequestObject) (api.AdminUsageResponseObject, error) {
	in := admin.AdminUsageInput{KeyID: req.Params.KeyId, From: req.Params.From, To: req.Params.To}
	if req.Params.GroupBy != nil {
		in.GroupBy = domain.GroupBy(*req.Params.GroupBy)
	}
	r, err := h.s.admin.AdminUsage(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.AdminUsage200JSONResponse(toAPIAdminUsage(r)), nil
}

func (h *strictHandlers) AdminUsageLogs(ctx context.Context, req api.AdminUsageLogsRequestObject) (api.AdminUsageLogsResponseObject, error) {
	p := req.Params
	in := admin.LogsInput{KeyID: p.KeyId, From: p.From, To: p.To, Status: p.Status}
	if p.Cursor != nil {
		in.Cursor = *p.Cursor
	}
	if p.Limit != nil {
		in.Limit = *p.Limit
	}
	page, err := h.s.admin.AdminLogs(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.AdminUsageLogs200JSONResponse(toAPILogList(page)), nil
}
