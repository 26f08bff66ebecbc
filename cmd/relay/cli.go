package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"github.com/relaystation/relay/api/client"
	"github.com/relaystation/relay/domain"
)

// The admin CLI talks to a running relay's admin API through the client
// generated from api/openapi.yaml, so operators never hand-craft JWTs.

type cliFlags struct {
	url, user, password, token string
	envPassword, envToken      string
	json                       bool
	// timeout bounds each API call; 0 is defaultCLITimeout.
	timeout time.Duration
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

// defaultCLITimeout bounds one admin API call of the CLI.
const defaultCLITimeout = 30 * time.Second

// adminClient logs in (unless a token was given) and returns a client that
// sends the bearer token.
func (f *cliFlags) adminClient(ctx context.Context) (*client.ClientWithResponses, error) {
	f.credentials()
	timeout := f.timeout
	if timeout <= 0 {
		timeout = defaultCLITimeout
	}
	hc := &http.Client{Timeout: timeout}
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
  create --name NAME [--description D] [--token-limit N] [--tier T] [--expires RFC3339] [--allowed-ips CIDR,...]
         [--allowed-domains HOST,...] [--models ID-OR-GLOB,...] [--budget WINDOW=USD[@ZONE]]... [--upstream-group G]
  update ID [--name NAME] [--description D] [--token-limit N|none] [--tier T] [--expires RFC3339|never]
         [--allowed-ips CIDR,...] [--allowed-domains HOST,...] [--models ID-OR-GLOB,...] [--budget WINDOW=USD[@ZONE]|none]...
         [--upstream-group G]
         (only the flags given change; an empty list, e.g. --models '', clears one; --upstream-group '' is the default group)
  list [--active=true|false] [--name TEXT] [--limit N]
  get ID
  disable ID | enable ID | rotate ID | delete ID

budgets: --budget is repeatable; WINDOW is 5h, day, week, month or total, USD an exact decimal
  amount, ZONE an IANA time zone for day, week and month (default the relay's), e.g.
  --budget 5h=10 --budget month=200 --budget day=5@Europe/Paris; --budget none removes them all.
models: --models 'claude-sonnet-*,claude-haiku-4-5' limits the key to those models (globs allowed).
upstream groups: --upstream-group team-a sends the key's requests to the upstreams of group team-a only.

common flags: --url --user --password --token --json
`

// budgetFlags collects repeated --budget flags.
type budgetFlags []string

func (b *budgetFlags) String() string { return strings.Join(*b, " ") }

func (b *budgetFlags) Set(v string) error {
	*b = append(*b, v)
	return nil
}

// parseBudgetFlags reads --budget values, WINDOW=USD[@ZONE] each, or the
// single value none (no budgets). Amounts are checked here so that a typo
// is named by its flag, and are sent as the exact decimal text given.
func parseBudgetFlags(items []string) ([]client.BudgetInput, error) {
	out := []client.BudgetInput{}
	for _, it := range items {
		if strings.EqualFold(strings.TrimSpace(it), "none") {
			if len(items) > 1 {
				return nil, fmt.Errorf("--budget none cannot be combined with other budgets")
			}
			return out, nil
		}
		window, rest, ok := strings.Cut(it, "=")
		window, rest = strings.TrimSpace(window), strings.TrimSpace(rest)
		if !ok || window == "" || rest == "" {
			return nil, fmt.Errorf("--budget %q: want WINDOW=USD[@ZONE], e.g. 5h=10 or day=5@Europe/Paris", it)
		}
		amount, zone, hasZone := strings.Cut(rest, "@")
		amount = strings.TrimPrefix(strings.TrimSpace(amount), "$")
		if _, err := domain.ParseUSD(amount); err != nil {
			return nil, fmt.Errorf("--budget %q: the amount must be a plain decimal of USD such as 10 or 0.5 (%v)", it, err)
		}
		b := client.BudgetInput{Window: client.BudgetWindow(window), LimitUsd: json.Number(amount)}
		if hasZone {
			z := strings.TrimSpace(zone)
			if z == "" {
				return nil, fmt.Errorf("--budget %q: name a time zone after @, e.g. day=5@Europe/Paris", it)
			}
			b.TimeZone = &z
		}
		out = append(out, b)
	}
	return out, nil
}

// budgetsText shows budgets the way --budget takes them.
func budgetsText(bs []client.Budget) string {
	if len(bs) == 0 {
		return "none"
	}
	parts := make([]string, len(bs))
	for i, b := range bs {
		parts[i] = string(b.Window) + "=" + usdText(b.LimitUsd)
		if b.TimeZone != nil && *b.TimeZone != "" {
			parts[i] += "@" + *b.TimeZone
		}
	}
	return strings.Join(parts, " ")
}

// usdText writes an exact USD amount without trailing zeros ("10", "0.1").
func usdText(n json.Number) string {
	v, err := domain.ParseUSD(strings.TrimPrefix(n.String(), "-"))
	if err != nil {
		return n.String()
	}
	s := domain.FormatFixed(int64(v), 9, 0)
	if strings.HasPrefix(n.String(), "-") && v != 0 {
		s = "-" + s
	}
	return s
}

func modelsText(ms []string) string {
	if len(ms) == 0 {
		return "any"
	}
	return strings.Join(ms, ",")
}

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
		name, desc, tier, expires, ips, domains, models, limitText string
		upstreamGroup                                              string
		tokenLimit                                                 int64 = -1
		active                                                     string
		limit                                                      int
		budgets                                                    budgetFlags
	)
	switch sub {
	case "create", "update":
		if sub == "create" {
			fs.StringVar(&name, "name", "", "key name (required)")
			fs.Int64Var(&tokenLimit, "token-limit", -1, "token quota; omit for unlimited")
			fs.StringVar(&expires, "expires", "", "expiry time, RFC 3339")
		} else {
			fs.StringVar(&name, "name", "", "new key name")
			fs.StringVar(&limitText, "token-limit", "", "token quota, or none for unlimited")
			fs.StringVar(&expires, "expires", "", "expiry time, RFC 3339, or never")
		}
		fs.StringVar(&desc, "description", "", "description")
		fs.StringVar(&tier, "tier", "", "rate-limit tier; omit for the default")
		fs.StringVar(&ips, "allowed-ips", "", "comma-separated CIDRs or addresses")
		fs.StringVar(&domains, "allowed-domains", "", "comma-separated host patterns, e.g. *.example.com")
		fs.StringVar(&models, "models", "", "comma-separated model ids or globs the key may use, e.g. claude-sonnet-*")
		fs.Var(&budgets, "budget", "money budget WINDOW=USD[@ZONE], repeatable (5h, day, week, month, total), or none")
		fs.StringVar(&upstreamGroup, "upstream-group", "", "the upstream group the key's requests go to; '' = the default group")
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
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	limitSet := given["token-limit"]
	if sub == "create" && limitSet && tokenLimit < 0 {
		return usageError{"keys create: --token-limit must be 0 or more (omit it for unlimited)"}
	}
	var budgetList []client.BudgetInput
	if given["budget"] {
		var err error
		if budgetList, err = parseBudgetFlags(budgets); err != nil {
			return usageError{"keys " + sub + ": " + err.Error()}
		}
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
		if models != "" {
			l := splitComma(models)
			body.AllowedModels = &l
		}
		if len(budgetList) > 0 {
			body.Budgets = &budgetList
		}
		if upstreamGroup != "" {
			body.UpstreamGroup = &upstreamGroup
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
		fmt.Fprintf(e.stdout, "created key %s (%s)\n  budgets: %s\n  models:  %s\n\n  %s\n\nThis is the only time the key is shown. Store it now.\n",
			k.Name, k.Id, budgetsText(k.Budgets), modelsText(k.AllowedModels), k.ApiKey)
		return nil
	case "update":
		body, err := updateBody(given, name, desc, tier, limitText, expires, ips, domains, models, budgetList)
		if err != nil {
			return err
		}
		if given["upstream-group"] {
			body.UpstreamGroup = &upstreamGroup
		}
		resp, err := c.UpdateKeyWithResponse(ctx, keyID, body)
		if err != nil {
			return err
		}
		return keyResult(e.stdout, f.json, resp.JSON200, resp.HTTPResponse, resp.Body)
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

// updateBody is the PATCH body of `keys update`: only the flags given.
func updateBody(given map[string]bool, name, desc, tier, limit, expires, ips, domains, models string, budgets []client.BudgetInput) (client.UpdateKeyRequest, error) {
	var body client.UpdateKeyRequest
	changes := 0
	for fl := range given {
		switch fl {
		case "url", "user", "password", "token", "json":
		default:
			changes++
		}
	}
	if changes == 0 {
		return body, usageError{"keys update: give at least one field to change (relay keys --help)"}
	}
	if given["name"] {
		body.Name = &name
	}
	if given["description"] {
		body.Description = &desc
	}
	if given["tier"] {
		body.RateLimitTier = &tier
	}
	if given["token-limit"] {
		if strings.EqualFold(limit, "none") {
			body.TokenLimit = json.RawMessage("null")
		} else {
			n, err := strconv.ParseInt(limit, 10, 64)
			if err != nil || n < 0 {
				return body, usageError{"keys update: --token-limit must be 0 or more, or none for unlimited"}
			}
			body.TokenLimit = json.RawMessage(strconv.FormatInt(n, 10))
		}
	}
	if given["expires"] {
		if strings.EqualFold(expires, "never") {
			body.ExpiresAt = json.RawMessage("null")
		} else {
			t, err := time.Parse(time.RFC3339, expires)
			if err != nil {
				return body, usageError{"keys update: --expires must be RFC 3339, e.g. 2027-01-31T00:00:00Z, or never"}
			}
			b, _ := json.Marshal(t)
			body.ExpiresAt = b
		}
	}
	list := func(flagName, v string) *[]string {
		if !given[flagName] {
			return nil
		}
		l := splitComma(v)
		if l == nil {
			l = []string{}
		}
		return &l
	}
	body.AllowedIps, body.AllowedDomains, body.AllowedModels = list("allowed-ips", ips), list("allowed-domains", domains), list("models", models)
	if given["budget"] {
		body.Budgets = &budgets
	}
	return body, nil
}

const usageUsage = `usage: relay usage [--group-by key|day|model|upstream] [--from T] [--to T]
       relay usage reprice --from DATE --to DATE [--apply] [--timeout D]

reprice prices the stored usage of [from, to) again with the relay's current price
table and reports what would change; --apply writes the changes. DATE is YYYY-MM-DD
(UTC midnight) or RFC 3339.

common flags: --url --user --password --token --json
`

func usageCmd(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		switch args[0] {
		case "reprice":
			return repriceCmd(ctx, args[1:], e)
		case "help", "--help", "-h":
			fmt.Fprint(e.stdout, usageUsage)
			return nil
		}
	}
	fs := flag.NewFlagSet("usage", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	groupBy := fs.String("group-by", "key", "key, day, model or upstream")
	from := fs.String("from", "", "inclusive start, RFC 3339 (default 30 days ago)")
	to := fs.String("to", "", "exclusive end, RFC 3339 (default now)")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	p := &client.AdminUsageParams{}
	g := client.AdminUsageParamsGroupBy(*groupBy)
	switch *groupBy {
	case "key", "day", "model", "upstream":
		p.GroupBy = &g
	case "", "none":
	default:
		return usageError{"usage: --group-by must be key, day, model or upstream"}
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
	fmt.Fprintf(tw, "%s\tREQUESTS\tINPUT\tOUTPUT\tCACHE_WRITE\tCACHE_READ\tTOTAL\tCOST_USD\n", strings.ToUpper(*groupBy))
	for _, r := range u.Groups {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", r.Group, r.Requests, r.InputTokens, r.OutputTokens, r.CacheCreationInputTokens, r.CacheReadInputTokens, r.TotalTokens, usdText(r.CostUsd))
	}
	t := u.Totals
	fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", t.Requests, t.InputTokens, t.OutputTokens, t.CacheCreationInputTokens, t.CacheReadInputTokens, t.TotalTokens, usdText(t.CostUsd))
	return tw.Flush()
}

// parseDay reads a --from/--to of `usage reprice`: YYYY-MM-DD (UTC
// midnight) or RFC 3339.
func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

func repriceCmd(ctx context.Context, args []string, e env) error {
	fs := flag.NewFlagSet("usage reprice", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	from := fs.String("from", "", "inclusive start: YYYY-MM-DD (UTC) or RFC 3339 (required)")
	to := fs.String("to", "", "exclusive end: YYYY-MM-DD (UTC) or RFC 3339 (required)")
	apply := fs.Bool("apply", false, "write the new costs (default: only report them)")
	fs.DurationVar(&f.timeout, "timeout", time.Hour, "how long to wait for the relay")
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if *from == "" || *to == "" {
		return usageError{"usage reprice: --from and --to are required\n\n" + usageUsage}
	}
	var body client.RepriceRequest
	var err error
	if body.From, err = parseDay(*from); err != nil {
		return usageError{fmt.Sprintf("usage reprice: --from %q: want YYYY-MM-DD or RFC 3339", *from)}
	}
	if body.To, err = parseDay(*to); err != nil {
		return usageError{fmt.Sprintf("usage reprice: --to %q: want YYYY-MM-DD or RFC 3339", *to)}
	}
	body.Apply = apply
	c, err := f.adminClient(ctx)
	if err != nil {
		return err
	}
	resp, err := c.RepriceUsageWithResponse(ctx, body)
	if err != nil {
		return err
	}
	if resp.JSON200 == nil {
		return apiError(resp.HTTPResponse, resp.Body)
	}
	if f.json {
		return printJSON(e.stdout, resp.JSON200)
	}
	printReprice(e.stdout, *resp.JSON200)
	return nil
}

func printReprice(w io.Writer, r client.RepriceReport) {
	mode := "dry run: nothing written; add --apply to write the changes"
	if r.Apply {
		mode = fmt.Sprintf("applied: %d costs rewritten, %d budget ledgers reset", r.Applied, r.KeysReset)
	}
	fmt.Fprintf(w, "repriced %s to %s with price table %s (%s)\n\n",
		r.From.UTC().Format(time.RFC3339), r.To.UTC().Format(time.RFC3339), r.PriceVersion, mode)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "records examined\t%d\n", r.Examined)
	fmt.Fprintf(tw, "kept as they are\t%d\n", r.Skipped)
	fmt.Fprintf(tw, "changed\t%d\n", r.Changed)
	if r.Apply {
		fmt.Fprintf(tw, "written\t%d\n", r.Applied)
	}
	if r.Unpriced > 0 {
		fmt.Fprintf(tw, "not fully priced\t%d\n", r.Unpriced)
	}
	fmt.Fprintf(tw, "old total\t$%s\n", usdText(r.OldTotalUsd))
	fmt.Fprintf(tw, "new total\t$%s\n", usdText(r.NewTotalUsd))
	fmt.Fprintf(tw, "difference\t%s\n", signedUSD(r.DifferenceUsd))
	_ = tw.Flush()
	if len(r.ByModel) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tCHANGED\tOLD_USD\tNEW_USD\tDIFFERENCE")
	for _, m := range r.ByModel {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", m.Model, m.Changed, usdText(m.OldUsd), usdText(m.NewUsd), signedUSD(m.DifferenceUsd))
	}
	_ = tw.Flush()
	if r.ModelsOmitted > 0 {
		fmt.Fprintf(w, "(%d more models not listed)\n", r.ModelsOmitted)
	}
}

// signedUSD writes a difference with its sign: "+$0.5", "-$1.25", "$0".
func signedUSD(n json.Number) string {
	s := usdText(n)
	switch {
	case strings.HasPrefix(s, "-"):
		return "-$" + s[1:]
	case s == "0":
		return "$0"
	}
	return "+$" + s
}

const pricingUsage = `usage: relay pricing <command> [flags]

commands:
  show [--version V]                  the current price table's models and rates (or a stored version's);
                                      with --json, the whole answer (with --version, the table as stored)
  versions                            the stored versions of the table, newest first
  set --file TABLE.json [--comment C] store a whole new table; its "version" must be new

common flags: --url --user --password --token --json
`

func pricingCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		fmt.Fprint(e.stdout, pricingUsage)
		return nil
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("pricing "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	var version, file, comment string
	switch sub {
	case "show":
		fs.StringVar(&version, "version", "", "a stored version (default: the current table)")
	case "versions":
	case "set":
		fs.StringVar(&file, "file", "", "the price table JSON (required)")
		fs.StringVar(&comment, "comment", "", "why it changes, kept with the version")
	default:
		return usageError{fmt.Sprintf("unknown pricing command %q\n\n%s", sub, pricingUsage)}
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	var table []byte
	if sub == "set" {
		if file == "" {
			return usageError{"pricing set: --file is required"}
		}
		var err error
		if table, err = os.ReadFile(file); err != nil {
			return fmt.Errorf("pricing set: %w", err)
		}
		if !json.Valid(table) {
			return usageError{fmt.Sprintf("pricing set: %s is not valid JSON", file)}
		}
	}
	c, err := f.adminClient(ctx)
	if err != nil {
		return err
	}
	switch {
	case sub == "versions":
		resp, err := c.ListPricingVersionsWithResponse(ctx)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, resp.JSON200.Data)
		}
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tCREATED\tBY\tCOMMENT")
		for _, v := range resp.JSON200.Data {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", v.Version, timeText(v.CreatedAt), v.CreatedBy, v.Comment)
		}
		return tw.Flush()
	case sub == "show" && version != "":
		resp, err := c.GetPricingVersionWithResponse(ctx, version)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, resp.JSON200.Table)
		}
		var t struct {
			Version, Source, Retrieved string
			Models                     json.RawMessage
		}
		if err := json.Unmarshal(resp.JSON200.Table, &t); err != nil {
			return fmt.Errorf("pricing show: the stored table does not decode: %w", err)
		}
		fmt.Fprintf(e.stdout, "price table %s (stored %s by %s)\nsource: %s, retrieved %s\n\n",
			t.Version, timeText(resp.JSON200.CreatedAt), resp.JSON200.CreatedBy, t.Source, t.Retrieved)
		return printRates(e.stdout, t.Models)
	}
	var p *client.Pricing
	if sub == "set" {
		body := client.PutPricingRequest{Table: table}
		if comment != "" {
			body.Comment = &comment
		}
		resp, err := c.PutPricingWithResponse(ctx, body)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		p = resp.JSON200
	} else {
		resp, err := c.GetPricingWithResponse(ctx)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		p = resp.JSON200
	}
	if f.json {
		return printJSON(e.stdout, p)
	}
	if sub == "set" {
		fmt.Fprintf(e.stdout, "stored price table %s; it is current now.\n", p.Version)
		return nil
	}
	policy := "refused"
	if p.Policy.FallbackModel != nil {
		policy = "priced as " + *p.Policy.FallbackModel
	}
	fmt.Fprintf(e.stdout, "price table %s\nsource: %s, retrieved %s\nmodels it does not price: %s\n\n", p.Version, p.Source, p.Retrieved, policy)
	if err := printRates(e.stdout, p.Models); err != nil {
		return err
	}
	if len(p.UnpricedModels) > 0 {
		fmt.Fprintln(e.stdout, "\nrequested without a price (this replica):")
		tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "MODEL\tREQUESTS\tLAST_SEEN")
		for _, u := range p.UnpricedModels {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", u.Model, u.Requests, u.LastSeen.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	}
	return nil
}

// printRates lists a table's models with their rates in USD per million
// tokens, as the table holds them.
func printRates(w io.Writer, models json.RawMessage) error {
	var entries []struct {
		ID    string `json:"id"`
		Rates struct {
			Input        json.Number `json:"input"`
			Output       json.Number `json:"output"`
			CacheWrite5m json.Number `json:"cache_write_5m"`
			CacheWrite1h json.Number `json:"cache_write_1h"`
			CacheRead    json.Number `json:"cache_read"`
		} `json:"rates"`
	}
	if err := json.Unmarshal(models, &entries); err != nil {
		return fmt.Errorf("the models do not decode: %w", err)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tINPUT\tOUTPUT\tCACHE_WRITE_5M\tCACHE_WRITE_1H\tCACHE_READ\t(USD per MTok)")
	for _, m := range entries {
		r := m.Rates
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", m.ID, r.Input, r.Output, r.CacheWrite5m, r.CacheWrite1h, r.CacheRead)
	}
	return tw.Flush()
}

func printKeys(w io.Writer, keys []client.APIKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tPREFIX\tACTIVE\tTIER\tUSED\tLIMIT\tEXPIRES\tBUDGETS\tMODELS\tUPSTREAM_GROUP")
	for _, k := range keys {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", k.Id, k.Name, k.KeyPrefix, k.IsActive, k.RateLimitTier, k.TokensUsed,
			limitText(k.TokenLimit), timeText(k.ExpiresAt), budgetsText(k.Budgets), modelsText(k.AllowedModels), groupText(k.UpstreamGroup))
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

func groupText(g string) string {
	if g == "" {
		return "default"
	}
	return g
}

const upstreamsUsage = `usage: relay upstreams <command> [flags]

commands:
  list
  get ID
  create --name NAME --upstream-url URL (--api-key-env VAR | --api-key-stdin | --api-key KEY) [--priority N]
         [--weight N] [--max-concurrency N] [--models ID-OR-GLOB,...] [--group G] [--enabled=false]
  update ID [--name NAME] [--upstream-url URL] [--api-key-env VAR | --api-key-stdin | --api-key KEY] [--priority N]
         [--weight N] [--max-concurrency N|none] [--models ID-OR-GLOB,...] [--group G] [--enabled=true|false]
         (only the flags given change; --models '' serves every model, --group '' is the default group)
  disable ID | enable ID | delete ID
  test ID                 send GET /v1/models to the upstream with its stored key

The API key: --api-key-env NAME reads it from the environment variable NAME, --api-key-stdin
from the first line of stdin (printf '%s\n' "$KEY" | relay upstreams create ... --api-key-stdin).
Both keep it out of your shell history and the process list, which --api-key KEY does not.
The relay stores it encrypted and never shows it again: views show its last four characters.

priority is the tier (lower is preferred), weight the share of new sessions within the tier,
max-concurrency the requests in flight per replica (0 or none: no cap), group the upstream
group that keys name with --upstream-group.

--upstream-url is the upstream's API base URL (its url field); --url is the relay's, as everywhere.

common flags: --url --user --password --token --json
`

func upstreamsCmd(ctx context.Context, args []string, e env) error {
	if len(args) == 0 || args[0] == "--help" || args[0] == "-h" || args[0] == "help" {
		_, err := io.WriteString(e.stdout, upstreamsUsage)
		return err
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("upstreams "+sub, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	var f cliFlags
	f.register(fs, e)
	var (
		name, upURL, apiKey, apiKeyEnv, models, group, maxConc, enabled string
		apiKeyStdin                                                     bool
		priority, weight                                                int
	)
	switch sub {
	case "create", "update":
		fs.StringVar(&name, "name", "", "upstream name")
		fs.StringVar(&upURL, "upstream-url", "", "the upstream's API base URL, e.g. https://api.anthropic.com")
		fs.StringVar(&apiKey, "api-key", "", "the upstream's API key (prefer --api-key-env or --api-key-stdin)")
		fs.StringVar(&apiKeyEnv, "api-key-env", "", "read the API key from this environment variable")
		fs.BoolVar(&apiKeyStdin, "api-key-stdin", false, "read the API key from the first line of stdin")
		fs.IntVar(&priority, "priority", 0, "tier: lower is preferred")
		fs.IntVar(&weight, "weight", 1, "share of new sessions within the tier")
		fs.StringVar(&maxConc, "max-concurrency", "", "requests in flight per replica; 0 or none = no cap")
		fs.StringVar(&models, "models", "", "comma-separated model ids or globs it serves; '' = every model")
		fs.StringVar(&group, "group", "", "upstream group; '' = the default group")
		fs.StringVar(&enabled, "enabled", "", "true or false")
	case "list", "get", "disable", "enable", "delete", "test":
	default:
		return usageError{fmt.Sprintf("unknown upstreams command %q\n\n%s", sub, upstreamsUsage)}
	}
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	given := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	if id == "" && fs.NArg() > 0 {
		id = fs.Arg(0)
	}
	if sub != "create" && sub != "list" && id == "" {
		return usageError{fmt.Sprintf("upstreams %s: need an upstream id (relay upstreams list shows them)", sub)}
	}
	var key *string
	if sub == "create" || sub == "update" {
		k, err := readAPIKey(given, apiKey, apiKeyEnv, apiKeyStdin, e)
		if err != nil {
			return usageError{"upstreams " + sub + ": " + err.Error()}
		}
		key = k
	}
	var (
		createBody client.CreateUpstreamJSONRequestBody
		updateBody client.UpdateUpstreamJSONRequestBody
	)
	switch sub {
	case "create":
		b, err := upstreamCreateBody(given, name, upURL, key, priority, weight, maxConc, models, group, enabled)
		if err != nil {
			return err
		}
		createBody = b
	case "update":
		b, err := upstreamUpdateBody(given, name, upURL, key, priority, weight, maxConc, models, group, enabled)
		if err != nil {
			return err
		}
		updateBody = b
	}
	c, err := f.adminClient(ctx)
	if err != nil {
		return err
	}
	show := func(u *client.Upstream, resp *http.Response, body []byte) error {
		if u == nil {
			return apiError(resp, body)
		}
		if f.json {
			return printJSON(e.stdout, u)
		}
		printUpstreams(e.stdout, []client.Upstream{*u})
		return nil
	}
	switch sub {
	case "list":
		resp, err := c.ListUpstreamsWithResponse(ctx)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, resp.JSON200.Data)
		}
		printUpstreams(e.stdout, resp.JSON200.Data)
		return nil
	case "get":
		resp, err := c.GetUpstreamWithResponse(ctx, id)
		if err != nil {
			return err
		}
		return show(resp.JSON200, resp.HTTPResponse, resp.Body)
	case "create":
		resp, err := c.CreateUpstreamWithResponse(ctx, createBody)
		if err != nil {
			return err
		}
		return show(resp.JSON201, resp.HTTPResponse, resp.Body)
	case "update":
		resp, err := c.UpdateUpstreamWithResponse(ctx, id, updateBody)
		if err != nil {
			return err
		}
		return show(resp.JSON200, resp.HTTPResponse, resp.Body)
	case "disable":
		resp, err := c.DisableUpstreamWithResponse(ctx, id)
		if err != nil {
			return err
		}
		return show(resp.JSON200, resp.HTTPResponse, resp.Body)
	case "enable":
		resp, err := c.EnableUpstreamWithResponse(ctx, id)
		if err != nil {
			return err
		}
		return show(resp.JSON200, resp.HTTPResponse, resp.Body)
	case "delete":
		resp, err := c.DeleteUpstreamWithResponse(ctx, id)
		if err != nil {
			return err
		}
		if resp.StatusCode() != http.StatusNoContent {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		if f.json {
			return printJSON(e.stdout, map[string]any{"id": id, "deleted": true})
		}
		fmt.Fprintf(e.stdout, "deleted upstream %s\n", id)
		return nil
	case "test":
		resp, err := c.TestUpstreamWithResponse(ctx, id)
		if err != nil {
			return err
		}
		if resp.JSON200 == nil {
			return apiError(resp.HTTPResponse, resp.Body)
		}
		r := resp.JSON200
		if f.json {
			return printJSON(e.stdout, r)
		}
		status := "no answer"
		if r.Status != nil {
			status = strconv.Itoa(*r.Status)
		}
		verdict := "ok"
		if !r.Ok {
			verdict = "FAILED"
		}
		fmt.Fprintf(e.stdout, "upstream %s: %s (status %s, %.0f ms)", id, verdict, status, r.LatencyMs)
		if r.Message != "" {
			fmt.Fprintf(e.stdout, ": %s", r.Message)
		}
		fmt.Fprintln(e.stdout)
		if !r.Ok {
			return fmt.Errorf("upstream %s failed its test", id)
		}
		return nil
	}
	return nil
}

// readAPIKey takes the upstream's API key from at most one of --api-key,
// --api-key-env and --api-key-stdin; nil when none is given.
func readAPIKey(given map[string]bool, flagKey, envName string, stdin bool, e env) (*string, error) {
	n := 0
	for _, fl := range []string{"api-key", "api-key-env", "api-key-stdin"} {
		if given[fl] {
			n++
		}
	}
	if given["api-key-stdin"] && !stdin {
		n--
	}
	switch {
	case n > 1:
		return nil, errors.New("give the API key one way: --api-key, --api-key-env or --api-key-stdin")
	case given["api-key"]:
		return &flagKey, nil
	case given["api-key-env"]:
		v := e.get(envName)
		if v == "" {
			return nil, fmt.Errorf("--api-key-env %s: that environment variable is empty or unset", envName)
		}
		return &v, nil
	case stdin:
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("--api-key-stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return nil, errors.New("--api-key-stdin: no key on stdin; try: printf '%s\\n' \"$KEY\" | relay upstreams ...")
		}
		return &line, nil
	}
	return nil, nil
}

func parseEnabled(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, usageError{"--enabled must be true or false"}
	}
	return b, nil
}

// parseMaxConcurrency reads --max-concurrency: a number, or none (no cap).
func parseMaxConcurrency(v string) (int, error) {
	if strings.EqualFold(v, "none") {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, usageError{"--max-concurrency must be 0 or more, or none for no cap"}
	}
	return n, nil
}

func upstreamCreateBody(given map[string]bool, name, upURL string, key *string, priority, weight int, maxConc, models, group, enabled string) (client.CreateUpstreamRequest, error) {
	switch {
	case name == "":
		return client.CreateUpstreamRequest{}, usageError{"upstreams create: --name is required"}
	case upURL == "":
		return client.CreateUpstreamRequest{}, usageError{"upstreams create: --upstream-url is required"}
	case key == nil:
		return client.CreateUpstreamRequest{}, usageError{"upstreams create: the API key is required (--api-key-env VAR or --api-key-stdin)"}
	}
	b := client.CreateUpstreamRequest{Name: name, Url: upURL, ApiKey: key}
	if given["priority"] {
		b.Priority = &priority
	}
	if given["weight"] {
		b.Weight = &weight
	}
	if given["max-concurrency"] {
		n, err := parseMaxConcurrency(maxConc)
		if err != nil {
			return b, err
		}
		b.MaxConcurrency = &n
	}
	if given["models"] {
		l := splitComma(models)
		if l == nil {
			l = []string{}
		}
		b.Models = &l
	}
	if given["group"] {
		b.Group = &group
	}
	if given["enabled"] {
		on, err := parseEnabled(enabled)
		if err != nil {
			return b, err
		}
		b.Enabled = &on
	}
	return b, nil
}

func upstreamUpdateBody(given map[string]bool, name, upURL string, key *string, priority, weight int, maxConc, models, group, enabled string) (client.UpdateUpstreamRequest, error) {
	var b client.UpdateUpstreamRequest
	changes := 0
	for fl := range given {
		switch fl {
		case "url", "user", "password", "token", "json":
		default:
			changes++
		}
	}
	if changes == 0 {
		return b, usageError{"upstreams update: give at least one field to change (relay upstreams --help)"}
	}
	if given["name"] {
		b.Name = &name
	}
	if given["upstream-url"] {
		b.Url = &upURL
	}
	b.ApiKey = key
	if given["priority"] {
		b.Priority = &priority
	}
	if given["weight"] {
		b.Weight = &weight
	}
	if given["max-concurrency"] {
		n, err := parseMaxConcurrency(maxConc)
		if err != nil {
			return b, err
		}
		b.MaxConcurrency = json.RawMessage(strconv.Itoa(n))
	}
	if given["models"] {
		l := splitComma(models)
		if l == nil {
			l = []string{}
		}
		b.Models = &l
	}
	if given["group"] {
		b.Group = &group
	}
	if given["enabled"] {
		on, err := parseEnabled(enabled)
		if err != nil {
			return b, err
		}
		b.Enabled = &on
	}
	return b, nil
}

func printUpstreams(w io.Writer, ups []client.Upstream) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tURL\tKEY\tPRIORITY\tWEIGHT\tMAX_CONC\tMODELS\tGROUP\tENABLED\tSTATE\tREASON\tIN_FLIGHT\tCACHE_HIT")
	for _, u := range ups {
		key := "…"
		if u.ApiKeyLast4 != nil {
			key = "…" + *u.ApiKeyLast4
		}
		conc := "none"
		if u.MaxConcurrency != nil {
			conc = strconv.Itoa(*u.MaxConcurrency)
		}
		reason := "-"
		if u.StateReason != nil {
			reason = *u.StateReason
		}
		hit := "-"
		if u.CacheHitRate != nil {
			hit = fmt.Sprintf("%.1f%%", 100**u.CacheHitRate)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%t\t%s\t%s\t%d\t%s\n", u.Id, u.Name, u.Url, key, u.Priority, u.Weight,
			conc, modelsText(u.Models), groupText(u.Group), u.Enabled, u.State, reason, u.InFlight, hit)
	}
	_ = tw.Flush()
}
