package fakeupstream

import (
	"strconv"
	"strings"
)

// Model is the model name the fake answers with.
const Model = "claude-sonnet-4-5-20250929"

// Usage the fake reports for every message, so a test can check accounting.
const (
	InputTokens         = 25
	OutputTokens        = 180
	CacheCreationTokens = 7
	CacheReadTokens     = 11
)

var (
	respMessage     = render("200 OK", "application/json", messageBody())
	respCountTokens = render("200 OK", "application/json", `{"input_tokens":25}`)
	respModels      = render("200 OK", "application/json",
		`{"data":[{"type":"model","id":"`+Model+`","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"},`+
			`{"type":"model","id":"claude-haiku-4-5-20251001","display_name":"Claude Haiku 4.5","created_at":"2025-10-01T00:00:00Z"}],`+
			`"has_more":false,"first_id":"`+Model+`","last_id":"claude-haiku-4-5-20251001"}`)
	respModel = render("200 OK", "application/json",
		`{"type":"model","id":"`+Model+`","display_name":"Claude Sonnet 4.5","created_at":"2025-09-29T00:00:00Z"}`)
	respNotFound = render("404 Not Found", "application/json",
		`{"type":"error","error":{"type":"not_found_error","message":"Not found"}}`)
	respBadRequest = []byte("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 11\r\nConnection: close\r\n\r\nbad request")

	respStreamHead = []byte("HTTP/1.1 200 OK\r\n" +
		"Content-Type: text/event-stream; charset=utf-8\r\n" +
		"Cache-Control: no-cache\r\n" +
		"Request-Id: req_bench_stream\r\n" +
		"Anthropic-Organization-Id: 00000000-0000-0000-0000-000000000000\r\n" +
		"Transfer-Encoding: chunked\r\n\r\n")

	usageJSON = `"usage":{"input_tokens":` + strconv.Itoa(InputTokens) +
		`,"cache_creation_input_tokens":` + strconv.Itoa(CacheCreationTokens) +
		`,"cache_read_input_tokens":` + strconv.Itoa(CacheReadTokens) +
		`,"cache_creation":{"ephemeral_5m_input_tokens":` + strconv.Itoa(CacheCreationTokens) + `,"ephemeral_1h_input_tokens":0}`

	streamPrefix = [][]byte{
		[]byte("event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_bench_stream\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"" + Model + "\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null," + usageJSON + ",\"output_tokens\":1,\"service_tier\":\"standard\"}}}\n\n"),
		[]byte("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"),
		[]byte("event: ping\ndata: {\"type\": \"ping\"}\n\n"),
	}
	deltaHead     = []byte("event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"t")
	deltaTail     = []byte(" \"}}\n\n")
	evBlockStop   = []byte("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n")
	msgDeltaHead  = []byte("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}," + usageJSON + ",\"output_tokens\":")
	msgDeltaTail  = []byte("}}\n\n")
	evMessageStop = []byte("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n")
)

// messageBody is a ~1 KB non-streaming Messages API answer.
func messageBody() string {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 16)
	return `{"id":"msg_01BenchBenchBenchBenchBench","type":"message","role":"assistant","model":"` + Model + `",` +
		`"content":[{"type":"text","text":"` + strings.TrimSpace(text) + `"}],` +
		`"stop_reason":"end_turn","stop_sequence":null,` + usageJSON + `,"output_tokens":` + strconv.Itoa(OutputTokens) + `,"service_tier":"standard"}}`
}

// MessageBody is the exact body of the non-streaming answer.
func MessageBody() []byte { return []byte(messageBody()) }

func render(status, contentType, body string) []byte {
	return []byte("HTTP/1.1 " + status + "\r\n" +
		"Content-Type: " + contentType + "\r\n" +
		"Request-Id: req_bench\r\n" +
		"Anthropic-Organization-Id: 00000000-0000-0000-0000-000000000000\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}
