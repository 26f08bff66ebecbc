package config

import (
	"strings"
	"testing"
)

// TestMaxConcurrentEstimates: 0 (one per core) by default, a count from the
// file, and nothing negative.
func TestMaxConcurrentEstimates(t *testing.T) {
	t.Parallel()
	if d := Defaults().Quota.MaxConcurrentEstimates; d != 0 {
		t.Fatalf("default %d, want 0 (one per core)", d)
	}
	cfg, _, err := Load(Source{File: writeFile(t, "quota: {max_concurrent_estimates: 3}")})
	if err != nil || cfg.Quota.MaxConcurrentEstimates != 3 {
		t.Fatalf("loaded %d, %v", cfg.Quota.MaxConcurrentEstimates, err)
	}
	if _, _, err := Load(Source{File: writeFile(t, "quota: {max_concurrent_estimates: -1}")}); err == nil ||
		!strings.Contains(err.Error(), "quota.max_concurrent_estimates") {
		t.Fatalf("a negative bound: %v", err)
	}
}
