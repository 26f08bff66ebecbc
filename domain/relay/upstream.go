package relay

import (
	"context"
	"fmt"

	"github.com/relaystation/relay/domain"
)

// Object affinity: batches and files live in the upstream (the Anthropic
// workspace) that created them, so every later request naming one must go
// there. The relay records the creating upstream on the OwnedObject (own),
// and admission exposes the upstream the addressed objects require
// (Admission.ObjectUpstream) for the transport to pick.

type requiredUpstreamKey struct{}

// WithRequiredUpstream returns ctx saying that upstream requests made under
// it must go to upstream id; "" requires nothing. The batch reconciler reads
// batches through ports.BatchUpstream, whose methods name the batch only,
// so the requirement travels with the context to the transport.
func WithRequiredUpstream(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, requiredUpstreamKey{}, id)
}

// RequiredUpstream is the upstream WithRequiredUpstream put in ctx, or "".
func RequiredUpstream(ctx context.Context) string {
	id, _ := ctx.Value(requiredUpstreamKey{}).(string)
	return id
}

// ObjectUpstream is the id of the upstream that must serve the admitted
// call: the one that created the batch or file its path names, or the
// files its body names; "" when it names none, or only objects recorded
// before the relay knew their upstream.
func (a *Admission) ObjectUpstream() string { return a.objectUpstream }

// requireUpstream records that the call needs upstream id, for object
// (kind, objID); a call naming objects of two upstreams can be served by
// neither.
func (a *Admission) requireUpstream(id string, kind domain.ObjectKind, objID string) error {
	switch {
	case id == "" || id == a.objectUpstream:
		return nil
	case a.objectUpstream == "":
		a.objectUpstream = id
		return nil
	}
	return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonObject,
		Message: fmt.Sprintf("%s %s was created through another upstream than the other objects this request names; one request can only use objects of one upstream", kind, safeID(objID))}
}
