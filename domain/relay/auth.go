package relay

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"strings"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// Authenticator resolves a presented proxy key to a usable key. It is shared
// by the proxy routes and the key-holder /api routes.
type Authenticator struct {
	hasher domain.KeyHasher
	keys   ports.KeyLookup
	clock  ports.Clock
}

// NewAuthenticator builds an Authenticator.
func NewAuthenticator(h domain.KeyHasher, keys ports.KeyLookup, clock ports.Clock) *Authenticator {
	return &Authenticator{hasher: h, keys: keys, clock: clock}
}

// KeyFromHeaders extracts the presented key from x-api-key or
// "Authorization: Bearer". Claude Code sends the former with
// ANTHROPIC_API_KEY, the latter with ANTHROPIC_AUTH_TOKEN, and both with an
// apiKeyHelper. When both are present the one that holds a proxy key is
// used; two different proxy keys are a KindUnauthenticated error, since
// the relay cannot tell which one is to be billed.
func KeyFromHeaders(h http.Header) (string, error) {
	x := strings.TrimSpace(h.Get("x-api-key"))
	var b string
	if a := h.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		b = strings.TrimSpace(a[7:])
	}
	switch {
	case b == "" || x == b:
		return x, nil
	case x == "":
		return b, nil
	}
	xp, bp := domain.LooksLikeProxyKey(x), domain.LooksLikeProxyKey(b)
	switch {
	case xp && bp:
		return "", &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonKeyUnknown,
			Message: "x-api-key and Authorization name different API keys; send one"}
	case bp:
		return b, nil
	}
	return x, nil
}

// Authenticate checks raw and the client address, returning the key. The
// error is KindUnauthenticated (401) or KindForbidden (403, IP allow-list);
// its Reason is one of the domain.ReasonKey* values.
func (a *Authenticator) Authenticate(ctx context.Context, raw string, client netip.Addr) (domain.APIKey, error) {
	if raw == "" {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonKeyMissing,
			Message: "missing API key: send it as x-api-key or Authorization: Bearer"}
	}
	if !domain.LooksLikeProxyKey(raw) {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonKeyUnknown, Message: "invalid API key"}
	}
	k, err := a.keys.LookupKey(ctx, a.hasher.Hash(raw))
	if errors.Is(err, domain.ErrNotFound) {
		return domain.APIKey{}, &domain.Error{Kind: domain.KindUnauthenticated, Reason: domain.ReasonKeyUnknown, Message: "invalid API key"}
	}
	if err != nil {
		return domain.APIKey{}, err
	}
	// From here on the key is known: it is returned with the refusal, so
	// that the refusal is recorded against it.
	if why := k.Unusable(a.clock.Now()); why != domain.ReasonNone {
		return k, &domain.Error{Kind: domain.KindUnauthenticated, Reason: why, Message: "API key is " + string(why)}
	}
	if !k.AllowsIP(client) {
		return k, &domain.Error{Kind: domain.KindForbidden, Reason: domain.ReasonKeyIP,
			Message: "this API key may not be used from your IP address"}
	}
	return k, nil
}
