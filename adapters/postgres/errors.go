package postgres

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/relaystation/relay/domain"
)

// PostgreSQL error codes the store maps to domain kinds.
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

func notFound(what string, err error) error {
	return &domain.Error{Kind: domain.KindNotFound, Message: what + " not found", Err: err}
}

// wrap maps well-known failures to domain errors; anything else stays an
// internal error, wrapped with what was being done.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound(op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func retryable(err error) bool {
	switch pgCode(err) {
	case codeSerialization, codeDeadlock:
		return true
	}
	return false
}
