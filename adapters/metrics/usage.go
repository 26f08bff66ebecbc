package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// UsageWriterObserver receives the async usage writer's events. Its methods
// are plain so the writer can declare its own small Observer interface and
// accept this type (or a fake) without importing prometheus. All methods are
// safe on a nil receiver.
type UsageWriterObserver struct {
	depth   prometheus.Gauge
	flush   prometheus.Observer
	errors  prometheus.Counter
	written prometheus.Counter
	dropped prometheus.Counter
}

// QueueDepth reports how many records wait in the queue now.
func (o *UsageWriterObserver) QueueDepth(n int) {
	if o != nil {
		o.depth.Set(float64(n))
	}
}

// FlushDone reports one batch write of n records that took d. A failed write
// counts one error and no records written; a batch that is retried later
// reports each attempt.
func (o *UsageWriterObserver) FlushDone(d time.Duration, n int, err error) {
	if o == nil {
		return
	}
	o.flush.Observe(d.Seconds())
	if err != nil {
		o.errors.Inc()
		return
	}
	if n > 0 {
		o.written.Add(float64(n))
	}
}

// Dropped reports n records lost for good: refused by a full queue, or
// given up after the last retry.
func (o *UsageWriterObserver) Dropped(n int) {
	if o != nil && n > 0 {
		o.dropped.Add(float64(n))
	}
}
