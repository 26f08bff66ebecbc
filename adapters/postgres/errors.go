package postgres

import (
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relaystation/relay/adapters/sqlstore"
)

// PostgreSQL error codes the store gives a meaning to.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
	codeBadCharacter        = "22021" // NUL or invalid UTF-8 in text
	codeUntranslatable      = "22P05"
	codeSerialization       = "40001"
	codeDeadlock            = "40P01"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// dialect classifies pgx errors for the Store.
type dialect struct{}

func (dialect) Classify(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return sqlstore.ErrDBNotFound
	}
	switch pgCode(err) {
	case codeUniqueViolation:
		return sqlstore.ErrDBDuplicatedEntry
	case codeForeignKeyViolation:
		return sqlstore.ErrDBForeignKey
	case codeCheckViolation:
		return sqlstore.ErrDBCheck
	case codeBadCharacter, codeUntranslatable:
		return sqlstore.ErrDBBadText
	}
	return nil
}

// retryable reports whether a usage batch lost a lock race and may simply
// run again.
func retryable(err error) bool {
	switch pgCode(err) {
	case codeSerialization, codeDeadlock:
		return true
	}
	return false
}
