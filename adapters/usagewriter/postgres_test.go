package usagewriter_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/relaystation/relay/adapters/postgres"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/testenv"
)

// forwarder is a TCP proxy between the store and PostgreSQL that a test can
// cut, to simulate a database outage without touching the shared server.
type forwarder struct {
	ln     net.Listener
	target string
	down   atomic.Bool
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func mustForwarder(tb testing.TB, target string) *forwarder {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	f := &forwarder{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	go f.serve()
	tb.Cleanup(func() {
		ln.Close()
		f.cut()
	})
	return f
}

func (f *forwarder) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		if f.down.Load() {
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", f.target)
		if err != nil {
			c.Close()
			continue
		}
		if !f.track(c, up) {
			continue
		}
		go f.pipe(c, up)
		go f.pipe(up, c)
	}
}

// track registers a connection pair unless the forwarder was cut meanwhile.
func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down.Load() {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.conns[c] = struct{}{}
	}
	return true
}

func (f *forwarder) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	f.mu.Lock()
	delete(f.conns, dst)
	delete(f.conns, src)
	f.mu.Unlock()
}

// cut drops every connection and refuses new ones until restore.
func (f *forwarder) cut() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down.Store(true)
	for c := range f.conns {
		c.Close()
	}
}

func (f *forwarder) restore() { f.down.Store(false) }

// TestPostgresOutageMidLoad writes usage through a forwarder that is cut for
// three seconds mid-load: every record lands, none twice, and the key's
// tokens_used equals the sum of its records.
func TestPostgresOutageMidLoad(t *testing.T) {
	dbURL := testenv.MustPostgresDB(t)
	ctx := context.Background()
	direct, err := postgres.Open(ctx, dbURL, nil) // migrates
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { direct.Close() })

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	fwd := mustForwarder(t, u.Host)
	u.Host = fwd.ln.Addr().String()
	viaProxy, err := postgres.Open(ctx, u.String(), nil)
	if err != nil {
		t.Fatalf("open store through the forwarder: %v", err)
	}
	t.Cleanup(func() { viaProxy.Close() })

	now := time.Now().UTC()
	if err := direct.UpsertTier(ctx, domain.Tier{Name: "basic", Requests: 10, Period: time.Minute, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("upsert tier: %v", err)
	}
	keys := make([]uuid.UUID, 4)
	for i := range keys {
		keys[i] = uuid.New()
		err := direct.CreateKey(ctx, domain.APIKey{ID: keys[i], Name: fmt.Sprintf("k%d", i),
			KeyHash: "hash-" + keys[i].String(), KeyPrefix: "sk-proxy-test", RateLimitTier: "basic",
			IsActive: true, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			t.Fatalf("create key: %v", err)
		}
	}

	obs := &recordingObserver{}
	w := usagewriter.New(viaProxy, usagewriter.Config{
		Capacity: 100_000, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		WriteTimeout: 2 * time.Second, Observer: obs, Logger: slog.New(slog.DiscardHandler),
	})

	const producers, perProducer = 8, 2_500 // 20,000 records over about 5 s
	var (
		wg   sync.WaitGroup
		sum  atomic.Int64
		fail atomic.Value
	)
	for p := range producers {
		wg.Go(func() {
			for s := range perProducer {
				r := rec(p, s)
				r.KeyID = keys[(p+s)%len(keys)]
				r.Time = now
				r.Model = "claude-test"
				r.Path = "/v1/messages"
				r.Status = 200
				r.Usage = domain.Usage{InputTokens: int64(1 + s%100), OutputTokens: int64(1 + p)}
				if err := w.Record(ctx, r); err != nil {
					fail.Store(err)
					return
				}
				sum.Add(r.Usage.Total())
				if s%10 == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	time.Sleep(time.Second)
	fwd.cut()
	t.Log("database cut off")
	time.Sleep(3 * time.Second)
	heldDuringOutage := w.Held()
	fwd.restore()
	t.Logf("database back; %d records were held", heldDuringOutage)
	wg.Wait()
	if err, _ := fail.Load().(error); err != nil {
		t.Fatalf("Record: %v", err)
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if obs.errors.Load() == 0 || heldDuringOutage == 0 {
		t.Fatalf("no write failed (%d) or nothing was held (%d): the outage missed the load", obs.errors.Load(), heldDuringOutage)
	}

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var rows, distinct, tokens, keyTokens int64
	err = conn.QueryRow(ctx, `SELECT count(*), count(DISTINCT request_id),
		coalesce(sum(input_tokens + output_tokens + cache_creation_input_tokens + cache_read_input_tokens), 0)
		FROM usage_records`).Scan(&rows, &distinct, &tokens)
	if err != nil {
		t.Fatalf("count usage: %v", err)
	}
	if err := conn.QueryRow(ctx, `SELECT coalesce(sum(tokens_used), 0) FROM api_keys`).Scan(&keyTokens); err != nil {
		t.Fatalf("sum tokens_used: %v", err)
	}
	const want = producers * perProducer
	if rows != want || distinct != want {
		t.Fatalf("usage_records holds %d rows (%d distinct), want %d", rows, distinct, want)
	}
	if tokens != sum.Load() {
		t.Fatalf("usage_records sums to %d tokens, want %d", tokens, sum.Load())
	}
	if keyTokens != sum.Load() {
		t.Fatalf("api_keys.tokens_used sums to %d, want %d", keyTokens, sum.Load())
	}
	t.Logf("%d records, %d tokens; %d failed write attempts during the outage", rows, tokens, obs.errors.Load())
}
