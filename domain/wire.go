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
	// FileIDs are the uploaded files the body refers to (file_id values,
	// at any depth): each must belong to the calling key.
	FileIDs []string
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
