package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/relaystation/relay/adapters/sqlite/sqlitedb"
)

// stmtCache keeps the writer's statements prepared. The SQLite engine runs
// in the relay's process, and parsing and planning a statement costs more
// CPU than running it with a few rows: the usage writer runs the same
// statements (the record inserts of each row count, the rollup upserts,
// sqlc's queries) thousands of times a minute.
//
// The writer has one connection, which the transaction holds, so a
// statement cannot be prepared while it runs: a text met for the first
// time runs unprepared and is noted, and is prepared once the transaction
// has ended (prepareNoted); every later transaction reuses it on the
// connection.
//
// Only statement texts the code itself builds reach it (sqlc's queries and
// the multi-row statements of at most rowsPerInsert and
// rollupRowsPerUpsert rows per table), a few hundred at most; past
// maxCachedStmts a text stays unprepared.
type stmtCache struct {
	db    *sql.DB
	mu    sync.Mutex
	m     map[string]*sql.Stmt
	noted map[string]struct{}
}

const maxCachedStmts = 512

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt), noted: make(map[string]struct{})}
}

// get is the prepared statement of query, or nil (noting it) when it has
// none yet.
func (c *stmtCache) get(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[query]; ok {
		return st
	}
	if len(c.m)+len(c.noted) < maxCachedStmts {
		c.noted[query] = struct{}{}
	}
	return nil
}

// prepareNoted prepares the statements noted since the last call. Call it
// with no transaction open on the writer. A statement that fails to
// prepare is left to run unprepared; the failure shows where it runs.
func (c *stmtCache) prepareNoted(ctx context.Context) {
	c.mu.Lock()
	var todo []string
	for q := range c.noted {
		todo = append(todo, q)
	}
	clear(c.noted)
	c.mu.Unlock()
	// Not under mu: preparing waits for the connection, which a
	// transaction calling get may hold.
	for _, q := range todo {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup {
			_ = st.Close()
		} else {
			c.m[q] = st
		}
		c.mu.Unlock()
	}
}

// pending reports whether statements wait to be prepared.
func (c *stmtCache) pending() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.noted) > 0
}

// close closes every statement.
func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for q, st := range c.m {
		_ = st.Close()
		delete(c.m, q)
	}
	clear(c.noted)
}

// cachedTx runs a transaction's statements through the cache: the
// transaction's connection reuses the statement prepared on it.
type cachedTx struct {
	tx *sql.Tx
	c  *stmtCache
}

var _ sqlitedb.DBTX = cachedTx{}

func (t cachedTx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	st := t.c.get(query)
	if st == nil {
		return nil, nil
	}
	return t.tx.StmtContext(ctx, st), nil
}

func (t cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return t.tx.ExecContext(ctx, query, args...)
	}
	return st.ExecContext(ctx, args...)
}

func (t cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st == nil {
		return t.tx.QueryContext(ctx, query, args...)
	}
	return st.QueryContext(ctx, args...)
}

func (t cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := t.stmt(ctx, query)
	if err != nil || st == nil {
		// A failed prepare reports itself again through the row.
		return t.tx.QueryRowContext(ctx, query, args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (t cachedTx) PrepareContext(ctx context.Context, query string) (*sql.Stmt, error) {
	return t.tx.PrepareContext(ctx, query)
}
