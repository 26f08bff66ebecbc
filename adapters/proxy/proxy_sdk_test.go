package proxy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/internal/fakeanthropic"
)

// TestProxySDK drives the relay with Anthropic's official Go SDK, pointed at
// it with option.WithBaseURL, both plain and streaming.
func TestProxySDK(t *testing.T) {
	env := newProxyEnv(t, proxyEnvOptions{fake: fakeanthropic.Options{Deltas: 12, DeltaText: "stream "}})
	client := anthropic.NewClient(option.WithBaseURL(env.relayURL), option.WithAPIKey(env.good), option.WithMaxRetries(0))
	params := anthropic.MessageNewParams{
		Model:     anthropic.ModelClaudeSonnet4_5,
		MaxTokens: 1024,
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("Hello, Claude"))},
	}
	fu := fakeanthropic.DefaultUsage
	ctx := context.Background()

	msg, err := client.Messages.New(ctx, params)
	if err != nil {
		t.Fatal(err)
	}
	if len(msg.Content) != 1 || !strings.HasPrefix(msg.Content[0].Text, fakeanthropic.JSONText) || string(msg.Model) != fakeanthropic.Model {
		t.Fatalf("message %+v", msg)
	}
	if msg.Usage.InputTokens != fu.InputTokens || msg.Usage.OutputTokens != fu.OutputTokens ||
		msg.Usage.CacheReadInputTokens != fu.CacheReadInputTokens || msg.Usage.CacheCreation.Ephemeral1hInputTokens != fu.CacheCreation1h {
		t.Fatalf("sdk usage %+v", msg.Usage)
	}
	if up := env.fake.Last(); up.Header.Get("x-api-key") != proxyUpstreamKey || up.Header.Get("anthropic-version") == "" ||
		!strings.Contains(up.Header.Get("user-agent"), "Anthropic/Go") {
		t.Fatalf("upstream headers %v", up.Header)
	}

	stream := client.Messages.NewStreaming(ctx, params)
	acc := anthropic.Message{}
	for stream.Next() {
		if err := acc.Accumulate(stream.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if len(acc.Content) != 1 || acc.Content[0].Text != strings.Repeat("stream ", 12) || acc.Usage.OutputTokens != 12 ||
		acc.Usage.CacheCreationInputTokens != fu.CacheCreationInputTokens {
		t.Fatalf("accumulated %+v", acc)
	}

	recs := env.waitRecords(2)
	byStream := map[bool]domain.UsageRecord{recs[0].Stream: recs[0], recs[1].Stream: recs[1]}
	want := domain.Usage{InputTokens: fu.InputTokens, CacheCreationInputTokens: fu.CacheCreationInputTokens,
		CacheReadInputTokens: fu.CacheReadInputTokens, CacheCreation5mTokens: fu.CacheCreation5m, CacheCreation1hTokens: fu.CacheCreation1h}
	plain, streamed := want, want
	plain.OutputTokens, streamed.OutputTokens = fu.OutputTokens, 12
	if r := byStream[false]; r.Usage != plain || r.Estimated || r.Status != 200 {
		t.Fatalf("plain record %+v", r)
	}
	if r := byStream[true]; r.Usage != streamed || r.Estimated || r.Status != 200 {
		t.Fatalf("stream record %+v", r)
	}
}
