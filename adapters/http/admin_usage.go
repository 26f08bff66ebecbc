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

func (h *strictHandlers) AdminUsageSeries(ctx context.Context, req api.AdminUsageSeriesRequestObject) (api.AdminUsageSeriesResponseObject, error) {
	in := admin.SeriesInput{From: req.Params.From, To: req.Params.To}
	if req.Params.Step != nil {
		in.Step = admin.SeriesStep(*req.Params.Step)
	}
	r, err := h.s.admin.UsageSeries(ctx, in)
	if err != nil {
		return nil, err
	}
	return api.AdminUsageSeries200JSONResponse(toAPISeries(r)), nil
}

func (h *strictHandlers) AdminUsageLogs(ctx context.Context, req api.AdminUsageLogsRequestObject) (api.AdminUsageLogsResponseObject, error) {
	p := req.Params
	in := admin.LogsInput{KeyID: p.KeyId, From: p.From, To: p.To, Status: p.Status, Model: p.Model, Upstream: p.Upstream,
		RefusalsOnly: p.RefusalsOnly != nil && *p.RefusalsOnly}
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

func (h *strictHandlers) RepriceUsage(ctx context.Context, req api.RepriceUsageRequestObject) (api.RepriceUsageResponseObject, error) {
	if req.Body == nil {
		return nil, errMissingBody
	}
	b := req.Body
	r, err := h.s.admin.Reprice(ctx, admin.RepriceInput{From: b.From, To: b.To, Apply: b.Apply != nil && *b.Apply})
	if err != nil {
		return nil, err
	}
	return api.RepriceUsage200JSONResponse(toAPIRepriceReport(r)), nil
}

func toAPIRepriceReport(r admin.RepriceReport) api.RepriceReport {
	out := api.RepriceReport{
		From: r.From.UTC(), To: r.To.UTC(), PriceVersion: r.PriceVersion, Apply: r.Apply,
		Examined: r.Examined, Skipped: r.Skipped, Changed: r.Changed, Applied: r.Applied, Unpriced: r.Unpriced,
		KeysReset: r.KeysReset, OldTotalUsd: r.OldTotal.USD(), NewTotalUsd: r.NewTotal.USD(),
		DifferenceUsd: r.Difference().USD(), ByModel: make([]api.RepriceModel, 0, len(r.ByModel)),
		ModelsOmitted: r.ModelsOmitted,
	}
	for _, m := range r.ByModel {
		out.ByModel = append(out.ByModel, api.RepriceModel{Model: m.Model, Changed: m.Changed,
			OldUsd: m.Old.USD(), NewUsd: m.New.USD(), DifferenceUsd: m.Difference().USD()})
	}
	return out
}
