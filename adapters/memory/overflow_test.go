package memory

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
)

func TestReserveNeverOverflows(t *testing.T) {
	l := NewLedger()
	defer l.Close()
	id := uuid.New()
	ctx := context.Background()
	if _, err := l.Reserve(ctx, id, "big", math.MaxInt64-10, 100_000, 50_000, time.Minute); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("a huge estimate must be refused, got %v", err)
	}
	if _, err := l.Reserve(ctx, id, "ok", 40_000, 100_000, 50_000, time.Minute); err != nil {
		t.Fatalf("a fitting reservation after the refusal: %v", err)
	}
	if _, err := l.Reserve(ctx, id, "over", 20_000, 100_000, 50_000, time.Minute); domain.KindOf(err) != domain.KindQuotaExceeded {
		t.Fatalf("the quota must still hold, got %v", err)
	}
}
