// Package pricing prices Anthropic API usage exactly, from a versioned
// price table.
//
// # Prices are data
//
// A Table is JSON: the seed embedded from prices.json (read from
// Anthropic's pricing pages on the day it names in "retrieved"), or an
// operator's override stored in the database. Parse validates one and
// every Cost records the Version that priced it, so a stored cost can be
// recomputed. Rates are decimal USD per million tokens ("3.75"), tool fees
// decimal USD per 1,000 calls, multipliers decimals ("0.5").
//
// # Units and rounding
//
// Money is Nanodollars (10⁻⁹ USD) in int64: up to about $9.2 billion. A
// rate is held in nanodollars per million tokens, so every published
// price is an exact integer ($0.30/MTok is 300,000,000). A class's cost is
//
//	tokens × rate × batch × fast × geo / 10⁶
//
// computed exactly (math/big: a count up to 2⁶³ and any rate are exact)
// and rounded once, half up, to a nanodollar. Classes are rounded per
// sampling step (an iteration); a step's total, a class's total across
// steps and the request's Total are sums of those rounded amounts, so the
// stored breakdown always adds up. A result past int64 is ErrOutOfRange,
// never a wrapped number.
//
// # How a request is priced
//
//   - Each sampling step is priced at its own model: an iteration with a
//     model (an advisor's) at that model, one without at the request's.
//     The steps are those domain.BilledUsage sums: the iterations, plus the
//     top-level usage when no "message" iteration is listed.
//   - Cache buckets are never added to input: input_tokens already
//     excludes cached tokens. Cache writes are priced by their TTL split;
//     writes the split does not cover (no split reported, or one short of
//     cache_creation_input_tokens) are priced at the 5-minute rate and the
//     Cost says Fallback5m.
//   - A model with a long-context tier is priced at that tier, on every
//     token of the step, when the step's prompt (input + cache writes +
//     cache reads) is more than the tier's threshold.
//   - Batch (Request.Batch or service tier "batch"), fast mode (speed
//     "fast") and data residency (inference_geo) multiply every token
//     class; they stack by multiplication. A modifier the entry does not
//     price is left out and listed in UnpricedModifiers.
//   - Server tools are billed per call at the request model's entry, flat:
//     no multiplier applies to them.
//   - A model the table does not price follows the Policy: refuse
//     (ErrUnpriced) or price it at a fallback entry.
//   - What cache reads saved (CacheSaved, not a class: not in Total) is,
//     per step, its cache-read tokens priced at the input rate of the same
//     entry, tier and multipliers, minus their price at the cache-read
//     rate, each rounded as a class is; a request's is the sum of its
//     steps', and an unpriced step saves nothing.
//
// # Matching
//
// A model name is matched by exact id, then alias, then by the most
// specific glob pattern (path.Match syntax): the one with the most literal
// characters, then the longest, then the byte-wise smallest. Names and
// patterns are unique across a table, so a lookup never depends on the
// order of entries.
package pricing
