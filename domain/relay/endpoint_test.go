package relay

import (
	"net/http"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

func mustRouter(t testing.TB, passthrough ...string) *Router {
	t.Helper()
	r, err := NewRouter(passthrough)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestClassifyPathVariants: every spelling that a tolerant server could
// read as a billable path is refused, never relayed as something free.
func TestClassifyPathVariants(t *testing.T) {
	r := mustRouter(t, "/v1/organizations")
	cases := []struct {
		method, path string
		want         Endpoint
		kind         domain.Kind
	}{
		{"POST", "/v1/messages", EndpointMessages, 0},
		{"POST", "/v1/complete", EndpointComplete, 0},
		{"POST", "/v1/chat/completions", EndpointChatCompletions, 0},
		{"POST", "/v1/messages/count_tokens", EndpointCountTokens, 0},
		{"GET", "/v1/models", EndpointModels, 0},
		{"GET", "/v1/models/claude-sonnet-4-5-20250929", EndpointModel, 0},
		{"POST", "/v1/messages/batches", EndpointBatchCreate, 0},
		{"GET", "/v1/messages/batches", EndpointBatchList, 0},
		{"GET", "/v1/messages/batches/msgbatch_01abc", EndpointBatchGet, 0},
		{"DELETE", "/v1/messages/batches/msgbatch_01abc", EndpointBatchDelete, 0},
		{"POST", "/v1/messages/batches/msgbatch_01abc/cancel", EndpointBatchCancel, 0},
		{"GET", "/v1/messages/batches/msgbatch_01abc/results", EndpointBatchResults, 0},
		{"POST", "/v1/files", EndpointFileUpload, 0},
		{"GET", "/v1/files", EndpointFileList, 0},
		{"GET", "/v1/files/file_011", EndpointFileGet, 0},
		{"DELETE", "/v1/files/file_011", EndpointFileDelete, 0},
		{"GET", "/v1/files/file_011/content", EndpointFileContent, 0},
		{"GET", "/v1/organizations/me", EndpointPassthrough, 0},
		{"GET", "/v1/organizations", EndpointPassthrough, 0},

		{"POST", "/v1/messages/", 0, domain.KindInvalid},
		{"POST", "//v1/messages", 0, domain.KindInvalid},
		{"POST", "/v1//messages", 0, domain.KindInvalid},
		{"POST", "/v1/./messages", 0, domain.KindInvalid},
		{"POST", "/v1/x/../messages", 0, domain.KindInvalid},
		{"POST", "/v1/messages/.", 0, domain.KindInvalid},
		{"POST", "/v1/%6dessages", 0, domain.KindInvalid},
		{"POST", "/v1%2Fmessages", 0, domain.KindInvalid},
		{"POST", "/v1/messages%2e", 0, domain.KindInvalid},
		{"POST", "/v1/messages%00", 0, domain.KindInvalid},
		{"POST", "/v1/Messages", 0, domain.KindInvalid},
		{"POST", "/V1/MESSAGES", 0, domain.KindInvalid},
		{"POST", "/v1/messages;x", 0, domain.KindInvalid},
		{"POST", "/v1\\messages", 0, domain.KindInvalid},
		{"POST", "/v1/messages\x00", 0, domain.KindInvalid},
		{"POST", "/v1/mess ages", 0, domain.KindInvalid},
		{"POST", "/v1/messages/batches/../../messages", 0, domain.KindInvalid},
		{"GET", "/v1/organizations/", 0, domain.KindInvalid},
		{"GET", "/v1/organizationsX", 0, domain.KindNotFound},
		{"POST", "/v1/messages/extra", 0, domain.KindNotFound},
		{"POST", "/v2/messages", 0, domain.KindNotFound},
		{"POST", "/", 0, domain.KindNotFound},
		{"GET", "/v1/messages", 0, domain.KindMethodNotAllowed},
		{"PUT", "/v1/messages", 0, domain.KindMethodNotAllowed},
		{"TRACE", "/v1/messages", 0, domain.KindMethodNotAllowed},
		{"PROPFIND", "/v1/models", 0, domain.KindMethodNotAllowed},
		{"TRACE", "/v1/organizations/me", 0, domain.KindMethodNotAllowed},
		{"CONNECT", "/v1/organizations", 0, domain.KindMethodNotAllowed},
	}
	for _, c := range cases {
		rt, err := r.Classify(c.method, c.path)
		if c.kind != 0 {
			if err == nil || domain.KindOf(err) != c.kind {
				t.Errorf("%s %q: got %v %v, want kind %v", c.method, c.path, rt.Endpoint, err, c.kind)
			}
			continue
		}
		if err != nil || rt.Endpoint != c.want || rt.Path != c.path {
			t.Errorf("%s %q: got %v %q %v, want %v", c.method, c.path, rt.Endpoint, rt.Path, err, c.want)
		}
	}
	if rt, _ := r.Classify("GET", "/v1/messages/batches/msgbatch_9/results"); rt.ObjectID != "msgbatch_9" {
		t.Errorf("object id %q", rt.ObjectID)
	}
	if got := r.Allow("/v1/messages/batches"); got != "GET, POST" {
		t.Errorf("Allow = %q", got)
	}
}

func TestEndpointBilling(t *testing.T) {
	for e := EndpointUnknown + 1; e < endpointCount; e++ {
		if e.String() == "unknown" {
			t.Errorf("endpoint %d has no name", e)
		}
	}
	for _, e := range []Endpoint{EndpointMessages, EndpointComplete, EndpointChatCompletions} {
		if e.Billing() != BillingMetered || !e.NeedsJSON() {
			t.Errorf("%v must be metered", e)
		}
	}
	if EndpointBatchCreate.Billing() != BillingDeferred || !EndpointBatchCreate.NeedsJSON() {
		t.Error("batch create must be deferred and read strictly")
	}
	if EndpointBatchResults.Billing() != BillingNone {
		t.Error("fetching batch results is not billed again")
	}
}

func TestNewRouterRefusesBadPrefixes(t *testing.T) {
	for _, p := range []string{"v1/x", "/v1/../x", "/v1//x", "/v1/%2e"} {
		if _, err := NewRouter([]string{p}); err == nil {
			t.Errorf("prefix %q accepted", p)
		}
	}
}

// FuzzClassify: whatever the raw path, an accepted route is already what
// any server resolves it to (no dot segments, escapes, empty segments), so
// two raw paths that reach the upstream as the same resource are always
// classified alike; and the path forwarded is the one classified.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{"/v1/messages", "/v1/messages/", "/v1/%6dessages", "/v1/./messages", "//v1/messages",
		"/v1/Messages", "/v1/messages/batches/msgbatch_1/results", "/v1/organizations/x", "/v1/files/f/content"} {
		f.Add("POST", s)
		f.Add("GET", s)
	}
	r := mustRouter(f, "/v1/organizations")
	f.Fuzz(func(t *testing.T, method, raw string) {
		rt, err := r.Classify(method, raw)
		if err != nil {
			if rt != (Route{}) {
				t.Fatalf("a refusal carried a route: %+v", rt)
			}
			return
		}
		if rt.Path != raw {
			t.Fatalf("forwarded %q, classified %q", rt.Path, raw)
		}
		// What a server resolves the path to: decoded, cleaned, case kept.
		dec, derr := url.PathUnescape(raw)
		if derr != nil || dec != raw || path.Clean(raw) != raw || strings.ContainsAny(raw, "\\;%?#") {
			t.Fatalf("accepted a non-canonical path %q", raw)
		}
		// The same resource in another case is not a different endpoint.
		if low := strings.ToLower(raw); low != raw {
			if rt2, err2 := r.Classify(method, low); err2 == nil && rt2.Endpoint != rt.Endpoint && rt.Endpoint != EndpointPassthrough {
				t.Fatalf("%q and %q classified differently: %v vs %v", raw, low, rt.Endpoint, rt2.Endpoint)
			}
		}
		if rt.Endpoint == EndpointPassthrough && !passthroughMethods[method] {
			t.Fatalf("method %q relayed", method)
		}
		if _, ok := catalogueMethod(raw, method); !ok && rt.Endpoint != EndpointPassthrough {
			t.Fatalf("%s %q classified %v outside the catalogue", method, raw, rt.Endpoint)
		}
	})
}

func catalogueMethod(p, method string) (Endpoint, bool) {
	segs, err := canonical(p)
	if err != nil {
		return 0, false
	}
	for i := range catalogue {
		if _, ok, _ := catalogue[i].match(segs); ok {
			e, ok := catalogue[i].methods[method]
			return e, ok
		}
	}
	return 0, false
}

var _ = http.MethodGet
