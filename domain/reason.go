package domain

// Reason says why a request was refused or failed, in one bounded word: the
// label metrics count refusals by. The set is closed: an Error's Reason is
// one of the constants below or empty, and adapters/metrics maps each one
// onto its label sets, so no caller ever parses a reason's text.
type Reason string

// ReasonNone is an error without a reason; metrics count it by its kind.
const ReasonNone Reason = ""

// A proxy key refused: 401 authentication_error, or 403 permission_error
// for ReasonKeyIP and ReasonKeyOrigin.
const (
	ReasonKeyMissing  Reason = "missing"  // no key sent
	ReasonKeyUnknown  Reason = "unknown"  // not a key of this relay, or two different keys
	ReasonKeyDisabled Reason = "disabled" // the key is disabled
	ReasonKeyExpired  Reason = "expired"  // the key is past its expires_at
	ReasonKeyDeleted  Reason = "deleted"  // the key is deleted
	ReasonKeyIP       Reason = "ip"       // the client address is outside the key's allowed_ips
	ReasonKeyOrigin   Reason = "origin"   // the Origin/Referer is outside the key's allowed_domains
	ReasonKeyModel    Reason = "model"    // the model is outside the key's allowed_models (403)
)

// The admin side: credentials, the login throttle and the admin allow-list.
const (
	ReasonLogin          Reason = "login"           // wrong or missing admin credentials
	ReasonLoginThrottled Reason = "login_throttled" // too many failed logins (429 with retry-after)
	ReasonLoginBusy      Reason = "login_busy"      // every password-check slot is taken
	ReasonLoginBackend   Reason = "login_backend"   // the throttle's counters cannot be reached
	ReasonAdminToken     Reason = "admin_token"     // a missing, invalid or expired admin token
	ReasonAdminIP        Reason = "admin_ip"        // the client address is outside admin.allowed_ips
)

// A limit of the key or its tier (429 rate_limit_error).
const (
	ReasonRequests    Reason = "requests"    // the tier's requests per period
	ReasonTokens      Reason = "tokens"      // the tier's tokens per period
	ReasonConcurrency Reason = "concurrency" // the tier's in-flight requests
	ReasonQuota       Reason = "quota"       // the key's token_limit
	ReasonBudget      Reason = "budget"      // one of the key's money budgets
)

// The relay cannot take the request right now (503 overloaded_error).
const (
	ReasonUsageQueue         Reason = "usage_queue"         // usage accounting is backed up
	ReasonRequestsBackend    Reason = "requests_backend"    // the rate limiter failed closed
	ReasonTokensBackend      Reason = "tokens_backend"      // the token budget failed closed
	ReasonConcurrencyBackend Reason = "concurrency_backend" // the concurrency limiter failed closed
	ReasonQuotaBackend       Reason = "quota_backend"       // the quota ledger failed closed
	ReasonBudgetBackend      Reason = "budget_backend"      // the budget ledger failed closed
	ReasonEstimator          Reason = "estimator"           // no input-estimate slot came free in time
	ReasonBuffers            Reason = "buffers"             // the relay holds as many request bytes as it may
	ReasonBatchUnsettled     Reason = "batch_unsettled"     // a batch to delete is not settled yet
)

// The request itself (400, 404, 405, 409, 413, 415).
const (
	ReasonBody            Reason = "body"             // the body is malformed, ambiguous or too large
	ReasonBodyTimeout     Reason = "body_timeout"     // the body did not arrive in time
	ReasonContentType     Reason = "content_type"     // the body is not JSON
	ReasonContentEncoding Reason = "content_encoding" // the body is compressed
	ReasonPath            Reason = "path"             // a path that is not canonical, or not an endpoint
	ReasonMethod          Reason = "method"           // a method the endpoint does not take
	ReasonForwardedFor    Reason = "forwarded_for"    // an X-Forwarded-For that does not parse
	ReasonObject          Reason = "object"           // a batch or file the key does not own
	ReasonStale           Reason = "stale"            // the key changed concurrently too often to apply an update (409)
)

// The upstream (502, 503, 504).
const (
	ReasonUpstreamNotConfigured Reason = "upstream_not_configured" // no upstream has an API key
	ReasonUpstreamTimeout       Reason = "upstream_timeout"        // no connection or answer in time
	ReasonUpstreamConnection    Reason = "upstream_connection"     // the connection failed or was lost
	ReasonUpstreamListing       Reason = "upstream_listing"        // a listing the relay could not read
)

// Prices and money (domain/pricing).
const (
	ReasonUnpriced   Reason = "unpriced"    // no price for the model or a price class
	ReasonCostRange  Reason = "cost_range"  // a cost outside what the relay computes exactly
	ReasonAmount     Reason = "amount"      // a malformed amount of money
	ReasonPriceTable Reason = "price_table" // an invalid price table
)
