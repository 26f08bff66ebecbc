package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/budget"
)

// Message Batches are billed when they end, not when they are created: the
// create call reserves the upper bound of all its requests (reserve), and
// this reconciler later polls every batch the relay has recorded until it
// ends, reads its results, records the usage of each succeeded request
// (flagged batch, priced at half), and settles the reservation with the
// total. State lives in the store (owned_objects), so a restart resumes
// where it left off; usage records are keyed by batch and custom id, so a
// batch reconciled twice is counted once.

// batchRecordsPerInsert bounds one synchronous insert of batch usage.
const batchRecordsPerInsert = 500

// RunBatchReconciler reconciles batches until ctx ends. On start it holds
// the reservations of unsettled batches again, since an in-process ledger
// forgets them on restart (holding an id the ledger still has is a no-op).
func (s *Service) RunBatchReconciler(ctx context.Context) {
	if s.cfg.Objects == nil || s.cfg.Batches == nil || s.cfg.Store == nil {
		return
	}
	s.rehold(ctx)
	t := time.NewTicker(max(s.cfg.BatchPoll/4, 50*time.Millisecond))
	defer t.Stop()
	for {
		if err := s.ReconcileBatches(ctx); err != nil && ctx.Err() == nil {
			s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "batch reconciliation failed; retrying", slog.String("error", err.Error()))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) rehold(ctx context.Context) {
	if s.cfg.Ledger == nil && s.cfg.Budgets == nil {
		return
	}
	far := s.cfg.Clock.Now().Add(100 * 365 * 24 * time.Hour)
	bs, err := s.cfg.Objects.UnsettledBatches(ctx, far, 10_000)
	if err != nil {
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "could not list unsettled batches", slog.String("error", err.Error()))
		return
	}
	for _, b := range bs {
		if b.ReservationID == "" {
			continue
		}
		// A hold, not an admission: the batch was admitted already.
		if b.Reserved > 0 && s.cfg.Ledger != nil {
			if _, err := s.cfg.Ledger.Reserve(ctx, b.KeyID, b.ReservationID, b.Reserved, math.MaxInt64/4, 0, s.cfg.BatchLease); err != nil {
				s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "could not hold a batch reservation", slog.String("batch", b.ID), slog.String("error", err.Error()))
			}
		}
		if b.ReservedCost > 0 && s.cfg.Budgets != nil {
			s.reholdMoney(ctx, b)
		}
	}
}

// ReconcileBatches settles every recorded batch that is due for a poll and
// has ended.
func (s *Service) ReconcileBatches(ctx context.Context) error {
	now := s.cfg.Clock.Now()
	bs, err := s.cfg.Objects.UnsettledBatches(ctx, now, 100)
	if err != nil {
		return fmt.Errorf("list unsettled batches: %w", err)
	}
	var errs []error
	for _, b := range bs {
		if err := s.ReconcileBatch(ctx, b); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ReconcileBatch settles batch b if it has ended; otherwise it postpones
// the next poll. A batch the upstream no longer knows is billed its
// reservation, flagged estimated: its results cannot be read any more, and
// an unread batch must not be free.
func (s *Service) ReconcileBatch(ctx context.Context, b domain.OwnedObject) error {
	now := s.cfg.Clock.Now()
	// Only the upstream that created the batch knows it; another would
	// answer 404, and the batch would be billed as unreadable.
	ctx = WithRequiredUpstream(ctx, b.Upstream)
	ended, err := s.cfg.Batches.BatchEnded(ctx, b.ID)
	switch {
	case errors.Is(err, domain.ErrNotFound):
		rec := s.batchRecord(b, domain.BatchResult{CustomID: "unreadable"}, now)
		rec.Usage, rec.Estimated, rec.ErrorType = domain.Usage{InputTokens: b.Reserved}, true, domain.ErrorTypeBatchUnreadable
		rec.Cost = domain.RecordCost{CostBreakdown: domain.CostBreakdown{Input: b.ReservedCost}, Total: b.ReservedCost}
		if s.cfg.Prices != nil {
			rec.Cost.PriceVersion = s.cfg.Prices.Table().Version
		}
		if err := s.cfg.Store.InsertUsage(ctx, []domain.UsageRecord{rec}); err != nil {
			return fmt.Errorf("record unreadable batch %s: %w", b.ID, err)
		}
		return s.settleBatch(ctx, b, b.Reserved, b.ReservedCost, now)
	case err != nil:
		_ = s.cfg.Objects.SetBatchPollAfter(ctx, b.ID, now.Add(s.cfg.BatchPoll))
		return fmt.Errorf("poll batch %s: %w", b.ID, err)
	case !ended:
		return s.cfg.Objects.SetBatchPollAfter(ctx, b.ID, now.Add(s.cfg.BatchPoll))
	}
	var (
		total int64
		cost  domain.Nanodollars
	)
	recs := make([]domain.UsageRecord, 0, 64)
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		if err := s.cfg.Store.InsertUsage(ctx, recs); err != nil {
			return fmt.Errorf("record usage of batch %s: %w", b.ID, err)
		}
		recs = recs[:0]
		return nil
	}
	err = s.cfg.Batches.BatchResults(ctx, b.ID, func(r domain.BatchResult) error {
		if r.Type != "succeeded" {
			return nil
		}
		rec := s.batchRecord(b, r, now)
		s.price(ctx, &rec)
		total += rec.Usage.Total()
		cost += rec.Cost.Total
		recs = append(recs, rec)
		if len(recs) >= batchRecordsPerInsert {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		_ = s.cfg.Objects.SetBatchPollAfter(ctx, b.ID, now.Add(s.cfg.BatchPoll))
		return fmt.Errorf("read results of batch %s: %w", b.ID, err)
	}
	return s.settleBatch(ctx, b, total, cost, now)
}

func (s *Service) batchRecord(b domain.OwnedObject, r domain.BatchResult, now time.Time) domain.UsageRecord {
	return domain.UsageRecord{
		RequestID: "batch:" + b.ID + ":" + r.CustomID, KeyID: b.KeyID, Time: now, Model: r.Model,
		Path: "/v1/messages/batches", Endpoint: "batch_result", Status: 200, Batch: true,
		Usage: domain.BilledUsage(r.Usage, r.Iterations), Iterations: r.Iterations, ServerTools: r.ServerTools,
		ServiceTier: r.ServiceTier, Speed: r.Speed, InferenceGeo: r.InferenceGeo,
	}
}

func (s *Service) settleBatch(ctx context.Context, b domain.OwnedObject, total int64, cost domain.Nanodollars, now time.Time) error {
	id := b.ReservationID
	if id == "" {
		id = "batch:" + b.ID
	}
	if s.cfg.Ledger != nil {
		if err := s.cfg.Ledger.Settle(ctx, b.KeyID, id, total); err != nil {
			return fmt.Errorf("settle batch %s: %w", b.ID, err)
		}
	}
	if s.cfg.Budgets != nil && (b.ReservedCost > 0 || cost > 0) {
		// The batch's records are stored with the reconciliation's time,
		// so its spend is settled in the windows holding now.
		if err := s.cfg.Budgets.Settle(ctx, b.KeyID, id, cost, now); err != nil {
			return fmt.Errorf("settle batch %s budgets: %w", b.ID, err)
		}
	}
	if err := s.cfg.Objects.MarkBatchSettled(ctx, b.ID, now); err != nil {
		return fmt.Errorf("mark batch %s settled: %w", b.ID, err)
	}
	return nil
}

// reholdMoney holds an unsettled batch's money reservation again. A
// ledger holds a reservation in the buckets of its time whatever budgets
// it was checked against, so the hold is checked against one window it
// always fits: the batch was admitted already.
func (s *Service) reholdMoney(ctx context.Context, b domain.OwnedObject) {
	always := []budget.Budget{{Window: budget.Total, Limit: budget.MaxLimit}}
	if _, err := s.cfg.Budgets.Reserve(ctx, b.KeyID, b.ReservationID, always, b.ReservedCost, b.CreatedAt, s.cfg.BatchLease); err != nil {
		s.cfg.Log.LogAttrs(ctx, slog.LevelWarn, "could not hold a batch's money reservation", slog.String("batch", b.ID), slog.String("error", err.Error()))
	}
}
