package anthropic

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/relaystation/relay/domain"
)

// MaxBatchResultLine bounds one line of a Message Batch's results: a
// succeeded result carries the whole message, so lines can be large, but
// one longer than this is an error rather than an unbounded buffer.
const MaxBatchResultLine = 64 << 20

// BatchResult is one request's result in an ended Message Batch.
type BatchResult struct {
	CustomID string
	// Type is result.type: "succeeded", "errored", "canceled" or
	// "expired"; only a succeeded result carries a message and usage.
	Type  string
	Model string
	// Usage is the message's top-level counts; with Iterations the caller
	// bills domain.BilledUsage(Usage, Iterations).
	Usage        domain.Usage
	Iterations   []domain.Iteration
	ServerTools  domain.ServerToolUse
	ServiceTier  string
	InferenceGeo string
	Speed        string
}

// ScanBatchResults reads the JSONL results of a Message Batch (one
// {"custom_id": ..., "result": {"type": ..., "message": {...}}} per line)
// and calls fn with each, in order, stopping at fn's first error. Memory is
// bounded by the longest line, at most MaxBatchResultLine; a longer line, a
// line that is not a JSON object, or one without a string custom_id and
// result.type is an error.
func ScanBatchResults(r io.Reader, fn func(BatchResult) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxBatchResultLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		res, err := parseBatchResult(line)
		if err != nil {
			return fmt.Errorf("batch results line %d: %w", n, err)
		}
		if err := fn(res); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("batch results line %d: longer than %d bytes: %w", n+1, MaxBatchResultLine, err)
		}
		return fmt.Errorf("read batch results: %w", err)
	}
	return nil
}

func parseBatchResult(line []byte) (BatchResult, error) {
	if checkJSON(line) != jsonValid || kind(line) != '{' {
		return BatchResult{}, errors.New("not a JSON object")
	}
	var (
		r              BatchResult
		id, typ        []byte
		result, msg, u []byte
		scratch        [maxKeyRaw * 2]byte
	)
	forEachMember(line, func(key, val []byte) bool {
		switch string(keyName(key, scratch[:])) {
		case "custom_id":
			id = val
		case "result":
			result = val
		}
		return true
	})
	if strContent(id) == nil {
		return BatchResult{}, errors.New("no string custom_id")
	}
	forEachMember(result, func(key, val []byte) bool {
		switch string(keyName(key, scratch[:])) {
		case "type":
			typ = val
		case "message":
			msg = val
		}
		return true
	})
	if strContent(typ) == nil {
		return BatchResult{}, errors.New("no string result.type")
	}
	r.CustomID = unescapeString(id)
	r.Type = cut(unescapeString(typ), maxLabel)
	forEachMember(msg, func(key, val []byte) bool {
		switch string(keyName(key, scratch[:])) {
		case "model":
			if strContent(val) != nil {
				r.Model = cut(unescapeString(val), maxLabel)
			}
		case "usage":
			u = val
		}
		return true
	})
	if u != nil {
		var f usageFields
		f.apply(u)
		r.Usage, r.Iterations, r.ServerTools = f.Usage, f.Iterations, f.ServerTools
		r.ServiceTier, r.InferenceGeo, r.Speed = f.ServiceTier, f.InferenceGeo, f.Speed
	}
	return r, nil
}

// unescapeString is the decoded text of a JSON string token, as a new
// string.
func unescapeString(v []byte) string {
	c := strContent(v)
	out, _ := appendUnescaped(make([]byte, 0, len(c)), c, -1)
	return string(out)
}
