// Package upstreams holds the upstream-management use cases: the upstream
// pool as managed objects (list, get, create, update, disable, enable,
// delete, test), seeding them from the configuration on first start, and
// keeping this replica's pool (domain/pool) and transport
// (ports.UpstreamRuntime) in step with what is stored.
//
// # Storage is authoritative
//
// Upstreams are stored (ports.UpstreamStore). The configuration's upstreams
// are seeded into an empty table once (Seed), keeping their names as ids
// ("primary", each fallback's name), so pins and usage records that name
// them keep working; after that the database is authoritative and the
// configuration's upstream list is ignored (with a warning when it
// differs). Load applies the stored upstreams to the pool and the
// transport at start; RefreshEvery re-reads them so that every replica
// follows a change made through another within the interval; each use case
// that changes an upstream applies it on its own replica at once.
//
// # Keys
//
// An upstream's API key is sealed (ports.SecretSealer: AES-GCM bound to
// the upstream's id) before it is stored, and opened only to hand it to the
// transport or to test it; it is never returned, and never logged. Views
// show its last four characters. A stored key that cannot be opened (the
// relay runs with another UPSTREAM_KEY_SECRET) leaves that upstream
// disabled on this replica, with the reason in its view and in the log; it
// never stops the start.
//
// Rotation: a sealer that can also tell which sealed keys are under an
// older key (KeyRotator) has them re-sealed under its current key by Load,
// that is once per start. To rotate UPSTREAM_KEY_SECRET on several
// replicas without any of them losing a key: first give every replica the
// new secret as a previous one (upstream.previous_key_secrets), keeping the
// old one current; then make the new one current and the old one previous,
// replica by replica (the first to start re-seals every key, which the
// others can open); then drop the old one.
//
// # Disabling
//
// An operator's disable (Disable, or an update to enabled = false) stores
// enabled = false with the reason "disabled by <admin>". The transport
// calls PersistDisable when an upstream answers 401 or 403, so that every
// replica and every restart stops using the key too. Enable clears both,
// and clears the pool's own disabled state (pool.Pool.Enable) on this
// replica at once and on the others at their next refresh.
package upstreams
