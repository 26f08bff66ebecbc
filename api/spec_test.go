package api_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/relaystation/relay/api"
)

func TestSpecLoadsAndEveryErrorIsAnthropicShaped(t *testing.T) {
	doc, err := api.Spec()
	if err != nil {
		t.Fatal(err)
	}
	b, err := api.SpecJSON()
	if err != nil || !json.Valid(b) {
		t.Fatalf("spec JSON: %v", err)
	}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			for code, ref := range op.Responses.Map() {
				if !strings.HasPrefix(code, "2") && ref.Ref != "#/components/responses/Error" {
					t.Errorf("%s %s %s does not use the shared Error response", method, path, code)
				}
			}
			if op.Responses.Default() == nil {
				t.Errorf("%s %s has no default error response", method, path)
			}
		}
	}
}
