package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/pool"
)

// The access line says what the slog line it replaces says, key for key
// and value for value, whatever bytes the strings hold.
func TestAccessLineMatchesSlog(t *testing.T) {
	hostile := []string{
		"", "plain", `quote " and \ backslash`, "new\nline\r\ttab", "\x00\x01\x1f\x7f",
		"<script>&amp;</script>", "\u2028\u2029", "é 漢字 🎉", "bad \xff\xfe utf8 \xc3", "\xed\xa0\x80",
	}
	for i, s := range hostile {
		rec := &domain.UsageRecord{RequestID: "req_" + s, KeyID: uuid.New(), Model: s, Path: "/v1/messages" + s,
			Endpoint: "messages", Status: 200 + i, Stream: i%2 == 0, Estimated: i%3 == 0,
			Usage:   domain.Usage{InputTokens: int64(i), OutputTokens: 1 << 40, CacheCreationInputTokens: -1, CacheReadInputTokens: 7},
			Latency: time.Duration(i) * time.Millisecond, TTFB: 1234567, Upstream: s, ErrorType: s}
		info := &upstream.Info{Upstream: s, Why: pool.Why(s), Retries: i,
			Skips: []pool.Skip{{Upstream: s, Reason: pool.SkipReason(s)}}}

		var fast, slow bytes.Buffer
		accessLine{w: &fast}.write(time.Now(), rec, info)
		h := &Handler{log: slog.New(slog.NewJSONHandler(&slow, nil))}
		h.logLine(rec, *info)

		if n := bytes.Count(fast.Bytes(), []byte("\n")); n != 1 || !bytes.HasSuffix(fast.Bytes(), []byte("\n")) {
			t.Fatalf("%q: the line must be one line: %q", s, fast.String())
		}
		var got, want map[string]any
		if err := json.Unmarshal(fast.Bytes(), &got); err != nil {
			t.Fatalf("%q: not JSON: %v\n%s", s, err, fast.String())
		}
		if err := json.Unmarshal(slow.Bytes(), &want); err != nil {
			t.Fatal(err)
		}
		for _, m := range []map[string]any{got, want} {
			if _, err := time.Parse(time.RFC3339Nano, m["time"].(string)); err != nil {
				t.Fatalf("time %v: %v", m["time"], err)
			}
			delete(m, "time")
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got %v\nwant %v", s, got, want)
		}
	}
}

func TestAccessLineReplacesTheSlogLine(t *testing.T) {
	var logs, access bytes.Buffer
	h := New(Options{Log: slog.New(slog.NewJSONHandler(&logs, nil)), AccessLog: &access})
	h.logLine(&domain.UsageRecord{RequestID: "req_1"}, upstream.Info{})
	if logs.Len() != 0 || !bytes.Contains(access.Bytes(), []byte(`"request_id":"req_1"`)) {
		t.Fatalf("logs %q, access %q", logs.String(), access.String())
	}
	// Below Info, neither writes.
	access.Reset()
	h = New(Options{Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})), AccessLog: &access})
	h.logLine(&domain.UsageRecord{RequestID: "req_2"}, upstream.Info{})
	if logs.Len() != 0 || access.Len() != 0 {
		t.Fatalf("logs %q, access %q", logs.String(), access.String())
	}
}

func BenchmarkAccessLine(b *testing.B) {
	rec := &domain.UsageRecord{RequestID: "req_0123456789abcdef01234567", KeyID: uuid.New(), Model: "claude-sonnet-4-5-20250929",
		Path: "/v1/messages", Endpoint: "messages", Status: 200, Usage: domain.Usage{InputTokens: 12, OutputTokens: 64},
		Latency: 3 * time.Millisecond, TTFB: time.Millisecond, Upstream: "0b0e2c8e-5f49-4c1e-9d0e-5c8b9b8f0a11"}
	info := upstream.Info{Upstream: "primary", Why: pool.WhyPinned}
	b.Run("slog", func(b *testing.B) {
		h := &Handler{log: slog.New(slog.NewJSONHandler(discard{}, nil))}
		b.ReportAllocs()
		for b.Loop() {
			h.logLine(rec, info)
		}
	})
	b.Run("access", func(b *testing.B) {
		h := &Handler{log: slog.New(slog.NewJSONHandler(discard{}, nil)), access: &accessLine{w: discard{}}}
		b.ReportAllocs()
		for b.Loop() {
			h.logLine(rec, info)
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
