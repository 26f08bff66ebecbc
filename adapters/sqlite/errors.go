package sqlite

import (
	"database/sql"
	"errors"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/relaystation/relay/adapters/sqlstore"
)

// dialect classifies SQLite errors for the Store by their extended codes.
// SQLite stores any bytes as TEXT, so no error here is sqlstore.ErrDBBadText.
type dialect struct{}

func (dialect) Classify(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return sqlstore.ErrDBNotFound
	}
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return nil
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.ErrDBDuplicatedEntry
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ErrDBForeignKey
	case sqlite3.SQLITE_CONSTRAINT_CHECK:
		return sqlstore.ErrDBCheck
	}
	return nil
}
