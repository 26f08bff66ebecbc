package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
)

func TestKeyUpstreamGroup(t *testing.T) {
	ctx := context.Background()
	var stored domain.APIKey
	st := &fakeStore{
		getTier:   func(_ context.Context, name string) (domain.Tier, error) { return domain.Tier{Name: name}, nil },
		createKey: func(_ context.Context, k domain.APIKey) error { stored = k; return nil },
		getKey:    func(context.Context, uuid.UUID) (domain.APIKey, error) { return stored, nil },
		updateKey: func(_ context.Context, k domain.APIKey, _ time.Time) error { stored = k; return nil },
	}
	s := newService(t, st, &fakeCache{}, nil)
	ik, err := s.IssueKey(ctx, admin.IssueKeyInput{Name: "n", UpstreamGroup: "team-a"})
	if err != nil || ik.Key.UpstreamGroup != "team-a" || stored.UpstreamGroup != "team-a" {
		t.Fatalf("issued %+v, stored %+v, %v", ik.Key, stored, err)
	}
	// PATCH: absent leaves it, "" moves the key to the default group.
	k, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: ik.Key.ID, Name: strPtr("m")})
	if err != nil || k.UpstreamGroup != "team-a" {
		t.Fatalf("update without the group: %+v, %v", k, err)
	}
	k, err = s.UpdateKey(ctx, admin.UpdateKeyInput{ID: ik.Key.ID, UpstreamGroup: strPtr("")})
	if err != nil || k.UpstreamGroup != "" || stored.UpstreamGroup != "" {
		t.Fatalf("update to the default group: %+v, %v", k, err)
	}
	for _, g := range []string{strings.Repeat("g", 65), "a\x00b", "a\nb", "\xff"} {
		if _, err := s.IssueKey(ctx, admin.IssueKeyInput{Name: "n", UpstreamGroup: g}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("issue with group %q: %v, want invalid", g, err)
		}
		if _, err := s.UpdateKey(ctx, admin.UpdateKeyInput{ID: ik.Key.ID, UpstreamGroup: strPtr(g)}); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("update to group %q: %v, want invalid", g, err)
		}
	}
	if _, err := s.IssueKey(ctx, admin.IssueKeyInput{Name: "n", UpstreamGroup: strings.Repeat("g", 64)}); err != nil {
		t.Errorf("a 64-byte group: %v", err)
	}
}

func strPtr(s string) *string { return &s }
