// Package sql holds the sqlc configuration and the hand-written queries of
// each storage engine. The generated Go lives in adapters/postgres/pgdb and
// adapters/sqlite/sqlitedb; sqlc runs pinned and stays out of go.mod.
package sql

//go:generate go run github.com/sqlc-dev/sqlc/cmd/sqlc@v1.31.1 generate -f sqlc.yaml
