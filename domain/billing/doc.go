// Package billing holds the two stateful pieces of money accounting that
// the relay's use cases share: the current price table (Prices: the
// embedded seed, then the versions operators store, refreshed on every
// replica) and the money-budget ledger with its seeding from storage
// (Budgets). The rules themselves live in domain/pricing (what a request
// costs) and domain/budget (what a window holds); this package connects
// them to their ports.
package billing
