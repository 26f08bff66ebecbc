package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/relaystation/relay/domain"
)

// constraint reports which SQLite constraint err violated, if any: one of
// the SQLITE_CONSTRAINT_* extended codes, or 0.
func constraint(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
		return se.Code()
	}
	return 0
}

func isUnique(err error) bool {
	c := constraint(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

func isForeignKey(err error) bool { return constraint(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY }

func isCheck(err error) bool { return constraint(err) == sqlite3.SQLITE_CONSTRAINT_CHECK }

func notFound(what string, err error) error {
	return &domain.Error{Kind: domain.KindNotFound, Message: what + " not found", Err: err}
}

// wrap maps a missing row to ErrNotFound; anything else stays an internal
// error, wrapped with what was being done.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return notFound(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
