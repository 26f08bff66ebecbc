package httpadapter

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/api"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/budget"
)

// Conversions between the generated API types and the domain. Generated
// types stop here; the domain never sees them.

func toAPIKey(k domain.APIKey) api.APIKey {
	return api.APIKey{
		Id:             k.ID,
		KeyPrefix:      k.KeyPrefix,
		Name:           k.Name,
		Description:    k.Description,
		TokenLimit:     k.TokenLimit,
		TokensUsed:     k.TokensUsed,
		RateLimitTier:  k.RateLimitTier,
		IsActive:       k.IsActive,
		ExpiresAt:      utcTime(k.ExpiresAt),
		AllowedIps:     domain.FormatPrefixes(k.AllowedIPs),
		AllowedDomains: nonNil(k.AllowedDomains),
		AllowedModels:  nonNil(k.AllowedModels),
		Budgets:        toAPIBudgets(k.Budgets),
		UpstreamGroup:  k.UpstreamGroup,
		CreatedAt:      k.CreatedAt.UTC(),
		UpdatedAt:      k.UpdatedAt.UTC(),
		LastUsedAt:     utcTime(k.LastUsedAt),
	}
}

func toAPICreatedKey(ik admin.IssuedKey) api.CreatedAPIKey {
	k := toAPIKey(ik.Key)
	return api.CreatedAPIKey{
		ApiKey:         ik.Secret,
		Id:             k.Id,
		KeyPrefix:      k.KeyPrefix,
		Name:           k.Name,
		Description:    k.Description,
		TokenLimit:     k.TokenLimit,
		TokensUsed:     k.TokensUsed,
		RateLimitTier:  k.RateLimitTier,
		IsActive:       k.IsActive,
		ExpiresAt:      k.ExpiresAt,
		AllowedIps:     k.AllowedIps,
		AllowedDomains: k.AllowedDomains,
		AllowedModels:  k.AllowedModels,
		Budgets:        k.Budgets,
		UpstreamGroup:  k.UpstreamGroup,
		CreatedAt:      k.CreatedAt,
		UpdatedAt:      k.UpdatedAt,
		LastUsedAt:     k.LastUsedAt,
	}
}

func toIssueKeyInput(b api.CreateKeyRequest) admin.IssueKeyInput {
	in := admin.IssueKeyInput{Name: b.Name, TokenLimit: b.TokenLimit, ExpiresAt: b.ExpiresAt}
	if b.Description != nil {
		in.Description = *b.Description
	}
	if b.RateLimitTier != nil {
		in.RateLimitTier = *b.RateLimitTier
	}
	if b.AllowedIps != nil {
		in.AllowedIPs = *b.AllowedIps
	}
	if b.AllowedDomains != nil {
		in.AllowedDomains = *b.AllowedDomains
	}
	if b.AllowedModels != nil {
		in.AllowedModels = *b.AllowedModels
	}
	if b.Budgets != nil {
		in.Budgets = toBudgetInputs(*b.Budgets)
	}
	if b.UpstreamGroup != nil {
		in.UpstreamGroup = *b.UpstreamGroup
	}
	return in
}

// toBudgetInputs passes each limit on as the decimal text it arrived as
// (a JSON number or string, never a float): the domain reads it exactly.
func toBudgetInputs(bs []api.BudgetInput) []admin.BudgetInput {
	out := make([]admin.BudgetInput, len(bs))
	for i, b := range bs {
		out[i] = admin.BudgetInput{Window: string(b.Window), LimitUSD: b.LimitUsd.String()}
		if b.TimeZone != nil {
			out[i].TimeZone = *b.TimeZone
		}
	}
	return out
}

func toAPIBudgets(bs []domain.KeyBudget) []api.Budget {
	out := make([]api.Budget, len(bs))
	for i, b := range bs {
		out[i] = api.Budget{Window: api.BudgetWindow(b.Window), LimitUsd: b.Limit.USD(), TimeZone: nonEmpty(b.TimeZone)}
	}
	return out
}

func toAPIMoneyBudgets(st []budget.Status) []api.MoneyBudgetStatus {
	out := make([]api.MoneyBudgetStatus, len(st))
	for i, s := range st {
		out[i] = api.MoneyBudgetStatus{
			Window: api.BudgetWindow(s.Budget.Window), TimeZone: nonEmpty(s.Budget.TimeZone),
			LimitUsd: s.Budget.Limit.USD(), UsedUsd: s.Used.USD(), ReservedUsd: s.Reserved.USD(),
			RemainingUsd: s.Remaining().USD(), ResetsAt: nonZeroTime(s.ResetsAt),
		}
	}
	return out
}

func toAPICost(b domain.CostBreakdown) api.CostBreakdown {
	return api.CostBreakdown{
		Input: b.Input.USD(), Output: b.Output.USD(), CacheWrite5m: b.CacheWrite5m.USD(), CacheWrite1h: b.CacheWrite1h.USD(),
		CacheRead: b.CacheRead.USD(), WebSearch: b.WebSearch.USD(), WebFetch: b.WebFetch.USD(),
	}
}

func toUpdateKeyInput(id uuid.UUID, b api.UpdateKeyRequest) (admin.UpdateKeyInput, error) {
	in := admin.UpdateKeyInput{
		ID: id, Name: b.Name, Description: b.Description, RateLimitTier: b.RateLimitTier,
		AllowedIPs: b.AllowedIps, AllowedDomains: b.AllowedDomains, AllowedModels: b.AllowedModels,
		UpstreamGroup: b.UpstreamGroup,
	}
	if b.Budgets != nil {
		bs := toBudgetInputs(*b.Budgets)
		in.Budgets = &bs
	}
	var err error
	if in.TokenLimit, err = decodeNullable[int64](b.TokenLimit, "token_limit must be an integer of at least 0, or null"); err != nil {
		return admin.UpdateKeyInput{}, err
	}
	if in.ExpiresAt, err = decodeNullable[time.Time](b.ExpiresAt, "expires_at must be an RFC 3339 time, or null"); err != nil {
		return admin.UpdateKeyInput{}, err
	}
	return in, nil
}

// decodeNullable tells an absent field (empty raw) from an explicit null.
func decodeNullable[T any](raw json.RawMessage, msg string) (admin.Nullable[T], error) {
	if len(raw) == 0 {
		return admin.Nullable[T]{}, nil
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return admin.Nullable[T]{Set: true}, nil
	}
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return admin.Nullable[T]{}, &domain.Error{Kind: domain.KindInvalid, Message: msg, Err: err}
	}
	return admin.Nullable[T]{Set: true, Value: &v}, nil
}

func toAPITier(t domain.Tier) api.Tier {
	return api.Tier{
		Name:           t.Name,
		Requests:       t.Requests,
		Period:         int(t.Period / time.Second),
		Tokens:         t.Tokens,
		MaxConcurrency: t.MaxConcurrency,
		CreatedAt:      t.CreatedAt.UTC(),
		UpdatedAt:      t.UpdatedAt.UTC(),
	}
}

func toPutTierInput(name string, b api.PutTierRequest) admin.PutTierInput {
	return admin.PutTierInput{
		Name: name, Requests: b.Requests, PeriodSeconds: b.Period, Tokens: b.Tokens, MaxConcurrency: b.MaxConcurrency,
	}
}

func toAPITotals(t domain.UsageTotals) api.UsageTotals {
	return api.UsageTotals{
		Requests:                 t.Requests,
		InputTokens:              t.Usage.InputTokens,
		OutputTokens:             t.Usage.OutputTokens,
		CacheCreationInputTokens: t.Usage.CacheCreationInputTokens,
		CacheReadInputTokens:     t.Usage.CacheReadInputTokens,
		TotalTokens:              t.Usage.Total(),
		CostUsd:                  t.CostTotal.USD(),
		Cost:                     toAPICost(t.Cost),
		CacheSavedUsd:            t.Cost.CacheSaved.USD(),
	}
}

func toAPIAdminUsage(r admin.UsageReport) api.AdminUsage {
	out := api.AdminUsage{From: r.From.UTC(), To: r.To.UTC(), Totals: toAPITotals(r.Totals), Groups: []api.UsageGroup{}}
	if r.GroupBy != domain.GroupNone {
		g := api.AdminUsageGroupBy(r.GroupBy)
		out.GroupBy = &g
	}
	for _, g := range r.Groups {
		t := toAPITotals(g)
		row := api.UsageGroup{
			Group: g.Group, Requests: t.Requests, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens,
			CacheCreationInputTokens: t.CacheCreationInputTokens, CacheReadInputTokens: t.CacheReadInputTokens,
			TotalTokens: t.TotalTokens, CostUsd: t.CostUsd, Cost: t.Cost, CacheSavedUsd: t.CacheSavedUsd,
		}
		if r.GroupBy == domain.GroupKey {
			name := g.KeyName
			row.KeyName = &name
		}
		out.Groups = append(out.Groups, row)
	}
	return out
}

func toAPIKeyUsage(r admin.UsageReport) api.KeyUsage {
	t := toAPITotals(r.Totals)
	out := api.KeyUsage{
		From: r.From.UTC(), To: r.To.UTC(), ByModel: []api.ModelUsage{},
		Requests: t.Requests, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens,
		CacheCreationInputTokens: t.CacheCreationInputTokens, CacheReadInputTokens: t.CacheReadInputTokens,
		TotalTokens: t.TotalTokens, CostUsd: t.CostUsd, Cost: t.Cost, CacheSavedUsd: t.CacheSavedUsd,
	}
	for _, g := range r.Groups {
		m := toAPITotals(g)
		out.ByModel = append(out.ByModel, api.ModelUsage{
			Model: g.Group, Requests: m.Requests, InputTokens: m.InputTokens, OutputTokens: m.OutputTokens,
			CacheCreationInputTokens: m.CacheCreationInputTokens, CacheReadInputTokens: m.CacheReadInputTokens,
			TotalTokens: m.TotalTokens, CostUsd: m.CostUsd, Cost: m.Cost, CacheSavedUsd: m.CacheSavedUsd,
		})
	}
	return out
}

func toAPIDailyUsage(r admin.UsageReport) api.DailyUsage {
	out := api.DailyUsage{From: r.From.UTC(), To: r.To.UTC(), Data: make([]api.DayUsage, 0, len(r.Groups))}
	for _, g := range r.Groups {
		d := toAPITotals(g)
		out.Data = append(out.Data, api.DayUsage{
			Date: g.Group, Requests: d.Requests, InputTokens: d.InputTokens, OutputTokens: d.OutputTokens,
			CacheCreationInputTokens: d.CacheCreationInputTokens, CacheReadInputTokens: d.CacheReadInputTokens,
			TotalTokens: d.TotalTokens, CostUsd: d.CostUsd, Cost: d.Cost, CacheSavedUsd: d.CacheSavedUsd,
		})
	}
	return out
}

func toAPILogList(p admin.LogPage) api.UsageLogList {
	out := api.UsageLogList{Data: make([]api.UsageLog, 0, len(p.Records))}
	if p.NextCursor != "" {
		c := p.NextCursor
		out.NextCursor = &c
	}
	for _, r := range p.Records {
		out.Data = append(out.Data, api.UsageLog{
			RequestId:                r.RequestID,
			KeyId:                    r.KeyID,
			Time:                     r.Time.UTC(),
			Model:                    r.Model,
			Path:                     r.Path,
			Status:                   r.Status,
			Stream:                   r.Stream,
			InputTokens:              r.Usage.InputTokens,
			OutputTokens:             r.Usage.OutputTokens,
			CacheCreationInputTokens: r.Usage.CacheCreationInputTokens,
			CacheReadInputTokens:     r.Usage.CacheReadInputTokens,
			TotalTokens:              r.Usage.Total(),
			Estimated:                r.Estimated,
			LatencyMs:                r.Latency.Milliseconds(),
			TtfbMs:                   r.TTFB.Milliseconds(),
			UpstreamRequestId:        r.UpstreamRequestID,
			SessionId:                r.SessionID,
			ClientIp:                 r.ClientIP,
			ErrorType:                r.ErrorType,
			Endpoint:                 r.Endpoint,
			RequestedModel:           r.RequestedModel,
			Batch:                    r.Batch,
			ServiceTier:              r.ServiceTier,
			Speed:                    r.Speed,
			InferenceGeo:             r.InferenceGeo,
			WebSearchRequests:        r.ServerTools.WebSearchRequests,
			WebFetchRequests:         r.ServerTools.WebFetchRequests,
			Iterations:               toAPIIterations(r.Iterations),
			Upstream:                 r.Upstream,
			CostUsd:                  r.Cost.Total.USD(),
			Cost:                     toAPICost(r.Cost.CostBreakdown),
			PriceVersion:             nonEmpty(r.Cost.PriceVersion),
			CostFallback5m:           r.Cost.Fallback5m,
			CostUnpriced:             r.Cost.Unpriced,
			CostDetail:               costDetail(r.Cost.Detail),
			CacheSavedUsd:            r.Cost.CacheSaved.USD(),
			Attempts:                 r.Attempts,
			TriedUpstreams:           nonNil(r.TriedUpstreams),
		})
	}
	return out
}

func toAPIIterations(its []domain.Iteration) *[]api.UsageIteration {
	if len(its) == 0 {
		return nil
	}
	out := make([]api.UsageIteration, 0, len(its))
	for _, it := range its {
		v := api.UsageIteration{Type: it.Type, InputTokens: it.Usage.InputTokens, OutputTokens: it.Usage.OutputTokens,
			CacheCreationInputTokens: it.Usage.CacheCreationInputTokens, CacheReadInputTokens: it.Usage.CacheReadInputTokens}
		if it.Model != "" {
			m := it.Model
			v.Model = &m
		}
		out = append(out, v)
	}
	return &out
}

func toAPIBudget(b admin.BudgetStatus) api.BudgetStatus {
	return api.BudgetStatus{
		Limit: b.Limit, Period: int(b.Period / time.Second), Remaining: b.Remaining,
		ResetAfterSeconds: b.ResetAfter.Seconds(),
	}
}

func toAPIQuotaView(q admin.QuotaView) api.KeyQuotaView {
	return api.KeyQuotaView{
		TokensUsed:      q.TokensUsed,
		TokensReserved:  q.TokensReserved,
		TokensRemaining: q.TokensRemaining,
		UsageRatio:      q.UsageRatio,
		Budgets:         toAPIMoneyBudgets(q.Budgets),
	}
}

func toAPIBulkResult(r admin.BulkKeysReport) api.BulkKeysResult {
	out := api.BulkKeysResult{Action: api.BulkKeysResultAction(r.Action), Ok: r.OK, NotFound: r.NotFound,
		Results: make([]api.BulkKeyResult, 0, len(r.Results))}
	for _, x := range r.Results {
		out.Results = append(out.Results, api.BulkKeyResult{Id: x.ID, Result: api.BulkKeyResultResult(x.Outcome), Changed: x.Changed})
	}
	return out
}

func toAPISeriesTotals(t admin.SeriesTotals) api.SeriesTotals {
	out := api.SeriesTotals{
		Requests:                 t.Requests,
		InputTokens:              t.Usage.InputTokens,
		OutputTokens:             t.Usage.OutputTokens,
		CacheCreationInputTokens: t.Usage.CacheCreationInputTokens,
		CacheReadInputTokens:     t.Usage.CacheReadInputTokens,
		TotalTokens:              t.Usage.Total(),
		CostUsd:                  t.Cost.USD(),
		CacheSavedUsd:            t.CacheSaved.USD(),
		Status: api.StatusCounts{
			Ok: t.Status.OK, ClientError: t.Status.ClientError, RateLimited: t.Status.RateLimited,
			ServerError: t.Status.ServerError, Overloaded: t.Status.Overloaded, Refused: t.Status.Refused,
		},
		TtfbSamples: t.TTFBSamples,
	}
	if t.TTFBSamples > 0 {
		p50, p95 := roundMS(t.TTFBP50), roundMS(t.TTFBP95)
		out.TtfbP50Ms, out.TtfbP95Ms = &p50, &p95
	}
	return out
}

// roundMS is d in whole milliseconds, rounded to the nearest.
func roundMS(d time.Duration) int64 { return d.Round(time.Millisecond).Milliseconds() }

func toAPISeries(r admin.Series) api.UsageSeries {
	out := api.UsageSeries{From: r.From.UTC(), To: r.To.UTC(), Step: api.UsageSeriesStep(r.Step),
		Totals: toAPISeriesTotals(r.Totals), Points: make([]api.SeriesPoint, 0, len(r.Points))}
	for _, p := range r.Points {
		t := toAPISeriesTotals(p.SeriesTotals)
		out.Points = append(out.Points, api.SeriesPoint{
			Start: p.Start.UTC(), Requests: t.Requests, InputTokens: t.InputTokens, OutputTokens: t.OutputTokens,
			CacheCreationInputTokens: t.CacheCreationInputTokens, CacheReadInputTokens: t.CacheReadInputTokens,
			TotalTokens: t.TotalTokens, CostUsd: t.CostUsd, CacheSavedUsd: t.CacheSavedUsd, Status: t.Status,
			TtfbSamples: t.TtfbSamples, TtfbP50Ms: t.TtfbP50Ms, TtfbP95Ms: t.TtfbP95Ms,
		})
	}
	return out
}

func toAPIQuota(q admin.Quota) api.Quota {
	out := api.Quota{
		TokenLimit:      q.Key.TokenLimit,
		TokensUsed:      q.TokensUsed,
		TokensReserved:  q.TokensReserved,
		TokensRemaining: q.TokensRemaining,
		UsageRatio:      q.UsageRatio,
		IsActive:        q.Key.IsActive,
		ExpiresAt:       utcTime(q.Key.ExpiresAt),
		Tier:            api.TierStatus{Name: q.Tier.Name, Requests: toAPIBudget(q.Tier.Requests)},
		Budgets:         toAPIMoneyBudgets(q.Budgets),
	}
	if q.Tier.Tokens != nil {
		b := toAPIBudget(*q.Tier.Tokens)
		out.Tier.Tokens = &b
	}
	if c := q.Tier.Concurrency; c != nil {
		out.Tier.Concurrency = &api.ConcurrencyStatus{Limit: c.Limit, InFlight: c.InFlight, Remaining: c.Remaining}
	}
	return out
}

func utcTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nonZeroTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// costDetail is a record's stored cost detail for the log view: null when
// there is none, and when what is stored is not a JSON object (which would
// break the whole page).
func costDetail(d json.RawMessage) *json.RawMessage {
	d = bytes.TrimSpace(d)
	if len(d) == 0 || d[0] != '{' || !json.Valid(d) {
		return nil
	}
	return &d
}
