package anthropic

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/relaystation/relay/domain"
)

// claudeCodeBody is shaped like a Claude Code turn: a long system prompt,
// tool definitions, a conversation with tool results, non-ASCII text.
func claudeCodeBody(turns int) []byte {
	tools := make([]map[string]any, 0, 20)
	for i := range 20 {
		tools = append(tools, map[string]any{"name": fmt.Sprintf("tool_%d", i), "description": strings.Repeat("Does a thing — carefully. ", 20),
			"input_schema": map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}}})
	}
	var msgs []map[string]any
	for i := range turns {
		msgs = append(msgs, map[string]any{"role": "user", "content": []map[string]any{{"type": "text", "text": strings.Repeat("Please fix the bug in main.go é ✓ ", 30)}}})
		msgs = append(msgs, map[string]any{"role": "assistant", "content": []map[string]any{{"type": "tool_use", "id": fmt.Sprintf("toolu_%d", i), "name": "tool_1", "input": map[string]any{"path": "/src/main.go"}}}})
		msgs = append(msgs, map[string]any{"role": "user", "content": []map[string]any{{"type": "tool_result", "tool_use_id": fmt.Sprintf("toolu_%d", i), "content": strings.Repeat("func main() {\n\tfmt.Println(\"hi\\t\")\n}\n", 40)}}})
	}
	b, _ := json.Marshal(map[string]any{"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": true,
		"system": []map[string]any{{"type": "text", "text": strings.Repeat("You are Claude Code. ", 400), "cache_control": map[string]any{"type": "ephemeral"}}},
		"tools":  tools, "messages": msgs})
	return b
}

func BenchmarkParseClaudeCode(b *testing.B) {
	for _, turns := range []int{2, 40} {
		body := claudeCodeBody(turns)
		b.Run(fmt.Sprintf("%dKB", len(body)>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (Parser{}).ParseRequest(body, domain.FormatMessages); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkParseTools: the tools walk is linear in the number of tools,
// and a tools array past maxTools is refused after maxTools of them.
func BenchmarkParseTools(b *testing.B) {
	for _, n := range []int{1_000, maxTools, 100_000} {
		body := toolsBody(n, `{"name":"t","input_schema":{"type":"object"}}`)
		b.Run(fmt.Sprintf("%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				_, _ = (Parser{}).ParseRequest(body, domain.FormatMessages)
			}
		})
	}
}
