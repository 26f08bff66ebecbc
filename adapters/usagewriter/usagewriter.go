// Package usagewriter takes usage records off the request path and writes
// them to a ports.UsageStore in batches.
//
// Records wait in a bounded in-memory queue and are written every
// FlushInterval or every BatchSize records, whichever comes first. When more
// are already waiting (a burst, or the backlog after an outage), one write
// takes up to MaxBatch of them: fewer, larger transactions drain a backlog
// several times faster. A batch
// that fails is retried with capped exponential backoff until it succeeds;
// meanwhile it stays in memory, in order, and later records queue behind it.
// Retrying is safe because UsageStore.InsertUsage skips request ids it
// already holds, so a batch whose commit succeeded but whose reply was lost
// is never counted twice.
//
// Bounds, for the operator:
//   - At most Capacity records are held (queued plus the batch being
//     written). Saturated reports true from Capacity-Headroom on, so
//     admission stops taking new requests while the requests already in
//     flight can still record theirs; Record refuses (KindOverloaded) only
//     at Capacity itself.
//   - A crash (SIGKILL) loses what is held: normally at most one
//     FlushInterval of records, during a storage outage up to Capacity.
//   - Shutdown writes everything held; only if its context expires first are
//     the rest abandoned, each logged at error level with its request id.
package usagewriter

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Defaults for the zero Config fields.
const (
	DefaultCapacity      = 50_000
	DefaultBatchSize     = 500
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultMinBackoff    = 100 * time.Millisecond
	DefaultMaxBackoff    = 5 * time.Second
	DefaultWriteTimeout  = 10 * time.Second
)

// Config tunes a Writer. Zero fields take the defaults above; Headroom
// defaults to a tenth of Capacity.
type Config struct {
	Capacity  int
	Headroom  int
	BatchSize int
	// MaxBatch caps one write when a backlog is waiting; default 4*BatchSize.
	MaxBatch      int
	FlushInterval time.Duration
	MinBackoff    time.Duration
	MaxBackoff    time.Duration
	// WriteTimeout bounds one InsertUsage attempt.
	WriteTimeout time.Duration
	Logger       *slog.Logger
	Observer     Observer // nil: no metrics
}

func (c Config) withDefaults() Config {
	if c.Capacity <= 0 {
		c.Capacity = DefaultCapacity
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	c.BatchSize = min(c.BatchSize, c.Capacity)
	if c.MaxBatch < c.BatchSize {
		c.MaxBatch = 4 * c.BatchSize
	}
	c.MaxBatch = min(c.MaxBatch, c.Capacity)
	if c.Headroom <= 0 {
		c.Headroom = c.Capacity / 10
	}
	c.Headroom = min(c.Headroom, c.Capacity-1)
	if c.FlushInterval <= 0 {
		c.FlushInterval = DefaultFlushInterval
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	return c
}

// Observer receives the writer's events, for metrics.
// *metrics.UsageWriterObserver implements it.
type Observer interface {
	// QueueDepth reports how many records are held, after each batch write.
	QueueDepth(n int)
	// FlushDone reports one write attempt of n records that took d; err is
	// nil on success. A retried batch reports every attempt.
	FlushDone(d time.Duration, n int, err error)
	// Dropped reports n records lost for good: refused by a full queue, or
	// abandoned when the shutdown deadline passed.
	Dropped(n int)
}

type nopObserver struct{}

func (nopObserver) QueueDepth(int)                      {}
func (nopObserver) FlushDone(time.Duration, int, error) {}
func (nopObserver) Dropped(int)                         {}

// ErrClosed is returned by Record after Shutdown.
var ErrClosed = errors.New("usage writer is shut down")

// Writer is the asynchronous ports.UsageRecorder.
type Writer struct {
	cfg   Config
	store ports.UsageStore
	log   *slog.Logger
	obs   Observer

	// held counts queued records plus the batch being written; at most
	// Capacity.
	held atomic.Int64

	// mu guards pending and closed. pending grows as records come and is
	// taken whole by the writer (swapped with its spent batch), so an idle
	// writer holds no memory for its capacity, and a busy one two batches.
	mu      sync.Mutex
	pending []domain.UsageRecord
	closed  bool
	// wake tells the writer BatchSize records wait, or that it was shut
	// down; buffered, so Record never blocks on it.
	wake chan struct{}

	abort  context.Context // cancelled when Shutdown's deadline passes
	cancel context.CancelFunc
	done   chan struct{}
	lost   atomic.Int64
}

var _ ports.UsageRecorder = (*Writer)(nil)

// New starts a writer on store. Stop it with Shutdown.
func New(store ports.UsageStore, cfg Config) *Writer {
	cfg = cfg.withDefaults()
	abort, cancel := context.WithCancel(context.Background())
	w := &Writer{
		cfg:    cfg,
		store:  store,
		log:    cfg.Logger,
		obs:    cfg.Observer,
		wake:   make(chan struct{}, 1),
		abort:  abort,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go w.run()
	return w
}

// Record implements ports.UsageRecorder. It never blocks.
func (w *Writer) Record(ctx context.Context, rec domain.UsageRecord) error {
	if rec.RequestID == "" {
		return domain.Invalidf("usage record has no request id")
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("record usage %s: %w", rec.RequestID, ErrClosed)
	}
	if w.held.Add(1) > int64(w.cfg.Capacity) {
		w.held.Add(-1)
		w.mu.Unlock()
		w.obs.Dropped(1)
		return &domain.Error{Kind: domain.KindOverloaded, Reason: domain.ReasonUsageQueue,
			Message: "the relay is overloaded: usage accounting is backed up; retry shortly"}
	}
	w.pending = append(w.pending, rec)
	full := len(w.pending) == w.cfg.BatchSize
	w.mu.Unlock()
	if full {
		w.signal()
	}
	return nil
}

func (w *Writer) signal() {
	select {
	case w.wake <- struct{}{}:
	default: // already signalled
	}
}

// Saturated implements ports.UsageRecorder: true once Capacity-Headroom
// records are held.
func (w *Writer) Saturated() bool {
	return w.held.Load() >= int64(w.cfg.Capacity-w.cfg.Headroom)
}

// Held reports how many records wait to be written, including the batch
// being written now.
func (w *Writer) Held() int { return int(w.held.Load()) }

// Shutdown stops taking records and writes every one held, retrying as
// usual until ctx ends. Call it after the last request has recorded its
// usage. If ctx ends first, the records not yet written are abandoned,
// logged one by one, and reported in the error.
func (w *Writer) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.signal()
	select {
	case <-w.done:
	case <-ctx.Done():
		w.cancel()
		<-w.done
	}
	w.cancel()
	if n := w.lost.Load(); n > 0 {
		return fmt.Errorf("usage writer: %d records not written before the shutdown deadline: %w", n, context.Cause(ctx))
	}
	return nil
}

func (w *Writer) run() {
	defer close(w.done)
	tick := time.NewTicker(w.cfg.FlushInterval)
	defer tick.Stop()
	var batch []domain.UsageRecord
	for {
		all := false
		select {
		case <-w.wake:
		case <-tick.C:
			all = true
		}
		// Write what waits, in writes of at most MaxBatch (a backlog after
		// an outage drains in few large transactions), then again at once
		// while a full batch has gathered meanwhile.
		for {
			var closed bool
			batch, closed = w.take(batch, all)
			for rest := batch; len(rest) > 0; {
				n := min(len(rest), w.cfg.MaxBatch)
				w.write(rest[:n])
				rest = rest[n:]
			}
			if closed && len(batch) == 0 {
				return
			}
			if !closed && w.waiting() < w.cfg.BatchSize {
				break
			}
		}
	}
}

// take hands the writer the records waiting, in order, giving back spent
// (its last batch, written) for the next records to gather in: all of
// them when all is set (the interval passed) or the writer was shut down,
// otherwise whole BatchSize groups, the rest left to gather. It reports
// whether the writer was shut down.
func (w *Writer) take(spent []domain.UsageRecord, all bool) (batch []domain.UsageRecord, closed bool) {
	clear(spent) // a written batch keeps no strings alive
	spent = spent[:0]
	w.mu.Lock()
	defer w.mu.Unlock()
	if all && cap(spent) > 2*w.cfg.MaxBatch && len(w.pending) < w.cfg.BatchSize {
		// The interval passed with little waiting: the load that grew this
		// buffer is over, so its size is not kept around.
		spent = nil
	}
	batch, w.pending = w.pending, spent
	if keep := len(batch) % w.cfg.BatchSize; keep > 0 && !all && !w.closed {
		w.pending = append(w.pending, batch[len(batch)-keep:]...)
		clear(batch[len(batch)-keep:])
		batch = batch[:len(batch)-keep]
	}
	return batch, w.closed
}

// waiting is how many records gather for the next batch.
func (w *Writer) waiting() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// write stores batch, retrying until it succeeds or Shutdown gives up.
func (w *Writer) write(batch []domain.UsageRecord) {
	if len(batch) == 0 {
		return
	}
	backoff := w.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if w.abort.Err() != nil {
			w.abandon(batch)
			return
		}
		ctx, cancel := context.WithTimeout(w.abort, w.cfg.WriteTimeout)
		start := time.Now()
		err := w.store.InsertUsage(ctx, batch)
		cancel()
		took := time.Since(start)
		w.obs.FlushDone(took, len(batch), err)
		if err == nil {
			w.held.Add(-int64(len(batch)))
			w.obs.QueueDepth(w.Held())
			if attempt > 1 {
				w.log.Info("usage batch written after retries", "records", len(batch), "attempts", attempt)
			}
			return
		}
		// Full jitter on the upper half keeps replicas from retrying in step.
		wait := backoff/2 + rand.N(backoff/2+1)
		w.log.Warn("usage batch write failed; keeping it and retrying",
			"records", len(batch), "attempt", attempt, "retry_in", wait, "held", w.Held(), "err", err)
		select {
		case <-time.After(wait):
		case <-w.abort.Done():
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// abandon gives up on batch at the shutdown deadline, leaving a trail an
// operator can reconcile from.
func (w *Writer) abandon(batch []domain.UsageRecord) {
	for i := range batch {
		r := &batch[i]
		w.log.Error("usage record abandoned at shutdown", "request_id", r.RequestID,
			"key_id", r.KeyID.String(), "time", r.Time, "model", r.Model, "tokens", r.Usage.Total())
	}
	w.lost.Add(int64(len(batch)))
	w.held.Add(-int64(len(batch)))
	w.obs.Dropped(len(batch))
}
