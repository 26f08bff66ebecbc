package domain

// WireFormat is the body format of a metered endpoint.
type WireFormat uint8

const (
	// FormatMessages is Anthropic's Messages API (and a batch request's params).
	FormatMessages WireFormat = iota
	// FormatChat is the OpenAI-compatible chat.completions format.
	FormatChat
	// FormatComplete is the legacy Text Completions format.
	FormatComplete
)

// MaxTokens bounds every token count one request may name or be reserved
// for (max_tokens and its kin, an input estimate): 2^30, beyond any model's
// context, so that reservations computed from it never overflow. A body
// naming more is refused.
const MaxTokens = 1 << 30

// CallRequest is what admission needs from a metered request body, read
// strictly: a body whose money-deciding fields are ambiguous is refused
// before this exists.
type CallRequest struct {
	Model  string
	Stream bool
	// MaxTokens is the output bound the body names (max_tokens,
	// max_completion_tokens, max_tokens_to_sample), 0 when absent.
	MaxTokens int64
	// MaxTokensSet: the body named one. max_tokens 0 (a Messages call that
	// only fills the prompt cache) is a real bound of zero; an absent one
	// reserves the default.
	MaxTokensSet bool
	// IncludeUsage: an OpenAI-format stream asked for the final usage chunk.
	IncludeUsage bool
	// Speed is the body's speed ("fast" asks for fast mode), "" if absent.
	Speed string
	// InferenceGeo is the body's inference_geo, "" if absent (the
	// workspace's default geo applies, which the relay cannot see).
	InferenceGeo string
	// WebSearch bounds the body's web_search server tools: how many such
	// tools it declares, and the sum of their max_uses.
	WebSearch ToolBound
	// UserID is the body's metadata.user_id (a session key for upstream
	// stickiness), "" if absent.
	UserID string
	// FileIDs are the uploaded files the body refers to (file_id values,
	// at any depth): each must belong to the calling key.
	FileIDs []string
}

// ToolBound describes the server tools of one type a request declares.
type ToolBound struct {
	// Tools is how many tools of the type the request declares.
	Tools int
	// Unbounded is how many of them set no max_uses.
	Unbounded int
	// MaxUses sums the max_uses of the others.
	MaxUses int64
}

// Bound is the most calls the tools may make: their max_uses, plus
// perUnbounded for each tool without one.
func (b ToolBound) Bound(perUnbounded int64) int64 {
	return min(b.MaxUses+int64(b.Unbounded)*perUnbounded, MaxTokens)
}

// BatchItem is one request of a Message Batch.
type BatchItem struct {
	CustomID string
	Request  CallRequest
	// Params is the request's params object, a sub-slice of the batch body.
	Params []byte
}

// BatchResult is one request's result in an ended Message Batch.
type BatchResult struct {
	CustomID string
	// Type is "succeeded", "errored", "canceled" or "expired"; only
	// succeeded requests are billed.
	Type         string
	Model        string
	Usage        Usage
	Iterations   []Iteration
	ServerTools  ServerToolUse
	ServiceTier  string
	Speed        string
	InferenceGeo string
}
