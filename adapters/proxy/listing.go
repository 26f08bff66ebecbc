package proxy

import (
	"bytes"
	"context"
	"strconv"

	"github.com/tidwall/gjson"

	"github.com/relaystation/relay/domain"
)

// objectID reads the top-level "id" of a create call's JSON answer.
func objectID(body []byte) string {
	v := gjson.GetBytes(body, "id")
	if v.Type != gjson.String || len(v.Str) > 128 {
		return ""
	}
	return v.Str
}

// filterListing rewrites an upstream listing ({"data":[...],"has_more":..,
// "first_id":..,"last_id":..}) to the entries whose id owned reports; the
// entries kept are copied byte for byte.
func filterListing(ctx context.Context, body []byte, owned func(context.Context, []string) ([]string, error)) ([]byte, error) {
	if !gjson.ValidBytes(body) {
		return nil, &domain.Error{Kind: domain.KindUpstream, Reason: domain.ReasonUpstreamListing, Message: "the upstream listing is not valid JSON"}
	}
	root := gjson.ParseBytes(body)
	data := root.Get("data")
	var ids []string
	data.ForEach(func(_, v gjson.Result) bool {
		if id := v.Get("id"); id.Type == gjson.String {
			ids = append(ids, id.Str)
		}
		return true
	})
	keep := map[string]bool{}
	if len(ids) > 0 {
		mine, err := owned(ctx, ids)
		if err != nil {
			return nil, err
		}
		for _, id := range mine {
			keep[id] = true
		}
	}
	var out bytes.Buffer
	out.Grow(len(body))
	out.WriteString(`{"data":[`)
	first, last, n := "", "", 0
	data.ForEach(func(_, v gjson.Result) bool {
		id := v.Get("id").Str
		if !keep[id] {
			return true
		}
		if n > 0 {
			out.WriteByte(',')
		}
		out.WriteString(v.Raw)
		if n == 0 {
			first = id
		}
		last, n = id, n+1
		return true
	})
	out.WriteString(`],"has_more":`)
	out.WriteString(strconv.FormatBool(root.Get("has_more").Bool()))
	for _, f := range [][2]string{{"first_id", first}, {"last_id", last}} {
		out.WriteString(`,"` + f[0] + `":`)
		if f[1] == "" {
			out.WriteString("null")
		} else {
			out.WriteString(strconv.Quote(f[1]))
		}
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}
