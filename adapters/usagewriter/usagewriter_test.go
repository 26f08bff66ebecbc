package usagewriter_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// fakeStore is a ports.UsageStore built from function fields.
type fakeStore struct {
	insertUsage func(ctx context.Context, recs []domain.UsageRecord) error
}

var (
	_ ports.UsageStore     = (*fakeStore)(nil)
	_ usagewriter.Observer = (*metrics.UsageWriterObserver)(nil)
)

func (f *fakeStore) InsertUsage(ctx context.Context, recs []domain.UsageRecord) error {
	return f.insertUsage(ctx, recs)
}

func (f *fakeStore) UsageTotals(context.Context, domain.UsageQuery) ([]domain.UsageTotals, error) {
	return nil, errors.New("fakeStore: UsageTotals not used")
}

func (f *fakeStore) UsageLogs(context.Context, domain.LogQuery) ([]domain.UsageRecord, error) {
	return nil, errors.New("fakeStore: UsageLogs not used")
}

func (f *fakeStore) UsageSeries(context.Context, domain.SeriesQuery) ([]domain.SeriesPoint, error) {
	return nil, errors.New("fakeStore: UsageSeries not used")
}

// failMode selects how the database misbehaves.
type failMode int32

const (
	healthy    failMode = iota
	down                // the write fails and nothing is stored
	lostCommit          // the write commits but the reply is lost: stored, yet an error
)

// db is an in-memory database behind a fakeStore: it keeps records in
// arrival order and skips request ids it already holds, as the real stores do.
type db struct {
	mode atomic.Int32
	// plan, when set, picks the mode for each write attempt (1-based)
	// instead of mode.
	plan     func(attempt int) failMode
	attempts atomic.Int64
	mu       sync.Mutex
	rows     []domain.UsageRecord
	seen     map[string]int // request id -> times a write carried it
	batches  []int
	block    chan struct{} // when set, writes wait on it (or ctx)
	blocked  int           // writes that waited on block
}

func newDB() (*db, *fakeStore) {
	d := &db{seen: make(map[string]int)}
	return d, &fakeStore{insertUsage: d.insert}
}

var errDown = errors.New("connection refused")

func (d *db) insert(ctx context.Context, recs []domain.UsageRecord) error {
	d.mu.Lock()
	block := d.block
	if block != nil {
		d.blocked++
	}
	d.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	mode := failMode(d.mode.Load())
	if n := int(d.attempts.Add(1)); d.plan != nil {
		mode = d.plan(n)
	}
	if mode == down {
		return errDown
	}
	d.mu.Lock()
	d.batches = append(d.batches, len(recs))
	for _, r := range recs {
		d.seen[r.RequestID]++
		if d.seen[r.RequestID] == 1 {
			d.rows = append(d.rows, r)
		}
	}
	d.mu.Unlock()
	if mode == lostCommit {
		return errors.New("connection reset after commit")
	}
	return nil
}

func waiting(d *db) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.blocked > 0
}

func (d *db) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.rows)
}

func rec(producer, seq int) domain.UsageRecord {
	return domain.UsageRecord{
		RequestID: fmt.Sprintf("req_%d_%d", producer, seq),
		KeyID:     uuid.New(),
		Time:      time.Now(),
		Usage:     domain.Usage{InputTokens: int64(seq), OutputTokens: 1},
	}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within 10s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func shutdown(t *testing.T, w *usagewriter.Writer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// checkExactlyOnce asserts the database holds every one of want once, each
// producer's records in the order recorded.
func checkExactlyOnce(t *testing.T, d *db, producers, perProducer int) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.rows) != producers*perProducer {
		t.Fatalf("database holds %d records, want %d", len(d.rows), producers*perProducer)
	}
	next := make([]int, producers)
	for _, r := range d.rows {
		var p, s int
		if _, err := fmt.Sscanf(r.RequestID, "req_%d_%d", &p, &s); err != nil {
			t.Fatalf("unexpected request id %q", r.RequestID)
		}
		if s != next[p] {
			t.Fatalf("producer %d: stored record %d where %d was next: reordered or lost", p, s, next[p])
		}
		next[p]++
	}
}

func TestFlushesOnInterval(t *testing.T) {
	d, store := newDB()
	w := usagewriter.New(store, usagewriter.Config{BatchSize: 1000, FlushInterval: 20 * time.Millisecond})
	defer shutdown(t, w)
	for i := range 10 {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "an interval flush", func() bool { return d.count() == 10 })
	// Held drops once InsertUsage has returned, just after the rows show.
	eventually(t, "Held back to 0 after the flush", func() bool { return w.Held() == 0 })
}

func TestFlushesOnBatchSize(t *testing.T) {
	d, store := newDB()
	w := usagewriter.New(store, usagewriter.Config{BatchSize: 50, MaxBatch: 50, FlushInterval: time.Hour})
	defer shutdown(t, w)
	for i := range 200 {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "batch-size flushes", func() bool { return d.count() == 200 })
	d.mu.Lock()
	defer d.mu.Unlock()
	// Nothing is written before BatchSize records wait (the interval is an
	// hour); then what waits goes out, MaxBatch at a time.
	if len(d.batches) == 0 || d.batches[0] != 50 {
		t.Fatalf("batches %v: the first should hold 50 records", d.batches)
	}
	for i, n := range d.batches {
		if n > 50 {
			t.Fatalf("batch %d had %d records, more than MaxBatch 50", i, n)
		}
	}
}

// TestBacklogDrainsInLargerBatches: records that pile up behind a slow write
// go out MaxBatch at a time.
func TestBacklogDrainsInLargerBatches(t *testing.T) {
	d, store := newDB()
	d.mu.Lock()
	d.block = make(chan struct{})
	d.mu.Unlock()
	w := usagewriter.New(store, usagewriter.Config{BatchSize: 10, MaxBatch: 40, FlushInterval: time.Millisecond})
	if err := w.Record(context.Background(), rec(0, 0)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first write to start", func() bool { return waiting(d) })
	for i := 1; i <= 300; i++ {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	d.mu.Lock()
	close(d.block)
	d.block = nil
	d.mu.Unlock()
	shutdown(t, w)
	checkExactlyOnce(t, d, 1, 301)
	d.mu.Lock()
	defer d.mu.Unlock()
	want := []int{1, 40, 40, 40, 40, 40, 40, 40, 20}
	if fmt.Sprint(d.batches) != fmt.Sprint(want) {
		t.Fatalf("batches %v, want %v", d.batches, want)
	}
}

// TestOutageRetriedNoLossNoDuplicates: mid-load the database goes down for
// ten write attempts, then commits five batches without acknowledging them,
// then recovers. Every record lands once, in
// order per producer.
func TestOutageRetriedNoLossNoDuplicates(t *testing.T) {
	d, store := newDB()
	d.plan = func(attempt int) failMode {
		switch {
		case attempt >= 5 && attempt < 15:
			return down
		case attempt >= 15 && attempt < 20:
			return lostCommit
		}
		return healthy
	}
	obs := &recordingObserver{}
	w := usagewriter.New(store, usagewriter.Config{
		BatchSize: 100, FlushInterval: 5 * time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, Observer: obs,
	})
	const producers, perProducer = 20, 500
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for s := range perProducer {
				for {
					err := w.Record(context.Background(), rec(p, s))
					if err == nil {
						break
					}
					if domain.KindOf(err) != domain.KindOverloaded {
						t.Errorf("Record: %v", err)
						return
					}
					time.Sleep(time.Millisecond)
				}
				if s%50 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	shutdown(t, w)
	checkExactlyOnce(t, d, producers, perProducer)
	if n := obs.errors.Load(); n != 15 {
		t.Fatalf("observer saw %d failed writes, want 15", n)
	}
	resent := 0
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.seen {
		if n > 1 {
			resent++
		}
	}
	if resent == 0 {
		t.Fatal("no committed-but-unacknowledged batch was resent; the test lost its point")
	}
	if obs.written.Load() < producers*perProducer {
		t.Fatalf("observer saw %d records written, want at least %d", obs.written.Load(), producers*perProducer)
	}
	if obs.dropped.Load() != 0 {
		t.Fatalf("observer saw %d dropped", obs.dropped.Load())
	}
}

// TestFullQueue: while the database is down, the queue fills; admission is
// told to stop at Capacity-Headroom, Record refuses at Capacity, and once the
// database is back every accepted record is written.
func TestFullQueue(t *testing.T) {
	d, store := newDB()
	d.mode.Store(int32(down))
	obs := &recordingObserver{}
	w := usagewriter.New(store, usagewriter.Config{
		Capacity: 100, Headroom: 10, BatchSize: 10, FlushInterval: time.Millisecond,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Observer: obs,
	})
	ctx := context.Background()
	for i := range 89 {
		if err := w.Record(ctx, rec(0, i)); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	if w.Saturated() {
		t.Fatal("Saturated below Capacity-Headroom")
	}
	if err := w.Record(ctx, rec(0, 89)); err != nil {
		t.Fatal(err)
	}
	if !w.Saturated() {
		t.Fatal("not Saturated at Capacity-Headroom")
	}
	// The headroom still takes the records of requests already in flight.
	for i := 90; i < 100; i++ {
		if err := w.Record(ctx, rec(0, i)); err != nil {
			t.Fatalf("record %d in the headroom: %v", i, err)
		}
	}
	err := w.Record(ctx, rec(1, 0))
	if domain.KindOf(err) != domain.KindOverloaded {
		t.Fatalf("Record on a full queue: err = %v, want kind overloaded", err)
	}
	if obs.dropped.Load() != 1 {
		t.Fatalf("observer saw %d dropped, want 1", obs.dropped.Load())
	}
	d.mode.Store(int32(healthy))
	eventually(t, "the queue draining", func() bool { return !w.Saturated() && w.Held() == 0 })
	shutdown(t, w)
	checkExactlyOnce(t, d, 1, 100)
}

func TestShutdownFlushesEverything(t *testing.T) {
	d, store := newDB()
	w := usagewriter.New(store, usagewriter.Config{BatchSize: 1000, FlushInterval: time.Hour})
	for i := range 2_500 {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	shutdown(t, w)
	checkExactlyOnce(t, d, 1, 2_500)
	if err := w.Record(context.Background(), rec(0, 2_500)); !errors.Is(err, usagewriter.ErrClosed) {
		t.Fatalf("Record after Shutdown: %v, want ErrClosed", err)
	}
	// A second Shutdown is harmless.
	shutdown(t, w)
}

// TestShutdownWaitsOutAnOutage: records held during an outage are written
// by Shutdown once the database is back within its deadline.
func TestShutdownWaitsOutAnOutage(t *testing.T) {
	d, store := newDB()
	d.mode.Store(int32(down))
	w := usagewriter.New(store, usagewriter.Config{FlushInterval: time.Millisecond, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	for i := range 300 {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	time.AfterFunc(100*time.Millisecond, func() { d.mode.Store(int32(healthy)) })
	shutdown(t, w)
	checkExactlyOnce(t, d, 1, 300)
}

func TestShutdownDeadlineAbandonsAndReports(t *testing.T) {
	d, store := newDB()
	d.mu.Lock()
	d.block = make(chan struct{}) // a write that hangs until cancelled
	d.mu.Unlock()
	obs := &recordingObserver{}
	w := usagewriter.New(store, usagewriter.Config{BatchSize: 10, FlushInterval: time.Millisecond, Observer: obs})
	for i := range 25 {
		if err := w.Record(context.Background(), rec(0, i)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := w.Shutdown(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown past its deadline: %v, want DeadlineExceeded", err)
	}
	if want := "25 records not written"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Shutdown error %q does not say %q", err, want)
	}
	if obs.dropped.Load() != 25 || w.Held() != 0 {
		t.Fatalf("dropped %d, held %d; want 25 and 0", obs.dropped.Load(), w.Held())
	}
}

func TestRejectsRecordWithoutRequestID(t *testing.T) {
	_, store := newDB()
	w := usagewriter.New(store, usagewriter.Config{})
	defer shutdown(t, w)
	if err := w.Record(context.Background(), domain.UsageRecord{}); domain.KindOf(err) != domain.KindInvalid {
		t.Fatalf("Record without request id: %v, want kind invalid", err)
	}
}

// recordingObserver counts what the writer reports.
type recordingObserver struct {
	errors, written, dropped, depthCalls atomic.Int64
}

func (o *recordingObserver) QueueDepth(int) { o.depthCalls.Add(1) }

func (o *recordingObserver) FlushDone(_ time.Duration, n int, err error) {
	if err != nil {
		o.errors.Add(1)
		return
	}
	o.written.Add(int64(n))
}

func (o *recordingObserver) Dropped(n int) { o.dropped.Add(int64(n)) }
