package anthropic

import (
	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
)

// JSONResult is what a non-streaming response body reported.
type JSONResult struct {
	Usage domain.Usage
	Model string
	// HasUsage: the body had a usage object.
	HasUsage bool
	// ErrorType is error.type of an error body ({"type":"error",...}).
	ErrorType string
}

// UsageFromJSON reads usage, model and any error type from a Messages (or
// count_tokens) response body without decoding the content.
func UsageFromJSON(body []byte) JSONResult {
	var r JSONResult
	root := gjson.Parse(b2s(body))
	if !root.IsObject() {
		return r
	}
	var isErr bool
	var errRes gjson.Result
	root.ForEach(func(key, value gjson.Result) bool {
		switch key.Str {
		case "usage":
			if value.IsObject() {
				r.HasUsage = true
				applyUsage(&r.Usage, value)
			}
		case "model":
			if value.Type == gjson.String {
				r.Model = clone(value.Str)
			}
		case "type":
			isErr = value.Str == "error"
		case "error":
			errRes = value
		}
		return true
	})
	if isErr {
		r.ErrorType = "api_error"
		if t := errRes.Get("type"); t.Type == gjson.String && t.Str != "" {
			r.ErrorType = clone(t.Str)
		}
	}
	return r
}
