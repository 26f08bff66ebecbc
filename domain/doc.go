// Package domain holds Relay Station's entities, value objects and domain
// errors. It is the centre of the hexagon: it imports only the standard
// library and small pure helpers (uuid), never echo, pgx, sqlc output,
// generated API types or koanf. `make lint` enforces this.
//
// Use cases live in sub-packages (domain/admin, domain/relay); the
// interfaces they need from the outside world live in ports/.
package domain
