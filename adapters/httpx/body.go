package httpx

import "time"

// DefaultBodyReadTimeout is how long a request body may take to arrive, on
// the management API and the proxy alike (the proxy extends it while the
// body keeps arriving): a sender that stalls is cut off.
const DefaultBodyReadTimeout = 30 * time.Second
