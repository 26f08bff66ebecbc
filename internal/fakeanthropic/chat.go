package fakeanthropic

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ChatUsage is the usage a /v1/chat/completions reply reports, streamed or
// not. total_tokens is PromptTokens+CompletionTokens; CachedTokens goes to
// prompt_tokens_details.cached_tokens (in OpenAI's terms a part of
// PromptTokens, which the fake does not check).
type ChatUsage struct {
	PromptTokens, CompletionTokens, CachedTokens int64
}

// DefaultChatUsage is what chat completions report unless told otherwise.
var DefaultChatUsage = ChatUsage{PromptTokens: 30, CompletionTokens: 40, CachedTokens: 5}

// ChatID is the id of the n-th request's chat completion (n counts every
// request the fake answered, as Count does).
func ChatID(n int64) string { return fmt.Sprintf("chatcmpl-01Fake%08d", n) }

type chatRequest struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func appendChatUsage(b []byte, u ChatUsage) []byte {
	return fmt.Appendf(b, `{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d,"prompt_tokens_details":{"cached_tokens":%d}}`,
		u.PromptTokens, u.CompletionTokens, u.PromptTokens+u.CompletionTokens, u.CachedTokens)
}

// jsonString renders s as a JSON string.
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// serveChat answers Anthropic's OpenAI-compatible endpoint in OpenAI's
// chat.completion / chat.completion.chunk shapes.
func (s *Server) serveChat(k *call) {
	w, r, c, st := k.w, k.r, k.c, k.st
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "Method Not Allowed")
		return
	}
	var req chatRequest
	if err := json.Unmarshal(k.body, &req); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "request body is not valid JSON: "+err.Error())
		return
	}
	x, _ := s.extrasFor(st)
	model := req.Model
	if model == "" {
		model = Model
	}
	if x.model != "" {
		model = x.model
	}
	u := s.opts.ChatUsage
	if st.ChatUsage != (ChatUsage{}) {
		u = st.ChatUsage
	}
	h := w.Header()
	if !req.Stream && r.Header.Get("x-fake-stream") != "true" {
		b := fmt.Appendf(nil, `{"id":%q,"object":"chat.completion","created":%d,"model":%s,`, ChatID(k.n), time.Now().Unix(), jsonString(model))
		b = append(b, `"choices":[{"index":0,"message":{"role":"assistant","content":`...)
		b = append(b, jsonString(string(replyText(x.large)))...)
		b = append(b, `},"finish_reason":"stop"}],"usage":`...)
		b = appendChatUsage(b, u)
		b = append(b, '}')
		h.Set("content-type", "application/json")
		h.Set("content-length", fmt.Sprint(len(b)))
		if _, err := w.Write(b); err != nil {
			s.setCancelled(c)
		}
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	chunkHead := fmt.Appendf([]byte("data: "), `{"id":%q,"object":"chat.completion.chunk","created":%d,"model":%s,`, ChatID(k.n), time.Now().Unix(), jsonString(model))
	tail := []byte("}\n\n")
	if includeUsage {
		// OpenAI sends "usage":null on every chunk but the usage one.
		tail = []byte(`,"usage":null}` + "\n\n")
	}
	chunk := func(choices string) []byte {
		b := append(append([]byte(nil), chunkHead...), `"choices":`...)
		b = append(b, choices...)
		return append(b, tail...)
	}
	h.Set("content-type", "text/event-stream; charset=utf-8")
	h.Set("cache-control", "no-cache")
	flush := flusher(w)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(chunk(`[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]`))
	flush()
	delta := chunk(`[{"index":0,"delta":{"content":` + string(jsonString(s.opts.DeltaText)) + `},"finish_reason":null}]`)
	sh := s.shapeOf(r.Header)
	for i := range sh.deltas {
		if st.DropAfter > 0 && i == st.DropAfter {
			if st.Stall > 0 && !sleep(r, st.Stall) {
				s.setCancelled(c)
			}
			panic(http.ErrAbortHandler)
		}
		if sh.spacing > 0 && !sleep(r, sh.spacing) {
			s.setCancelled(c)
			return
		}
		now := time.Now()
		s.setEvent(c, now)
		if s.opts.StampDeltas {
			delta = chunk(`[{"index":0,"delta":{"content":` + string(appendStamp(nil, now)) + `},"finish_reason":null}]`)
		}
		if _, err := w.Write(delta); err != nil {
			s.setCancelled(c)
			return
		}
		flush()
	}
	if st.NoFinal {
		return
	}
	_, _ = w.Write(chunk(`[{"index":0,"delta":{},"finish_reason":"stop"}]`))
	if includeUsage {
		b := append(append([]byte(nil), chunkHead...), `"choices":[],"usage":`...)
		b = appendChatUsage(b, u)
		_, _ = w.Write(append(b, "}\n\n"...))
	}
	_, _ = w.Write([]byte("data: [DONE]\n\n"))
	flush()
}
