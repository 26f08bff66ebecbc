package relay

import (
	"net/http"
	"strings"

	"github.com/relaystation/relay/domain"
)

// Endpoint is one upstream endpoint of the closed catalogue the relay
// forwards. Anything not in the catalogue (and not under an operator's
// passthrough prefix) never leaves the relay.
type Endpoint uint8

const (
	EndpointUnknown Endpoint = iota
	// Metered: the upstream bills tokens as it answers.
	EndpointMessages        // POST /v1/messages
	EndpointComplete        // POST /v1/complete (legacy Text Completions)
	EndpointChatCompletions // POST /v1/chat/completions (OpenAI format)
	EndpointBatchCreate     // POST /v1/messages/batches: billed later, per request
	// Auxiliary: free upstream; the tier's separate aux budget applies.
	EndpointCountTokens // POST /v1/messages/count_tokens
	EndpointModels      // GET /v1/models
	EndpointModel       // GET /v1/models/{id}
	// Owned: free, but the object belongs to the key that created it.
	EndpointBatchList    // GET /v1/messages/batches
	EndpointBatchGet     // GET /v1/messages/batches/{id}
	EndpointBatchDelete  // DELETE /v1/messages/batches/{id}
	EndpointBatchCancel  // POST /v1/messages/batches/{id}/cancel
	EndpointBatchResults // GET /v1/messages/batches/{id}/results
	EndpointFileUpload   // POST /v1/files
	EndpointFileList     // GET /v1/files
	EndpointFileGet      // GET /v1/files/{id}
	EndpointFileDelete   // DELETE /v1/files/{id}
	EndpointFileContent  // GET /v1/files/{id}/content
	// EndpointPassthrough is a path under an operator's proxy.passthrough
	// prefix: relayed unmetered, on the operator's word that it bills nothing.
	EndpointPassthrough
	endpointCount
)

var endpointNames = [endpointCount]string{
	EndpointUnknown:         "unknown",
	EndpointMessages:        "messages",
	EndpointComplete:        "complete",
	EndpointChatCompletions: "chat_completions",
	EndpointBatchCreate:     "batch_create",
	EndpointCountTokens:     "count_tokens",
	EndpointModels:          "models",
	EndpointModel:           "model",
	EndpointBatchList:       "batch_list",
	EndpointBatchGet:        "batch_get",
	EndpointBatchDelete:     "batch_delete",
	EndpointBatchCancel:     "batch_cancel",
	EndpointBatchResults:    "batch_results",
	EndpointFileUpload:      "file_upload",
	EndpointFileList:        "file_list",
	EndpointFileGet:         "file_get",
	EndpointFileDelete:      "file_delete",
	EndpointFileContent:     "file_content",
	EndpointPassthrough:     "passthrough",
}

// String is the endpoint's bounded name, for records and metrics labels.
func (e Endpoint) String() string {
	if e < endpointCount {
		return endpointNames[e]
	}
	return "unknown"
}

// Billing says how an endpoint is charged.
type Billing uint8

const (
	// BillingNone: free upstream; only the request budget applies.
	BillingNone Billing = iota
	// BillingMetered: tokens are reserved before and settled after.
	BillingMetered
	// BillingAux: free; counted against the tier's aux budget.
	BillingAux
	// BillingDeferred: a batch, reserved now and settled by the reconciler.
	BillingDeferred
)

// Billing reports how e is charged.
func (e Endpoint) Billing() Billing {
	switch e {
	case EndpointMessages, EndpointComplete, EndpointChatCompletions:
		return BillingMetered
	case EndpointBatchCreate:
		return BillingDeferred
	case EndpointCountTokens, EndpointModels, EndpointModel:
		return BillingAux
	}
	return BillingNone
}

// Format is the wire format of a metered endpoint's body and reply.
func (e Endpoint) Format() domain.WireFormat {
	switch e {
	case EndpointChatCompletions:
		return domain.FormatChat
	case EndpointComplete:
		return domain.FormatComplete
	}
	return domain.FormatMessages
}

// Object reports the kind of owned object e addresses or lists, if any.
func (e Endpoint) Object() (domain.ObjectKind, bool) {
	switch e {
	case EndpointBatchCreate, EndpointBatchList, EndpointBatchGet, EndpointBatchDelete, EndpointBatchCancel, EndpointBatchResults:
		return domain.ObjectBatch, true
	case EndpointFileUpload, EndpointFileList, EndpointFileGet, EndpointFileDelete, EndpointFileContent:
		return domain.ObjectFile, true
	}
	return "", false
}

// NeedsJSON reports whether e's body must be a JSON object read strictly:
// everything whose body decides a reservation.
func (e Endpoint) NeedsJSON() bool {
	b := e.Billing()
	return b == BillingMetered || b == BillingDeferred
}

// Route is a classified request: the endpoint, the canonical path that is
// forwarded (exactly the path that was classified), and the object id in
// it, if any.
type Route struct {
	Endpoint Endpoint
	Path     string
	ObjectID string
}

// route is one catalogue entry: a path pattern whose "{id}" segment matches
// an upstream object id, and the endpoint for each method it takes.
type route struct {
	segs    []string
	methods map[string]Endpoint
}

var catalogue = []route{
	{segs: []string{"v1", "messages"}, methods: map[string]Endpoint{http.MethodPost: EndpointMessages}},
	{segs: []string{"v1", "complete"}, methods: map[string]Endpoint{http.MethodPost: EndpointComplete}},
	{segs: []string{"v1", "chat", "completions"}, methods: map[string]Endpoint{http.MethodPost: EndpointChatCompletions}},
	{segs: []string{"v1", "messages", "count_tokens"}, methods: map[string]Endpoint{http.MethodPost: EndpointCountTokens}},
	{segs: []string{"v1", "models"}, methods: map[string]Endpoint{http.MethodGet: EndpointModels}},
	{segs: []string{"v1", "models", "{id}"}, methods: map[string]Endpoint{http.MethodGet: EndpointModel}},
	{segs: []string{"v1", "messages", "batches"}, methods: map[string]Endpoint{http.MethodPost: EndpointBatchCreate, http.MethodGet: EndpointBatchList}},
	{segs: []string{"v1", "messages", "batches", "{id}"}, methods: map[string]Endpoint{http.MethodGet: EndpointBatchGet, http.MethodDelete: EndpointBatchDelete}},
	{segs: []string{"v1", "messages", "batches", "{id}", "cancel"}, methods: map[string]Endpoint{http.MethodPost: EndpointBatchCancel}},
	{segs: []string{"v1", "messages", "batches", "{id}", "results"}, methods: map[string]Endpoint{http.MethodGet: EndpointBatchResults}},
	{segs: []string{"v1", "files"}, methods: map[string]Endpoint{http.MethodPost: EndpointFileUpload, http.MethodGet: EndpointFileList}},
	{segs: []string{"v1", "files", "{id}"}, methods: map[string]Endpoint{http.MethodGet: EndpointFileGet, http.MethodDelete: EndpointFileDelete}},
	{segs: []string{"v1", "files", "{id}", "content"}, methods: map[string]Endpoint{http.MethodGet: EndpointFileContent}},
}

// passthroughMethods are the methods relayed under a passthrough prefix.
// TRACE, CONNECT, WebDAV verbs and the like are never forwarded.
var passthroughMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true,
	http.MethodPut: true, http.MethodPatch: true, http.MethodDelete: true,
}

// maxPathLen bounds a forwarded path.
const maxPathLen = 512

// Router classifies request paths against the catalogue and the operator's
// passthrough prefixes.
type Router struct {
	passthrough []string
}

// NewRouter builds a Router. Each passthrough prefix must itself be a
// canonical path ("/v1/organizations", say); a path is under it when it
// equals it or continues with "/".
func NewRouter(passthrough []string) (*Router, error) {
	r := &Router{}
	for _, p := range passthrough {
		p = strings.TrimRight(p, "/")
		if _, err := canonical(p); err != nil || p == "" {
			return nil, domain.Invalidf("proxy.passthrough: %q is not a canonical absolute path", p)
		}
		r.passthrough = append(r.passthrough, p)
	}
	return r, nil
}

// Classify maps a request's method and escaped path (as it arrived, before
// any decoding: url.URL.EscapedPath) to a Route. The path must already be
// canonical: a path that any server could read as another one (dot
// segments, percent-encoding, empty segments, a trailing slash, a
// backslash, control or non-ASCII bytes) is refused with KindInvalid, and
// so is a letter-case variant of a catalogued path. An unknown path is
// KindNotFound and a method the endpoint does not take KindMethodNotAllowed.
// Nothing refused here is ever sent upstream.
func (r *Router) Classify(method, escapedPath string) (Route, error) {
	if escapedPath == "/v1/messages" && method == http.MethodPost {
		return Route{Endpoint: EndpointMessages, Path: escapedPath}, nil // the hot path
	}
	segs, err := canonical(escapedPath)
	if err != nil {
		return Route{}, err
	}
	for i := range catalogue {
		rt := &catalogue[i]
		id, ok, caseOnly := rt.match(segs)
		if caseOnly {
			return Route{}, &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonPath,
				Message: "path must be written in lower case, as " + "/" + strings.Join(rt.segs, "/")}
		}
		if !ok {
			continue
		}
		ep, ok := rt.methods[method]
		if !ok {
			return Route{}, &domain.Error{Kind: domain.KindMethodNotAllowed, Reason: domain.ReasonMethod,
				Message: "method " + safeMethod(method) + " is not allowed on " + escapedPath + "; allowed: " + rt.allow()}
		}
		return Route{Endpoint: ep, Path: escapedPath, ObjectID: id}, nil
	}
	for _, p := range r.passthrough {
		if escapedPath == p || strings.HasPrefix(escapedPath, p) && escapedPath[len(p)] == '/' {
			if !passthroughMethods[method] {
				return Route{}, &domain.Error{Kind: domain.KindMethodNotAllowed, Reason: domain.ReasonMethod,
					Message: "method " + safeMethod(method) + " is not relayed"}
			}
			return Route{Endpoint: EndpointPassthrough, Path: escapedPath}, nil
		}
	}
	return Route{}, &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath,
		Message: "not found: " + escapedPath + " is not an endpoint this relay forwards"}
}

// Allow lists the methods a catalogued path takes (for a 405's Allow
// header), "" when the path is not catalogued.
func (r *Router) Allow(escapedPath string) string {
	segs, err := canonical(escapedPath)
	if err != nil {
		return ""
	}
	for i := range catalogue {
		if _, ok, _ := catalogue[i].match(segs); ok {
			return catalogue[i].allow()
		}
	}
	return ""
}

func (rt *route) allow() string {
	var ms []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
		if _, ok := rt.methods[m]; ok {
			ms = append(ms, m)
		}
	}
	return strings.Join(ms, ", ")
}

// match reports whether segs fit the pattern (and the id segment), or
// whether they fit it only when case is ignored.
func (rt *route) match(segs []string) (id string, ok, caseOnly bool) {
	if len(segs) != len(rt.segs) {
		return "", false, false
	}
	exact := true
	for i, p := range rt.segs {
		s := segs[i]
		if p == "{id}" {
			if !validObjectID(s) {
				return "", false, false
			}
			id = s
			continue
		}
		if s != p {
			if !strings.EqualFold(s, p) {
				return "", false, false
			}
			exact = false
		}
	}
	if !exact {
		return "", false, true
	}
	return id, true, false
}

// validObjectID accepts upstream object ids: msgbatch_..., file_..., model
// ids such as claude-sonnet-4-5-20250929 (letters, digits, '-', '_', '.'
// and ':' inside, never a dot segment).
func validObjectID(s string) bool {
	if s == "" || len(s) > 128 || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':' || c == '@') {
			return false
		}
	}
	return true
}

// canonical splits an escaped path into its segments, refusing every form
// that two servers might resolve differently.
func canonical(p string) ([]string, error) {
	bad := func(why string) error {
		return &domain.Error{Kind: domain.KindInvalid, Reason: domain.ReasonPath, Message: "invalid request path: " + why}
	}
	switch {
	case p == "" || p[0] != '/':
		return nil, bad("it must start with /")
	case len(p) > maxPathLen:
		return nil, bad("it is too long")
	case p == "/":
		return nil, &domain.Error{Kind: domain.KindNotFound, Reason: domain.ReasonPath, Message: "not found: / is not an endpoint this relay forwards"}
	case p[len(p)-1] == '/':
		return nil, bad("a trailing slash is not allowed")
	}
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '%':
			return nil, bad("percent-encoding is not allowed")
		case c == '\\':
			return nil, bad("a backslash is not allowed")
		case c < 0x21 || c >= 0x7f:
			return nil, bad("control, space or non-ASCII bytes are not allowed")
		case c == ';' || c == '?' || c == '#':
			return nil, bad("';', '?' and '#' are not allowed in the path")
		}
	}
	segs := strings.Split(p[1:], "/")
	for _, s := range segs {
		switch s {
		case "":
			return nil, bad("empty segments (//) are not allowed")
		case ".", "..":
			return nil, bad("dot segments are not allowed")
		}
	}
	return segs, nil
}

// safeMethod quotes a method for a message without echoing junk.
func safeMethod(m string) string {
	if len(m) > 16 {
		return "(unknown)"
	}
	for i := 0; i < len(m); i++ {
		if c := m[i]; c < 'A' || c > 'Z' {
			return "(unknown)"
		}
	}
	return m
}
