package pricing

import (
	"encoding/json"
	"testing"

	"github.com/relaystation/relay/domain"
)

// MustSeed returns the embedded table, failing the test if it does not load.
func MustSeed(tb testing.TB) *Table {
	tb.Helper()
	t, err := Seed()
	if err != nil {
		tb.Fatalf("seed: %v", err)
	}
	return t
}

// MustParse parses a table, failing the test if it does not load.
func MustParse(tb testing.TB, s string) *Table {
	tb.Helper()
	t, err := Parse([]byte(s))
	if err != nil {
		tb.Fatalf("parse: %v", err)
	}
	return t
}

type wireUsage struct {
	Type                     string `json:"type"`
	Model                    string `json:"model"`
	InputTokens              int64  `json:"input_tokens"`
	OutputTokens             int64  `json:"output_tokens"`
	CacheCreationInputTokens int64  `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64  `json:"cache_read_input_tokens"`
	CacheCreation            *struct {
		Ephemeral5m int64 `json:"ephemeral_5m_input_tokens"`
		Ephemeral1h int64 `json:"ephemeral_1h_input_tokens"`
	} `json:"cache_creation"`
}

func (w wireUsage) usage() domain.Usage {
	u := domain.Usage{InputTokens: w.InputTokens, OutputTokens: w.OutputTokens,
		CacheCreationInputTokens: w.CacheCreationInputTokens, CacheReadInputTokens: w.CacheReadInputTokens}
	if w.CacheCreation != nil {
		u.CacheCreation5mTokens, u.CacheCreation1hTokens = w.CacheCreation.Ephemeral5m, w.CacheCreation.Ephemeral1h
	}
	return u
}

// NewRequest reads a Messages API reply (its model and usage object, the
// way Anthropic sends them) into a Request, the way the relay's adapter
// reads one. batch marks a Message Batches result.
func NewRequest(tb testing.TB, reply string, batch bool) Request {
	tb.Helper()
	var w struct {
		Model string `json:"model"`
		Usage struct {
			wireUsage
			ServerToolUse struct {
				WebSearch int64 `json:"web_search_requests"`
				WebFetch  int64 `json:"web_fetch_requests"`
			} `json:"server_tool_use"`
			ServiceTier  string      `json:"service_tier"`
			Speed        string      `json:"speed"`
			InferenceGeo string      `json:"inference_geo"`
			Iterations   []wireUsage `json:"iterations"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(reply), &w); err != nil {
		tb.Fatalf("reply: %v", err)
	}
	r := Request{
		Model: w.Model, Usage: w.Usage.usage(), Batch: batch,
		ServerTools: domain.ServerToolUse{WebSearchRequests: w.Usage.ServerToolUse.WebSearch, WebFetchRequests: w.Usage.ServerToolUse.WebFetch},
		ServiceTier: w.Usage.ServiceTier, Speed: w.Usage.Speed, InferenceGeo: w.Usage.InferenceGeo,
	}
	for _, it := range w.Usage.Iterations {
		r.Iterations = append(r.Iterations, domain.Iteration{Type: it.Type, Model: it.Model, Usage: it.usage()})
	}
	return r
}
