package sqlite

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
)

// A statement first met inside a transaction is prepared after it, and
// later transactions run it prepared, on the writer's one connection, with
// other transactions coming and going meanwhile (no deadlock between the
// connection and the cache's lock).
func TestStmtCachePreparesAfterTheTransaction(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := openDB(ctx, filepath.Join(t.TempDir(), "c.db"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	e := &engine{write: db, read: db, stmts: newStmtCache(db)}
	const upsert = `INSERT INTO t (k, v) VALUES (?, 1) ON CONFLICT (k) DO UPDATE SET v = v + 1`
	run := func(k int) error {
		return e.inTx(ctx, func(tx sqlitedb.DBTX, _ *sqlitedb.Queries) error {
			_, err := tx.ExecContext(ctx, upsert, k)
			return err
		})
	}
	if err := run(1); err != nil {
		t.Fatal(err)
	}
	if e.stmts.get(upsert) == nil {
		t.Fatal("the statement was not prepared after its first transaction")
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 50 {
				if err := run(g*1000 + i%5); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var n int
	if err := db.QueryRowContext(ctx, `SELECT SUM(v) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1+8*50 {
		t.Fatalf("sum %d, want %d", n, 1+8*50)
	}
	if ctx.Err() != nil {
		t.Fatal("deadlocked")
	}
	e.stmts.close()
}
