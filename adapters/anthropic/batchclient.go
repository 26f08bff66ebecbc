package anthropic

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/ports"
)

// BatchClient reads Message Batches from the upstream for the reconciler.
// It sends through the relay's upstream transport, which sets the real key
// and picks the upstream; GETs are idempotent, so that transport may retry
// them.
type BatchClient struct {
	rt      http.RoundTripper
	version string
}

var _ ports.BatchUpstream = (*BatchClient)(nil)

// NewBatchClient builds a client over rt (an *upstream.Transport).
func NewBatchClient(rt http.RoundTripper) *BatchClient {
	return &BatchClient{rt: rt, version: "2023-06-01"}
}

func (c *BatchClient) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://upstream"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("batch request: %w", err)
	}
	req.Header.Set("anthropic-version", c.version)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("batch request: %w", err)
	}
	if resp.StatusCode == http.StatusNotFound {
		resp.Body.Close()
		return nil, &domain.Error{Kind: domain.KindNotFound, Message: "batch not found upstream"}
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, &domain.Error{Kind: domain.KindUpstream, Message: fmt.Sprintf("batch request answered %d", resp.StatusCode)}
	}
	return resp, nil
}

// BatchEnded implements ports.BatchUpstream.
func (c *BatchClient) BatchEnded(ctx context.Context, id string) (bool, error) {
	resp, err := c.get(ctx, "/v1/messages/batches/"+id)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return false, fmt.Errorf("read batch: %w", err)
	}
	return gjson.GetBytes(b, "processing_status").Str == "ended", nil
}

// BatchResults implements ports.BatchUpstream.
func (c *BatchClient) BatchResults(ctx context.Context, id string, fn func(domain.BatchResult) error) error {
	resp, err := c.get(ctx, "/v1/messages/batches/"+id+"/results")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return ScanBatchResults(resp.Body, func(r BatchResult) error {
		return fn(domain.BatchResult{
			CustomID: r.CustomID, Type: r.Type, Model: r.Model, Usage: r.Usage, Iterations: r.Iterations,
			ServerTools: r.ServerTools, ServiceTier: r.ServiceTier, Speed: r.Speed, InferenceGeo: r.InferenceGeo,
		})
	})
}
