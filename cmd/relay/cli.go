package main

import (
	"context"
	"encoding/json"

	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/api/client"
)

// The admin CLI talks to a running relay's admin API through the client
// generated from api/openapi.yaml, so operators never hand-craft JWTs.

type cliFlags struct {
	url, user, password, token string
	envPassword, envToken      string
	json                       bool
}

func (f *cliFlags) register(fs *flag.FlagSet, e env) {
	def := func(names ...string) string {
		for _, n := range names {
			if v := e.get(n); v != "" {
				return v
			}
		}
		return ""
	}
	url := def("RELAY_URL")
	if url == "" {
		url = "http://127.0.0.1:8000"
	}
	user := def("RELAY_ADMIN_USERNAME", "ADMIN_USERNAME")
	if user == "" {
		user = "admin"
	}
	fs.StringVar(&f.url, "url", url, "relay base URL (env RELAY_URL)")
	fs.StringVar(&f.user, "user", user, "admin username (env RELAY_ADMIN_USERNAME, ADMIN_USERNAME)")
	// Secrets are not flag defaults: flag prints defaults in its usage text.
	fs.StringVar(&f.password, "password", "", "admin password (default: env RELAY_ADMIN_PASSWORD or ADMIN_PASSWORD)")
	fs.StringVar(&f.token, "token", "", "admin JWT instead of a password (default: env RELAY_ADMIN_TOKEN)")
	fs.BoolVar(&f.json, "json", false, "print JSON")
	f.envPassword = def("RELAY_ADMIN_PASSWORD", "ADMIN_PASSWORD")
	f.envToken = def("RELAY_ADMIN_TOKEN")
}

// credentials fills in the secrets from the environment when no flag gave
// them; call it after parsing.
func (f *cliFlags) credentials() {
	if f.password == "" {
		f.password = f.envPassword
	}
	if f.token == "" {
		f.token = f.envToken
	}
}

// apiError turns a non-2xx response into a readable error without echoing
// any credential.
func apiError(resp *http.Response, body []byte) error {
	var e client.Error
	if json.Unmarshal(body, &e) == nil && e.Error.Message != "" {
		return fmt.Errorf("%s: %s (%s)", resp.Status, e.Error.Message, e.Error.Type)
	}
	return fmt.Errorf("%s", resp.Status)
}

// adminClient logs in (unless a token was given) and returns a client that
// sends the bearer token.
func (f *cliFlags) adminClient(ctx context.Context) (*client.ClientWithResponses, error) {
	f.credentials()
	hc := &http.Client{Timeout: 30 * time.Second}
	token := f.token
	if token == "" {
		if f.password == "" {
			return nil, usageError{"no credentials: pass --password or --token, or set RELAY_ADMIN_PASSWORD / RELAY_ADMIN_TOKEN"}
		}
		c, err := client.NewClientWithResponses(f.url, client.WithHTTPClient(hc))
		if err != nil {
			return nil, err
		}
		resp, err := c.AdminLoginWithResponse(ctx, func(_ context.Context, r *http.Request) error {
			r.SetBasicAuth(f.user, f.password)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		if resp.JSON200 == nil {
			return nil, fmt.Errorf("login: %w", apiError(resp.HTTPResponse, resp.Body))
		}
		token = resp.JSON200.AccessToken
	}
	return client.NewClientWithResponses(f.url, client.WithHTTPClient(hc),
		client.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			return nil
		}))
}

const keysUsage = `usage: relay keys <command> [flags]

commands:
  create --name NAME [--description D] [--token-limit N] [--tier T] [--expires RFC3339] [--allowed-ips CIDR,...] [--allowed-domains HOST,...]
  list [--active=true|false] [--name TEXT] [--limit N]
  get ID
  disable ID | enable ID | rotate ID | delete ID

common flags: --url --user --password --token --json
`

func keysCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(e.stdout, keysUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("keys "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	var (
		name, desc, tier, expires, ips, domains string
		tokenLimit                              int64 = -1
		active                                  string
		limit                                   int
	)
	switch sub {
	case "create":
		fs.StringVar(&name, "name", "", "key name (required)")
		fs.StringVar(&desc, "description", "", "description")
		fs.Int64Var(&tokenLimit, "token-limit", -1, "token quota; omit for unlimited")
		fs.StringVar(&tier, "tier", "", "rate-limit tier; omit for the default")
		fs.StringVar(&expires, "expires", "", "expiry time, RFC 3339")
		fs.StringVar(&ips, "allowed-ips", "", "comma-separated CIDRs or addresses")
		fs.StringVar(&domains, "allowed-domains", "", "comma-separated host patterns, e.g. *.example.com")
	case "list":
		fs.StringVar(&active, "active", "", "true or false to filter")
		fs.StringVar(&name, "name", "", "filter by name substring")
		fs.IntVar(&limit, "limit", 100, "page size")
	case "get", "disable", "enable", "rotate", "delete":
	default:
		return usageError{fmt.Sprintf("unknown keys command %q\n\n%s", sub, keysUsage)}
	}
	// Allow the id before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	limitSet := false
	fs.Visit(func(fl *flag.Flag) { limitSet = limitSet || fl.Name == "token-limit" })
	if limitSet && tokenLimit < 0 {
		return usageError{"keys create: --token-limit must be 0 or more (omit it for unlimited)"}
	}
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	var keyID uuid.UUID
	if sub != "create" && sub != "list" {
		var err error
		if keyID, err = uuid.Parse(id); err != nil {
			return usageError{fmt.Sprintf("keys %s: need a key id (UUID), got %q", sub, id)}
		}
	}
	c, err := f.adminClient(ctx)
	if err != nil {
		return err
	}
	switch sub {
	case "create":
		if name == "" {
			return usageError{"keys create: --name is required"}
		}
		body := client.CreateKeyJSONRequestBody{Name: name}
		if desc != "" {
			body.Description = &desc
		}
		if limitSet {
			body.TokenLimit = &tokenLimit
		}
		if tier != "" {
			body.RateLimitTier = &tier
		}
		if expires != "" {
			t, err := time.Parse(time.RFC3339, expires)
			if err != nil {
				return usageError{"keys create: --expires must be RFC 3339, e.g. 2027-01-31T00:00:00Z"}
			}
			body.ExpiresAt = &t
		}
		if ips != "" {
			l := splitComma(ips)
			body.AllowedIps = &l
		}
		if domains != "" {
			l := splitComma(domains)
			body.AllowedDomains = &l
		}
		resp, err := c.CreateKeyWithResponse(ctx, body)
		if err != nil {
			return err
		}
		if resp.JSON201 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, resp.JSON201)
		}
		k := resp.JSON201
		fmt.Fprintf(e.stdout, "created key %s (%s)\n\n  %s\n\nThis is the only time the key is shown. Store it now.\n", k.Name, k.Id, k.ApiKey)
		return nil
	case "list":
		p := &client.ListKeysParams{Limit: &limit}
		if name != "" {
			p.Name = &name
		}
		if active != "" {
			b, err := strconv.ParseBool(active)
			if err != nil {
				return usageError{"keys list: --active must be true or false"}
			}
			p.Active = &b
		}
		var all []client.APIKey
		for {
			resp, err := c.ListKeysWithResponse(ctx, p)
			if err != nil {
				return err
			}
			if resp.JSON200 == nil {
				return apiError(resp.HTTPResponse, resp.Body)
			}
			all = append(all, resp.JSON200.Data...)
			if resp.JSON200.NextCursor == nil || len(all) >= limit {
				break
			}
			p.Cursor = resp.JSON200.NextCursor
		}
		if f.json {
			return printJSON(e.stdout, all)
		}
		printKeys(e.stdout, all)
		return nil
	case "get":
		resp, err := c.GetKeyWithResponse(ctx, keyID)
		if err != nil {
			return err
		}
		return keyResult(e.stdout, f.json, resp.JSON200, resp.HTTPResponse, resp.Body)
	case "disable":
		resp, err := c.DisableKeyWithResponse(ctx, keyID)
		if err != nil {
			return err
		}
		return keyResult(e.stdout, f.json, resp.JSON200, resp.HTTPResponse, resp.Body)
	case "enable":
		resp, err := c.EnableKeyWithResponse(ctx, keyID)
		if err != nil {
			return err
		}
		return keyResult(e.stdout, f.json, resp.JSON200, resp.HTTPResponse, resp.Body)
	case "rotate":
		resp, err := c.RotateKeyWithResponse(ctx, keyID)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, resp.JSON200)
		}
		fmt.Fprintf(e.stdout, "rotated key %s; the old key no longer works. New key (shown once):\n\n  %s\n", resp.JSON200.Id, resp.JSON200.ApiKey)
		return nil
	case "delete":
		resp, err := c.DeleteKeyWithResponse(ctx, keyID)
		if err != nil {
			return err
		}
		if resp.StatusCode() != http.StatusNoContent {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, map[string]any{"id": keyID, "deleted": true})
		}
		fmt.Fprintf(e.stdout, "deleted key %s (its usage history is kept)\n", keyID)
		return nil
	}
	return nil
}

func usageCmd(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	groupBy := fs.String("group-by", "key", "key, day or model")
	from := fs.String("from", "", "inclusive start, RFC 3339 (default 30 days ago)")
	to := fs.String("to", "", "exclusive end, RFC 3339 (default now)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	p := &client.AdminUsageParams{}
	g := client.AdminUsageParamsGroupBy(*groupBy)
	switch *groupBy {
	case "key", "day", "model":
		p.GroupBy = &g
	case "", "none":
	default:
		return usageError{"usage: --group-by must be key, day or model"}
	}
	for _, tv := range []struct {
		s   string
		dst **time.Time
	}{{*from, &p.From}, {*to, &p.To}} {
		if tv.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, tv.s)
		if err != nil {
			return usageError{"usage: --from/--to must be RFC 3339"}
		}
		*tv.dst = &t
	}
	c, err := f.adminClient(ctx)
	if err != nil {
		return err
	}
	resp, err := c.AdminUsageWithResponse(ctx, p)
	if err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	if f.json {
		return printJSON(e.stdout, resp.JSON200)
	}
	u := resp.JSON200
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tREQUESTS\tINPUT\tOUTPUT\tCACHE_WRITE\tCACHE_READ\tTOTAL\n", strings.ToUpper(*groupBy))
	for _, r := range u.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\n", r.Group, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens, r.CacheReadInputTokens, r.TotalTokens)
	}
	t := u.Totals
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t%d\t%d\n", t.Requests, t.InputTokens, t.OutputTokens, t.CacheCreationInputTokens, t.CacheReadInputTokens, t.TotalTokens)
	return tw.Flush()
}

func printKeys(w io.Writer, keys []client.APIKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tACTIVE\tTIER\tUSED\tLIMIT\tEXPIRES")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%d\t%s\t%s\n", k.Id, k.Name, k.KeyPrefix, k.IsActive, k.RateLimitTier, k.TokensUsed, limitText(k.TokenLimit), timeText(k.ExpiresAt))
	}
	_ = tw.Flush()
}

// keyResult prints the key of a successful answer, or the API's error.
func keyResult(w io.Writer, asJSON bool, k *client.APIKey, resp *http.Response, body []byte) error {
	if k == nil {
		return apiError(resp, body)
	}
	return printKey(w, asJSON, *k)
}

func printKey(w io.Writer, asJSON bool, k client.APIKey) error {
	if asJSON {
		return printJSON(w, k)
	}
	printKeys(w, []client.APIKey{k})
	return nil
}

func limitText(l *int64) string {
	if l == nil {
		return "unlimited"
	}
	return strconv.FormatInt(*l, 10)
}

func timeText(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func splitComma(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
