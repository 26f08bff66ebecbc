// Package api holds the OpenAPI contract of the management API and the code
// oapi-codegen generates from it (types and the echo strict server). The
// spec is the single source of truth: handlers implement the generated
// interface, requests are validated against it, and tests check every
// response against it.
package api

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

//go:embed openapi.yaml
var specYAML []byte

// SpecYAML returns the raw OpenAPI document, as served at /openapi.yaml.
func SpecYAML() []byte { return specYAML }

var loadSpec = sync.OnceValues(func() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(specYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi spec: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate openapi spec: %w", err)
	}
	return doc, nil
})

// Spec returns the parsed and validated document. It is shared: callers must
// not modify it.
func Spec() (*openapi3.T, error) { return loadSpec() }

var specJSON = sync.OnceValues(func() ([]byte, error) {
	doc, err := Spec()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("marshal openapi spec: %w", err)
	}
	return b, nil
})

// SpecJSON returns the document as JSON, as served at /openapi.json.
func SpecJSON() ([]byte, error) { return specJSON() }
