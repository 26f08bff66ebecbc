// Package config loads Relay Station's configuration once, in main: built-in
// defaults, then a YAML file, then the environment. The result is one typed,
// validated struct. Nothing else in the program reads the environment.
package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"

	"github.com/relaystation/relay/adapters/anthropic"
	"github.com/relaystation/relay/adapters/httpx"
	"github.com/relaystation/relay/adapters/metrics"
	"github.com/relaystation/relay/adapters/proxy"
	"github.com/relaystation/relay/adapters/secretbox"
	"github.com/relaystation/relay/adapters/upstream"
	"github.com/relaystation/relay/adapters/usagewriter"
	"github.com/relaystation/relay/domain"
	"github.com/relaystation/relay/domain/admin"
	"github.com/relaystation/relay/domain/billing"
	"github.com/relaystation/relay/domain/budget"
	"github.com/relaystation/relay/domain/pricing"
	"github.com/relaystation/relay/domain/relay"
	"github.com/relaystation/relay/domain/upstreams"
)

// Config is the whole configuration.
type Config struct {
	ListenAddr  string `koanf:"listen_addr"`
	DataDir     string `koanf:"data_dir"`
	DatabaseURL string `koanf:"database_url"`
	RedisURL    string `koanf:"redis_url"`
	// SecretKey signs admin JWTs. Generated into DataDir when unset.
	SecretKey string `koanf:"secret_key"`
	// KeyHashSecret keys the HMAC under which proxy keys are stored. When
	// unset it is derived from SecretKey.
	KeyHashSecret string `koanf:"key_hash_secret"`

	Log       LogConfig       `koanf:"log"`
	Server    ServerConfig    `koanf:"server"`
	Admin     AdminConfig     `koanf:"admin"`
	Upstream  UpstreamsConfig `koanf:"upstream"`
	RateLimit RateLimitConfig `koanf:"rate_limit"`
	Quota     QuotaConfig     `koanf:"quota"`
	Usage     UsageConfig     `koanf:"usage"`
	Metrics   MetricsConfig   `koanf:"metrics"`
	CORS      CORSConfig      `koanf:"cors"`
	Proxy     ProxyConfig     `koanf:"proxy"`
	Pricing   PricingConfig   `koanf:"pricing"`
	Budgets   BudgetsConfig   `koanf:"budgets"`
}

// PricingConfig is the price table's policy. The table itself is data: the
// embedded seed, then the versions stored through the admin API.
type PricingConfig struct {
	// Unpriced is what a request for a model the table does not price
	// gets: "refuse" (keys with a money budget are refused; others are
	// served and their records flagged unpriced) or "fallback" (priced at
	// FallbackModel).
	Unpriced pricing.Unpriced `koanf:"unpriced"`
	// FallbackModel prices unpriced models under "fallback".
	FallbackModel string `koanf:"fallback_model"`
	// Refresh is how often each replica reloads the newest stored version.
	Refresh time.Duration `koanf:"refresh"`
}

// Policy is the pricing policy the domain applies.
func (p PricingConfig) Policy() pricing.Policy {
	return pricing.Policy{Unpriced: p.Unpriced, FallbackModel: p.FallbackModel}
}

// BudgetsConfig sets the money budgets' defaults.
type BudgetsConfig struct {
	// DefaultTimeZone is the IANA zone of day, week and month budgets that
	// name none.
	DefaultTimeZone string `koanf:"default_time_zone"`
}

// ProxyConfig shapes what the relay forwards.
type ProxyConfig struct {
	// Passthrough lists extra path prefixes relayed unmetered (any of
	// GET/HEAD/POST/PUT/PATCH/DELETE): the operator's statement that those
	// endpoints bill nothing. Everything outside the endpoint catalogue and
	// this list is answered 404 and never leaves the relay.
	Passthrough []string `koanf:"passthrough"`
}

type LogConfig struct {
	Level  string `koanf:"level"`  // debug, info, warn, error
	Format string `koanf:"format"` // json or text
}

type ServerConfig struct {
	ShutdownGrace     time.Duration `koanf:"shutdown_grace"`
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	IdleTimeout       time.Duration `koanf:"idle_timeout"`
	// TrustedProxies are CIDRs (or bare addresses) whose X-Forwarded-For
	// is believed.
	TrustedProxies []netip.Prefix `koanf:"trusted_proxies"`
	// BodyReadTimeout bounds how long a request body may take to arrive;
	// on proxied routes a body that keeps arriving at BodyMinRate bytes/s
	// gets one more second per BodyMinRate bytes.
	BodyReadTimeout time.Duration `koanf:"body_read_timeout"`
	BodyMinRate     int64         `koanf:"body_min_rate"`
	// MaxConnections bounds the client connections open at once (0: derived
	// from the descriptor limit, see Connections); MaxConnectionsPerAddr
	// those from one address (IPv6: one /64), trusted proxies exempt.
	MaxConnections        int `koanf:"max_connections"`
	MaxConnectionsPerAddr int `koanf:"max_connections_per_addr"`
	// WriteProgressTimeout closes a proxied response whose client has not
	// taken a write for this long (it stopped reading).
	WriteProgressTimeout time.Duration `koanf:"write_progress_timeout"`
	// KeyCacheTTL bounds how long another replica may honour a key after it
	// was disabled, deleted or rotated.
	KeyCacheTTL time.Duration `koanf:"key_cache_ttl"`
	// PprofAddr, when set, serves net/http/pprof on this separate address
	// (keep it on loopback). Empty: off.
	PprofAddr string `koanf:"pprof_addr"`
}

type AdminConfig struct {
	Username     string         `koanf:"username"`
	Password     string         `koanf:"password"`
	PasswordHash string         `koanf:"password_hash"`
	AllowedIPs   []netip.Prefix `koanf:"allowed_ips"`
	TokenTTL     time.Duration  `koanf:"token_ttl"`
	// LoginFailures and LoginWindow are the old per-IP throttle's settings,
	// replaced by LoginThrottle; kept only to say so when they are set.
	LoginFailures int           `koanf:"login_failures"`
	LoginWindow   time.Duration `koanf:"login_window"`
	// MaxPasswordChecks bounds concurrent argon2id checks; 0 means two per
	// core (see PasswordChecks).
	MaxPasswordChecks int                 `koanf:"max_password_checks"`
	LoginThrottle     LoginThrottleConfig `koanf:"login_throttle"`
}

// LoginThrottleConfig is the admin login throttle (README "Login throttle").
type LoginThrottleConfig struct {
	// PerAddress failed logins from one address (IPv6: one /64) are free;
	// each further one doubles its wait, from 1 s up to MaxBackoff.
	PerAddress int           `koanf:"per_address"`
	MaxBackoff time.Duration `koanf:"max_backoff"`
	// PerUsername and Global are failed logins per Window, for one username
	// and for all; addresses that have not logged in recently are refused
	// while a budget is spent. Window is also how long an address's
	// failures are remembered.
	PerUsername int           `koanf:"per_username"`
	Global      int           `koanf:"global"`
	Window      time.Duration `koanf:"window"`
	// KnownAddressTTL is how long an address that logged in is exempt from
	// the PerUsername and Global budgets; 0 turns that off.
	KnownAddressTTL time.Duration `koanf:"known_address_ttl"`
	// MaxEntries bounds the in-memory store (without Redis, and as the
	// fallback while Redis is unreachable).
	MaxEntries int `koanf:"max_entries"`
}

// Connections is the effective bound on open client connections: the
// configured one, or else half the descriptor limit less a reserve for
// the database, Redis and logs (each proxied call holds an upstream
// connection too).
func (s ServerConfig) Connections(nofile uint64) int {
	if s.MaxConnections > 0 {
		return s.MaxConnections
	}
	if nofile == 0 || nofile > 1<<22 {
		nofile = 1 << 22
	}
	return max(64, int(nofile)/2-256)
}

// Policy is the login throttle's policy, as the login use case takes it.
func (l LoginThrottleConfig) Policy() admin.LoginThrottlePolicy {
	return admin.LoginThrottlePolicy{
		PerAddress: l.PerAddress, MaxBackoff: l.MaxBackoff, PerUsername: l.PerUsername, Global: l.Global,
		Window: l.Window, KnownAddressTTL: l.KnownAddressTTL,
	}
}

// Upstreams returns the primary followed by the fallbacks, as the upstream
// transport takes them.
func (c UpstreamsConfig) Upstreams() []upstream.Config {
	out := make([]upstream.Config, 0, 1+len(c.Fallbacks))
	for _, u := range append([]UpstreamConfig{c.Primary}, c.Fallbacks...) {
		out = append(out, upstream.Config{Name: u.Name, URL: u.URL, APIKey: u.APIKey, Timeout: u.Timeout, MaxRetries: u.MaxRetries})
	}
	return out
}

// PasswordChecks is the effective bound on concurrent password checks.
func (a AdminConfig) PasswordChecks() int {
	if a.MaxPasswordChecks > 0 {
		return a.MaxPasswordChecks
	}
	return 2 * runtime.NumCPU()
}

// UpstreamConfig is one Anthropic endpoint. Timeout is seconds when a number.
type UpstreamConfig struct {
	Name       string        `koanf:"name"`
	URL        string        `koanf:"url"`
	APIKey     string        `koanf:"api_key"`
	Timeout    time.Duration `koanf:"timeout"`
	MaxRetries int           `koanf:"max_retries"`
}

type UpstreamsConfig struct {
	Primary   UpstreamConfig   `koanf:"primary"`
	Fallbacks []UpstreamConfig `koanf:"fallbacks"`
	// MaxBodyBytes is the largest request body the relay buffers for replay.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// MaxBufferedBytes caps the request bytes all requests together hold.
	MaxBufferedBytes int64 `koanf:"max_buffered_bytes"`
	// IdleTimeout is the longest gap allowed between upstream response bytes.
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	RetryBase   time.Duration `koanf:"retry_base"`
	Deadline    time.Duration `koanf:"deadline"`
	Cooldown    time.Duration `koanf:"cooldown"`
	// KeySecret is the secret the upstreams' API keys are sealed under at
	// rest (AES-256-GCM, the key derived with HKDF); empty: derived from
	// SecretKey. PreviousKeySecrets still open keys sealed under them, for
	// rotation (domain/upstreams' package doc).
	KeySecret          string   `koanf:"key_secret"`
	PreviousKeySecrets []string `koanf:"previous_key_secrets"`
	// Refresh is how often each replica re-reads the stored upstreams, so
	// that a change made through another applies within it.
	Refresh time.Duration `koanf:"refresh"`
}

// Seeds are the configured upstreams as the upstream registry seeds them
// into an empty table on first start: ids are the names ("primary", each
// fallback's), so that pins and usage naming them keep working; the primary
// has priority 0 and each fallback its place in the list; weight 1,
// enabled, in the default group.
func (c UpstreamsConfig) Seeds() []upstreams.SeedUpstream {
	out := make([]upstreams.SeedUpstream, 0, 1+len(c.Fallbacks))
	for i, u := range append([]UpstreamConfig{c.Primary}, c.Fallbacks...) {
		out = append(out, upstreams.SeedUpstream{ID: u.Name, Name: u.Name, URL: u.URL, APIKey: u.APIKey, Priority: i, Weight: 1, Enabled: true})
	}
	return out
}

// KeyBox is the box the upstreams' API keys are sealed with: its current
// key from KeySecret, or from secretKey (the effective SECRET_KEY, which
// may have been generated at start) while KeySecret is unset; its previous
// keys from PreviousKeySecrets.
func (c UpstreamsConfig) KeyBox(secretKey string) (secretbox.Box, error) {
	cur, err := secretbox.KeyFromConfig(c.KeySecret, secretKey)
	if err != nil {
		return secretbox.Box{}, err
	}
	box := secretbox.Box{Current: cur}
	for i, s := range c.PreviousKeySecrets {
		k, err := secretbox.DeriveKey(s)
		if err != nil {
			return secretbox.Box{}, fmt.Errorf("upstream.previous_key_secrets[%d] (UPSTREAM_PREVIOUS_KEY_SECRETS): %w", i, err)
		}
		box.Previous = append(box.Previous, k)
	}
	return box, nil
}

// TierConfig seeds a rate-limit tier. Period is seconds when a number.
type TierConfig struct {
	Requests       int           `koanf:"requests"`
	Period         time.Duration `koanf:"period"`
	Tokens         *int64        `koanf:"tokens"`
	MaxConcurrency *int          `koanf:"max_concurrency"`
}

type RateLimitConfig struct {
	ByTier      map[string]TierConfig `koanf:"by_tier"`
	DefaultTier string                `koanf:"default_tier"`
	// FailPolicy applies when Redis is unreachable: fail_open or fail_closed.
	FailPolicy relay.FailurePolicy `koanf:"fail_policy"`
}

type QuotaConfig struct {
	// DefaultMaxTokens is reserved for output when a request names no max_tokens.
	DefaultMaxTokens int64               `koanf:"default_max_tokens"`
	Lease            time.Duration       `koanf:"lease"`
	FailPolicy       relay.FailurePolicy `koanf:"fail_policy"`
	// EstimateMargin multiplies the tokenised (cl100k) input estimate, for
	// the newer Claude tokenizers that count more tokens.
	EstimateMargin float64 `koanf:"estimate_margin"`
	// UnsizedTokens is reserved for a content block the relay cannot size
	// (a document by file_id or URL that is not a PDF).
	UnsizedTokens int64 `koanf:"unsized_tokens"`
	// MaxConcurrentEstimates bounds the tokenising input estimates running
	// at once in the process; 0 means one per core (GOMAXPROCS). A request
	// that finds none free for a second is answered 503 overloaded_error.
	MaxConcurrentEstimates int `koanf:"max_concurrent_estimates"`
	// BatchPoll is how often an unfinished Message Batch is polled, and
	// BatchLease how long its reservation holds if it is never settled.
	BatchPoll  time.Duration `koanf:"batch_poll"`
	BatchLease time.Duration `koanf:"batch_lease"`
}

type UsageConfig struct {
	QueueSize     int           `koanf:"queue_size"`
	BatchSize     int           `koanf:"batch_size"`
	FlushInterval time.Duration `koanf:"flush_interval"`
}

type MetricsConfig struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on /metrics.
	Token string `koanf:"token"`
	// MaxKeys bounds the per-key quota gauge's cardinality.
	MaxKeys int `koanf:"max_keys"`
	// KeyNames adds key names to the per-key quota gauge (off: ids only).
	KeyNames bool `koanf:"key_names"`
	// ListenAddr, when set, serves /metrics on this separate address only
	// (it is then not served on the public listener).
	ListenAddr string `koanf:"listen_addr"`
}

type CORSConfig struct {
	AllowedOrigins []string `koanf:"allowed_origins"`
}

// Defaults returns the built-in configuration. A default that a component
// also applies to a zero option is the component's own constant, so each
// is defined once (README "Design decisions").
func Defaults() Config {
	return Config{
		ListenAddr: ":8000",
		DataDir:    "./data",
		Log:        LogConfig{Level: "info", Format: "json"},
		Server: ServerConfig{
			ShutdownGrace:         30 * time.Second,
			ReadHeaderTimeout:     10 * time.Second,
			IdleTimeout:           120 * time.Second,
			KeyCacheTTL:           5 * time.Second,
			WriteProgressTimeout:  proxy.DefaultWriteTimeout,
			BodyReadTimeout:       httpx.DefaultBodyReadTimeout,
			BodyMinRate:           proxy.DefaultBodyMinRate,
			MaxConnectionsPerAddr: 512,
		},
		Admin: AdminConfig{Username: "admin", TokenTTL: admin.DefaultTokenTTL, LoginThrottle: LoginThrottleConfig{
			PerAddress: 5, MaxBackoff: 15 * time.Minute, PerUsername: 200, Global: 1000, Window: time.Hour,
			KnownAddressTTL: 30 * 24 * time.Hour, MaxEntries: 100_000,
		}},
		Upstream: UpstreamsConfig{
			Primary:          UpstreamConfig{Name: "primary", URL: "https://api.anthropic.com", Timeout: upstream.DefaultTimeout, MaxRetries: 3},
			MaxBodyBytes:     upstream.DefaultMaxBodyBytes,
			MaxBufferedBytes: proxy.DefaultMaxBufferedBytes,
			IdleTimeout:      proxy.DefaultIdleTimeout,
			RetryBase:        upstream.DefaultBaseDelay,
			Deadline:         upstream.DefaultDeadline,
			Cooldown:         upstream.DefaultCooldown,
			Refresh:          upstreams.DefaultRefresh,
		},
		RateLimit: RateLimitConfig{DefaultTier: domain.DefaultTierName, FailPolicy: relay.DefaultRatePolicy},
		Quota: QuotaConfig{DefaultMaxTokens: relay.DefaultMaxTokens, Lease: relay.DefaultLease, FailPolicy: relay.DefaultQuotaPolicy,
			EstimateMargin: anthropic.DefaultMargin, UnsizedTokens: anthropic.DefaultUnsizedTokens,
			BatchPoll: relay.DefaultBatchPoll, BatchLease: relay.DefaultBatchLease},
		Usage: UsageConfig{QueueSize: usagewriter.DefaultCapacity, BatchSize: usagewriter.DefaultBatchSize,
			FlushInterval: usagewriter.DefaultFlushInterval},
		Metrics: MetricsConfig{MaxKeys: metrics.DefaultMaxQuotaKeys},
		Pricing: PricingConfig{Unpriced: pricing.UnpricedRefuse, Refresh: billing.DefaultPriceRefresh},
		Budgets: BudgetsConfig{DefaultTimeZone: "UTC"},
	}
}

// envMap lists the environment variables the relay reads, unprefixed, and
// the configuration keys they set.
var envMap = map[string]string{
	"LISTEN_ADDR":                   "listen_addr",
	"DATA_DIR":                      "data_dir",
	"DATABASE_URL":                  "database_url",
	"REDIS_URL":                     "redis_url",
	"SECRET_KEY":                    "secret_key",
	"KEY_HASH_SECRET":               "key_hash_secret",
	"UPSTREAM_URL":                  "upstream.primary.url",
	"UPSTREAM_API_KEY":              "upstream.primary.api_key",
	"UPSTREAM_KEY_SECRET":           "upstream.key_secret",
	"UPSTREAM_PREVIOUS_KEY_SECRETS": "upstream.previous_key_secrets",
	"ADMIN_USERNAME":                "admin.username",
	"ADMIN_PASSWORD":                "admin.password",
	"ADMIN_PASSWORD_HASH":           "admin.password_hash",
	"ADMIN_ALLOWED_IPS":             "admin.allowed_ips",
	"LOG_LEVEL":                     "log.level",
	"LOG_FORMAT":                    "log.format",
	"METRICS_TOKEN":                 "metrics.token",
	"TRUSTED_PROXIES":               "server.trusted_proxies",
	"CORS_ALLOWED_ORIGINS":          "cors.allowed_origins",
	"PROXY_PASSTHROUGH":             "proxy.passthrough",
	"PRICING_UNPRICED":              "pricing.unpriced",
	"BUDGETS_DEFAULT_TIME_ZONE":     "budgets.default_time_zone",
	"PPROF_ADDR":                    "server.pprof_addr",
	"METRICS_LISTEN_ADDR":           "metrics.listen_addr",
	"MAX_CONNECTIONS":               "server.max_connections",
	"MAX_CONNECTIONS_PER_ADDR":      "server.max_connections_per_addr",
}

// listKeys are set from comma-separated environment values.
var listKeys = map[string]bool{
	"admin.allowed_ips":             true,
	"server.trusted_proxies":        true,
	"cors.allowed_origins":          true,
	"proxy.passthrough":             true,
	"upstream.previous_key_secrets": true,
}

// EnvNames returns the environment variables the relay reads.
func EnvNames() []string {
	out := make([]string, 0, len(envMap)+1)
	for k := range envMap {
		out = append(out, k)
	}
	return append(out, "CONFIG_FILE")
}

// Source says where to read the configuration from. Main fills it from the
// process environment, which keeps os.Getenv out of everything else.
type Source struct {
	// Environ is the environment as "KEY=value" pairs.
	Environ []string
	// File is the YAML file path; empty means ./config.yaml if it exists.
	File string
}

// Load reads defaults, then the YAML file, then the environment, and
// validates the result.
func Load(src Source) (Config, string, error) {
	env := make(map[string]string, len(src.Environ))
	for _, kv := range src.Environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	k := koanf.New(".")
	path := src.File
	if path == "" {
		path = env["CONFIG_FILE"]
	}
	explicit := path != ""
	if path == "" {
		path = "config.yaml"
	}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		m, err := yaml.Parser().Unmarshal(data)
		if err != nil {
			return Config{}, "", fmt.Errorf("config file %s: %w", path, err)
		}
		expandTree(m, env)
		if err := k.Load(confmap.Provider(m, "."), nil); err != nil {
			return Config{}, "", fmt.Errorf("config file %s: %w", path, err)
		}
	case explicit || !errors.Is(err, os.ErrNotExist):
		return Config{}, "", fmt.Errorf("config file %s: %w", path, err)
	default:
		path = ""
	}
	envVals := map[string]any{}
	for name, key := range envMap {
		v, ok := env[name]
		if !ok {
			continue
		}
		if listKeys[key] {
			envVals[key] = splitList(v)
		} else {
			envVals[key] = v
		}
	}
	if err := k.Load(confmap.Provider(envVals, "."), nil); err != nil {
		return Config{}, "", fmt.Errorf("environment: %w", err)
	}

	cfg := Defaults()
	// Tiers from the file replace the defaults wholesale rather than merge.
	cfg.RateLimit.ByTier = nil
	dec := &mapstructure.DecoderConfig{
		DecodeHook: mapstructure.ComposeDecodeHookFunc(
			durationHook,
			mapstructure.StringToSliceHookFunc(","),
			prefixHook,
			policyHook,
		),
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Result:           &cfg,
		TagName:          "koanf",
	}
	if err := k.UnmarshalWithConf("", &cfg, koanf.UnmarshalConf{Tag: "koanf", DecoderConfig: dec}); err != nil {
		return Config{}, "", fmt.Errorf("invalid configuration: %s", cleanDecodeError(err))
	}
	cfg.normalise()
	if err := cfg.Validate(); err != nil {
		return Config{}, "", err
	}
	return cfg, path, nil
}

var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expandTree replaces ${VAR} in every string value. Only the braced form is
// expanded, so argon2id hashes ("$argon2id$v=19$...") pass untouched.
func expandTree(v any, env map[string]string) any {
	switch t := v.(type) {
	case map[string]any:
		for k, x := range t {
			t[k] = expandTree(x, env)
		}
	case []any:
		for i, x := range t {
			t[i] = expandTree(x, env)
		}
	case string:
		return varRef.ReplaceAllStringFunc(t, func(m string) string {
			return env[m[2:len(m)-1]]
		})
	}
	return v
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// durationHook reads durations as seconds when given a number (the seed's
// "timeout: 60", "period: 60") and as Go durations ("100ms") when given text.
func durationHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(time.Duration(0)) {
		return data, nil
	}
	switch v := data.(type) {
	case int:
		return time.Duration(v) * time.Second, nil
	case int64:
		return time.Duration(v) * time.Second, nil
	case float64:
		return time.Duration(v * float64(time.Second)), nil
	case string:
		s := strings.TrimSpace(v)
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return time.Duration(f * float64(time.Second)), nil
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a duration (use seconds, or e.g. \"500ms\", \"2m\")", v)
		}
		return d, nil
	}
	return data, nil
}

// prefixHook reads a CIDR or a bare address (taken as /32 or /128) into a
// masked netip.Prefix.
func prefixHook(from, to reflect.Type, data any) (any, error) {
	s, ok := data.(string)
	if !ok || to != reflect.TypeOf(netip.Prefix{}) {
		return data, nil
	}
	p, err := domain.ParsePrefix(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not an IP address or CIDR", strings.TrimSpace(s))
	}
	return p, nil
}

// policyHook reads fail_open or fail_closed, and nothing else (no numbers).
func policyHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(relay.FailurePolicy(0)) {
		return data, nil
	}
	s, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("%v is not fail_open or fail_closed", data)
	}
	var p relay.FailurePolicy
	if err := p.UnmarshalText([]byte(s)); err != nil {
		return nil, err
	}
	return p, nil
}

// decodeKey is how mapstructure names the key of a value it could not
// decode, 'server.trusted_proxies[1]', before the hook's message.
var decodeKey = regexp.MustCompile(`'([a-z0-9_.]+(?:\[[0-9]+\][a-z0-9_.]*)*)' `)

// cleanDecodeError drops mapstructure's preamble and writes each key as
// Validate does, with its environment variable when it has one.
func cleanDecodeError(err error) string {
	msg := strings.ReplaceAll(err.Error(), "decoding failed due to the following error(s):\n\n", "")
	return decodeKey.ReplaceAllStringFunc(msg, func(m string) string {
		key := decodeKey.FindStringSubmatch(m)[1]
		base, _, _ := strings.Cut(key, "[")
		for name, k := range envMap {
			if k == base {
				return key + " (" + name + "): "
			}
		}
		return key + ": "
	})
}

func (c *Config) normalise() {
	if c.Upstream.Primary.Name == "" {
		c.Upstream.Primary.Name = "primary"
	}
	for i := range c.Upstream.Fallbacks {
		f := &c.Upstream.Fallbacks[i]
		if f.Name == "" {
			f.Name = "fallback-" + strconv.Itoa(i+1)
		}
		if f.Timeout == 0 {
			f.Timeout = c.Upstream.Primary.Timeout
		}
	}
	c.Log.Level = strings.ToLower(c.Log.Level)
	c.Log.Format = strings.ToLower(c.Log.Format)
}

// Validate checks every value; the error names the offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	if c.ListenAddr == "" {
		bad("listen_addr", "must not be empty")
	}
	if c.DataDir == "" {
		bad("data_dir", "must not be empty")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			bad("database_url", "unsupported URL; use postgres:// or postgresql://, or leave empty for embedded SQLite")
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") {
			bad("redis_url", "unsupported URL; use redis:// or rediss://")
		}
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	if c.Admin.Username == "" {
		bad("admin.username", "must not be empty")
	}
	if c.Admin.PasswordHash != "" && !strings.HasPrefix(c.Admin.PasswordHash, "$argon2id$") {
		bad("admin.password_hash", "must be an argon2id hash; make one with `relay hash-password`")
	}
	if c.Admin.TokenTTL < time.Minute || c.Admin.TokenTTL > 30*24*time.Hour {
		bad("admin.token_ttl", "must be between 1m and 720h")
	}
	if c.Admin.LoginFailures != 0 || c.Admin.LoginWindow != 0 {
		bad("admin.login_failures/login_window", "replaced by admin.login_throttle (per_address, per_username, global, window, max_backoff); see the README's \"Login throttle\"")
	}
	if lt := c.Admin.LoginThrottle; lt.PerAddress < 1 || lt.PerUsername < 1 || lt.Global < 1 {
		bad("admin.login_throttle", "per_address, per_username and global must be at least 1")
	}
	if lt := c.Admin.LoginThrottle; lt.MaxBackoff < time.Second || lt.Window < lt.MaxBackoff {
		bad("admin.login_throttle", "max_backoff must be at least 1s, and window at least max_backoff")
	}
	if c.Admin.LoginThrottle.KnownAddressTTL < 0 {
		bad("admin.login_throttle.known_address_ttl", "must not be negative (0: no address is exempt)")
	}
	if c.Admin.LoginThrottle.MaxEntries < 1000 {
		bad("admin.login_throttle.max_entries", "must be at least 1000")
	}
	if c.Server.ShutdownGrace <= 0 {
		bad("server.shutdown_grace", "must be positive")
	}
	if c.Server.KeyCacheTTL < 0 || c.Server.KeyCacheTTL > time.Minute {
		bad("server.key_cache_ttl", "must be between 0 and 1m")
	}
	checkUpstream := func(key string, u UpstreamConfig) {
		pu, err := url.Parse(u.URL)
		if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			bad(key+".url", "%q is not an http(s) URL", u.URL)
		}
		if u.Timeout <= 0 {
			bad(key+".timeout", "must be positive")
		}
		if u.MaxRetries < 0 || u.MaxRetries > 10 {
			bad(key+".max_retries", "must be between 0 and 10")
		}
	}
	checkUpstream("upstream.primary", c.Upstream.Primary)
	for i, f := range c.Upstream.Fallbacks {
		checkUpstream(fmt.Sprintf("upstream.fallbacks[%d]", i), f)
	}
	if c.Upstream.MaxBodyBytes < 1<<10 {
		bad("upstream.max_body_bytes", "must be at least 1024")
	}
	if c.Upstream.IdleTimeout <= 0 {
		bad("upstream.idle_timeout", "must be positive")
	}
	if c.Upstream.RetryBase <= 0 || c.Upstream.Deadline <= 0 || c.Upstream.Cooldown <= 0 {
		bad("upstream.retry_base/deadline/cooldown", "must be positive")
	}
	seen := map[string]bool{}
	for i, s := range c.Upstream.Seeds() {
		key := "upstream.primary"
		if i > 0 {
			key = fmt.Sprintf("upstream.fallbacks[%d]", i-1)
		}
		if seen[s.ID] {
			bad(key+".name", "%q names another upstream too; each needs its own name", s.ID)
		}
		seen[s.ID] = true
		if err := s.Validate(); err != nil {
			bad(key, "%s", err.Error())
		}
	}
	if s := c.Upstream.KeySecret; s != "" && len(s) < secretbox.MinSecretLen {
		bad("upstream.key_secret (UPSTREAM_KEY_SECRET)", "must be at least %d bytes (openssl rand -hex 32)", secretbox.MinSecretLen)
	}
	for i, s := range c.Upstream.PreviousKeySecrets {
		if len(s) < secretbox.MinSecretLen {
			bad(fmt.Sprintf("upstream.previous_key_secrets[%d] (UPSTREAM_PREVIOUS_KEY_SECRETS)", i), "must be at least %d bytes", secretbox.MinSecretLen)
		}
	}
	if c.Upstream.Refresh < time.Second || c.Upstream.Refresh > time.Hour {
		bad("upstream.refresh", "must be between 1s and 1h")
	}
	for name, t := range c.RateLimit.ByTier {
		key := "rate_limit.by_tier." + name
		if t.Requests < 1 {
			bad(key+".requests", "must be at least 1")
		}
		if t.Period < time.Second {
			bad(key+".period", "must be at least 1 second")
		}
		if t.Tokens != nil && *t.Tokens < 1 {
			bad(key+".tokens", "must be at least 1 when set")
		}
		if t.MaxConcurrency != nil && *t.MaxConcurrency < 1 {
			bad(key+".max_concurrency", "must be at least 1 when set")
		}
	}
	if c.RateLimit.DefaultTier == "" {
		bad("rate_limit.default_tier", "must not be empty")
	}
	for key, p := range map[string]relay.FailurePolicy{"rate_limit.fail_policy": c.RateLimit.FailPolicy, "quota.fail_policy": c.Quota.FailPolicy} {
		if p != relay.FailOpen && p != relay.FailClosed {
			bad(key, "must be fail_open or fail_closed")
		}
	}
	if c.Quota.DefaultMaxTokens < 1 {
		bad("quota.default_max_tokens", "must be at least 1")
	}
	if c.Upstream.MaxBufferedBytes < c.Upstream.MaxBodyBytes {
		bad("upstream.max_buffered_bytes", "must be at least upstream.max_body_bytes")
	}
	if c.Server.BodyReadTimeout <= 0 {
		bad("server.body_read_timeout", "must be positive")
	}
	if c.Server.BodyMinRate < 0 {
		bad("server.body_min_rate", "must not be negative (0: no extension, a body gets body_read_timeout)")
	}
	if c.Server.MaxConnections < 0 || c.Server.MaxConnectionsPerAddr < 0 {
		bad("server.max_connections", "limits must not be negative (0: see the README)")
	}
	if c.Metrics.ListenAddr != "" && c.Metrics.ListenAddr == c.ListenAddr {
		bad("metrics.listen_addr", "must differ from listen_addr")
	}
	if c.Server.WriteProgressTimeout < time.Second {
		bad("server.write_progress_timeout", "must be at least 1s")
	}
	if c.Admin.MaxPasswordChecks < 0 {
		bad("admin.max_password_checks", "must not be negative (0 means two per core)")
	}
	if c.Quota.EstimateMargin < 1 || c.Quota.EstimateMargin > 10 {
		bad("quota.estimate_margin", "must be between 1 and 10")
	}
	if c.Quota.UnsizedTokens < 1 {
		bad("quota.unsized_tokens", "must be at least 1")
	}
	if c.Quota.MaxConcurrentEstimates < 0 || c.Quota.MaxConcurrentEstimates > 1<<16 {
		bad("quota.max_concurrent_estimates", "must be between 0 (one per core) and 65536")
	}
	if c.Pricing.Unpriced != pricing.UnpricedRefuse && c.Pricing.Unpriced != pricing.UnpricedFallback {
		bad("pricing.unpriced", "must be refuse or fallback")
	}
	if c.Pricing.Unpriced == pricing.UnpricedFallback {
		if t, err := pricing.Seed(); err == nil {
			if err := c.Pricing.Policy().Validate(t); err != nil {
				bad("pricing.fallback_model", "%s", err.Error())
			}
		}
	}
	if c.Pricing.Refresh < time.Second {
		bad("pricing.refresh", "must be at least 1s")
	}
	if _, err := budget.LoadZone(c.Budgets.DefaultTimeZone); err != nil {
		bad("budgets.default_time_zone", "must be an IANA zone name such as Europe/Paris")
	}
	if c.Quota.BatchPoll < time.Second || c.Quota.BatchLease < time.Hour {
		bad("quota.batch_poll/batch_lease", "batch_poll must be at least 1s and batch_lease at least 1h")
	}
	for _, p := range c.Proxy.Passthrough {
		if !strings.HasPrefix(p, "/") || strings.ContainsAny(p, "%?#\\ ") {
			bad("proxy.passthrough (PROXY_PASSTHROUGH)", "%q is not an absolute path prefix", p)
		}
	}
	if c.Quota.Lease < time.Second {
		bad("quota.lease", "must be at least 1s")
	}
	if c.Usage.QueueSize < 1 || c.Usage.BatchSize < 1 || c.Usage.FlushInterval <= 0 {
		bad("usage", "queue_size, batch_size and flush_interval must be positive")
	}
	if c.Metrics.MaxKeys < 0 {
		bad("metrics.max_keys", "must not be negative")
	}
	return errors.Join(errs...)
}
