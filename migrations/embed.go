// Package migrations embeds the golang-migrate files of each storage engine,
// so the relay binary migrates its own database (`relay serve` at start,
// `relay migrate up|down|version` on demand). sqlc reads the same folders as
// its schema.
package migrations

import "embed"

// Postgres holds the PostgreSQL migrations, at the root "postgres".
//
//go:embed postgres/*.sql
var Postgres embed.FS

// SQLite holds the SQLite migrations, at the root "sqlite".
//
//go:embed sqlite/*.sql
var SQLite embed.FS
