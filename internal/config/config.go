// Package config holds the settings of `samplit serve` and where they come
// from: defaults, then an optional TOML file, then SAMPLIT_* environment
// variables, then command-line flags — each overriding the one before.
//
// Every setting is described once, in the table of settings below, which
// drives the file keys, the environment names, the flags and the --help text,
// so the four cannot drift apart.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/samplit/samplit/internal/seal"
	"github.com/samplit/samplit/internal/store"
)

// Config is the server's configuration. The zero value is not useful; start
// from Default().
type Config struct {
	// Addr is the host:port the HTTP server listens on.
	Addr string
	// MetricsAddr, when set, is the host:port /metrics is served on
	// instead of Addr (which then does not serve it); empty serves it on
	// Addr.
	MetricsAddr string
	// Pprof serves Go's profiler (net/http/pprof) under /debug/pprof/ on
	// MetricsAddr, which it requires: never on the public listener.
	Pprof bool
	// DatabaseURL is a SQLite file path or a postgres:// URL.
	DatabaseURL string
	// PGSimpleProtocol turns off prepared statements, as Supabase's
	// transaction pooler (pgbouncer in transaction mode) requires.
	PGSimpleProtocol bool
	// PGMaxConns caps the PostgreSQL connection pool of this replica.
	PGMaxConns int

	// BootstrapKey, when set, is the admin key created on first start
	// instead of a random one.
	BootstrapKey string

	// StateKey is the base64 32-byte key that seals optimizer state;
	// StateKeyFile a file holding it; StateOldKeys keys kept for reading
	// state sealed before a rotation.
	StateKey     string
	StateKeyFile string
	StateOldKeys []string

	// LogFormat is "json", "text" or "auto" (text on a terminal).
	LogFormat string
	// LogLevel is debug, info, warn or error.
	LogLevel string

	// MaxBodyBytes limits request bodies.
	MaxBodyBytes int64
	// RateLimit is requests per second per API key on this replica (0 = off),
	// RateBurst its burst.
	RateLimit float64
	RateBurst int

	ReadTimeout     time.Duration
	WriteTimeout    time.Duration
	IdleTimeout     time.Duration
	ShutdownTimeout time.Duration

	// WebhookAllowPrivate lets webhooks reach loopback and private addresses
	// and plain http (for tests and closed networks).
	WebhookAllowPrivate bool

	// MaxConnections caps the open client connections of this replica;
	// when they are all open the one idle the longest is closed to make
	// room (internal/connlimit). AuthFailLimit is how many failed
	// authentications (API keys, dashboard sign-ins) one client address
	// may make per minute before it is answered 429 (0 = no limit).
	MaxConnections int
	AuthFailLimit  int

	// RetentionEvery is how often retention runs among the replicas (0 =
	// not on this replica); RetainEventKeys how long event idempotency keys
	// are kept; RetainWebhooks how long finished webhook deliveries and
	// their events are kept (internal/retention).
	RetentionEvery  time.Duration
	RetainEventKeys time.Duration
	RetainWebhooks  time.Duration

	// SessionsPerKey caps the dashboard sessions of one API key; the
	// oldest is ended by a new sign-in beyond it.
	SessionsPerKey int

	// DecideEvery is how often this replica's decision loop evaluates the
	// running and paused experiments, funnels and campaigns that have new
	// data (internal/decide); 0 turns the loop off on this replica.
	DecideEvery time.Duration
}

// The defaults of the limits, documented in docs/operations.md.
const (
	// DefaultRateLimit is requests per second per API key per replica: far
	// above what one server key needs, and enough for an app whose clients
	// share one assign key to make a thousand calls a second (batch the
	// calls, or raise it, beyond that).
	DefaultRateLimit = 1000
	DefaultRateBurst = 2000
	// DefaultIdleTimeout closes a keep-alive connection idle that long:
	// long enough for a client's next call to reuse it, short enough that
	// idle clients do not hold descriptors for minutes.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultMaxConnections stays below the 1024 descriptors a process
	// commonly gets, leaving room for the database and files.
	DefaultMaxConnections = 900
	// DefaultAuthFailLimit is failed authentications per client address
	// per minute.
	DefaultAuthFailLimit = 30
	// DefaultSessionsPerKey is dashboard sessions per API key.
	DefaultSessionsPerKey = 20
)

// Default returns the configuration of a server started with no settings:
// 127.0.0.1:8080 over ./samplit.db.
func Default() Config {
	return Config{
		Addr:            "127.0.0.1:8080",
		DatabaseURL:     "samplit.db",
		PGMaxConns:      20,
		LogFormat:       "auto",
		LogLevel:        "info",
		MaxBodyBytes:    1 << 20,
		RateLimit:       DefaultRateLimit,
		RateBurst:       DefaultRateBurst,
		ReadTimeout:     15 * time.Second,
		WriteTimeout:    30 * time.Second,
		IdleTimeout:     DefaultIdleTimeout,
		ShutdownTimeout: 20 * time.Second,
		MaxConnections:  DefaultMaxConnections,
		AuthFailLimit:   DefaultAuthFailLimit,
		RetentionEvery:  time.Hour,
		RetainEventKeys: 30 * 24 * time.Hour,
		RetainWebhooks:  30 * 24 * time.Hour,
		SessionsPerKey:  DefaultSessionsPerKey,
		DecideEvery:     10 * time.Second,
	}
}

// IsPostgres reports whether the database is PostgreSQL.
func (c Config) IsPostgres() bool { return store.IsPostgresDSN(c.DatabaseURL) }

// Validate checks the configuration and returns every problem at once, each
// naming the setting as a user would write it (flag and environment name).
func (c Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		s := settingByField(name)
		errs = append(errs, fmt.Errorf("%s (--%s, %s): %s", s.name, s.name, s.env(), fmt.Sprintf(format, args...)))
	}
	if host, port, err := net.SplitHostPort(c.Addr); err != nil {
		bad("addr", "%q is not host:port", c.Addr)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		bad("addr", "port %q is not a number from 0 to 65535", port)
	} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		bad("addr", "host %q is not an IP address or host name", host)
	}
	if c.Pprof && c.MetricsAddr == "" {
		bad("pprof", "needs --metrics-addr: the profiler is never served on the public listener")
	}
	if c.MetricsAddr != "" {
		if host, port, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			bad("metrics-addr", "%q is not host:port", c.MetricsAddr)
		} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
			bad("metrics-addr", "port %q is not a number from 0 to 65535", port)
		} else if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
			bad("metrics-addr", "host %q is not an IP address or host name", host)
		} else if c.MetricsAddr == c.Addr && p != 0 {
			bad("metrics-addr", "must differ from --addr (empty serves /metrics on --addr)")
		}
	}
	switch {
	case strings.TrimSpace(c.DatabaseURL) == "":
		bad("db", "must not be empty")
	case c.IsPostgres():
		u, err := url.Parse(c.DatabaseURL)
		if err != nil {
			bad("db", "not a valid URL: %v", errors.Unwrap(err))
		} else if u.Host == "" {
			bad("db", "the PostgreSQL URL has no host")
		}
	case strings.Contains(c.DatabaseURL, "://"):
		bad("db", "unsupported database URL %q: use a SQLite file path or a postgres:// URL", redact(c.DatabaseURL))
	}
	if c.PGMaxConns < 1 {
		bad("pg-max-conns", "must be at least 1")
	}
	if c.StateKey != "" && c.StateKeyFile != "" {
		bad("state-key", "set either the key or the key file, not both")
	}
	if c.StateKey != "" {
		if err := checkKey(c.StateKey); err != nil {
			bad("state-key", "%v", err)
		}
	}
	for i, k := range c.StateOldKeys {
		if err := checkKey(k); err != nil {
			bad("state-old-keys", "key %d: %v", i+1, err)
		}
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		bad("log-format", "%q is not json, text or auto", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("log-level", "%q is not debug, info, warn or error", c.LogLevel)
	}
	if c.MaxBodyBytes < 1024 {
		bad("max-body-bytes", "must be at least 1024")
	}
	if c.RateLimit < 0 {
		bad("rate-limit", "must not be negative")
	}
	if c.RateBurst < 1 {
		bad("rate-burst", "must be at least 1")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"read-timeout", c.ReadTimeout}, {"write-timeout", c.WriteTimeout}, {"idle-timeout", c.IdleTimeout}, {"shutdown-timeout", c.ShutdownTimeout}} {
		if d.v <= 0 {
			bad(d.name, "must be a positive duration such as 15s")
		}
	}
	if c.MaxConnections < 1 {
		bad("max-connections", "must be at least 1")
	}
	if c.AuthFailLimit < 0 {
		bad("auth-fail-limit", "must not be negative (0 turns the limit off)")
	}
	if c.RetentionEvery < 0 {
		bad("retention-every", "must be a duration such as 1h, or 0 to run no retention on this replica")
	}
	if c.RetainEventKeys < 24*time.Hour {
		bad("retain-event-keys", "must be at least 24h: a client retrying an event within a day must not count it twice")
	}
	if c.RetainWebhooks < 24*time.Hour {
		bad("retain-webhooks", "must be at least 24h")
	}
	if c.SessionsPerKey < 1 {
		bad("sessions-per-key", "must be at least 1")
	}
	if c.DecideEvery < 0 {
		bad("decide-every", "must be a duration such as 10s, or 0 to turn the decision loop off")
	}
	return errors.Join(errs...)
}

// checkKey reports whether s is a usable state key, so that start-up fails
// early and names the setting. (Whether a key is required at all depends on
// the database and is decided by seal.LoadKeyring.)
func checkKey(s string) error {
	_, err := seal.ParseKey(s)
	return err
}

func validHostname(h string) bool {
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, r := range label {
			if !(r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

// redact hides a password in a URL for error messages and logs.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// Redacted returns the database URL with any password hidden, for logs.
func (c Config) Redacted() string { return redact(c.DatabaseURL) }

// setting is one row of the table of settings.
type setting struct {
	name   string // flag name and file key; env is SAMPLIT_ + upper snake case
	help   string
	get    func(c *Config) string
	set    func(c *Config, v string) error
	isBool bool
}

func (s setting) env() string {
	return "SAMPLIT_" + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

func str(p func(*Config) *string) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return *p(c) },
		func(c *Config, v string) error { *p(c) = v; return nil }
}

func boolean(p func(*Config) *bool) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.FormatBool(*p(c)) },
		func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%q is not true or false", v)
			}
			*p(c) = b
			return nil
		}
}

func integer(p func(*Config) *int) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.Itoa(*p(c)) },
		func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*p(c) = n
			return nil
		}
}

func int64s(p func(*Config) *int64) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.FormatInt(*p(c), 10) },
		func(c *Config, v string) error {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%q is not a whole number", v)
			}
			*p(c) = n
			return nil
		}
}

func float(p func(*Config) *float64) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strconv.FormatFloat(*p(c), 'g', -1, 64) },
		func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return fmt.Errorf("%q is not a number", v)
			}
			*p(c) = f
			return nil
		}
}

func duration(p func(*Config) *time.Duration) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return p(c).String() },
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%q is not a duration such as 15s or 2m", v)
			}
			*p(c) = d
			return nil
		}
}

func list(p func(*Config) *[]string) (func(*Config) string, func(*Config, string) error) {
	return func(c *Config) string { return strings.Join(*p(c), ",") },
		func(c *Config, v string) error {
			*p(c) = nil
			for _, s := range strings.Split(v, ",") {
				if s = strings.TrimSpace(s); s != "" {
					*p(c) = append(*p(c), s)
				}
			}
			return nil
		}
}

func row(name, help string, gs func() (func(*Config) string, func(*Config, string) error)) setting {
	g, s := gs()
	return setting{name: name, help: help, get: g, set: s}
}

// boolRow is the row of a true/false setting: a flag given without a value
// (--pprof) means true.
func boolRow(name, help string, p func(*Config) *bool) setting {
	g, s := boolean(p)
	return setting{name: name, help: help, get: g, set: s, isBool: true}
}

// settings is the table of every setting. Order is the order of --help.
var settings = []setting{
	row("addr", "address (host:port) to listen on", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.Addr })
	}),
	row("metrics-addr", "address (host:port) to serve /metrics on, away from the public listener; empty: /metrics is served on --addr", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.MetricsAddr })
	}),
	boolRow("pprof", "serve Go's profiler at /debug/pprof/ on --metrics-addr (which it requires; never on --addr)", func(c *Config) *bool { return &c.Pprof }),
	row("db", "database: a SQLite file path, or a postgres:// URL (Supabase included)", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.DatabaseURL })
	}),
	boolRow("pg-simple-protocol", "PostgreSQL: no prepared statements (needed behind pgbouncer/Supabase transaction pooler, port 6543)", func(c *Config) *bool { return &c.PGSimpleProtocol }),
	row("pg-max-conns", "PostgreSQL: connection pool size of this replica", func() (func(*Config) string, func(*Config, string) error) {
		return integer(func(c *Config) *int { return &c.PGMaxConns })
	}),
	row("bootstrap-key", "admin key to create on first start instead of a random one (sk_...)", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.BootstrapKey })
	}),
	row("state-key", "base64 32-byte key sealing optimizer state (required with PostgreSQL; with SQLite a key file is generated beside the database)", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.StateKey })
	}),
	row("state-key-file", "file holding the base64 state key (instead of --state-key)", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.StateKeyFile })
	}),
	row("state-old-keys", "comma-separated base64 keys kept for reading state sealed before a key rotation", func() (func(*Config) string, func(*Config, string) error) {
		return list(func(c *Config) *[]string { return &c.StateOldKeys })
	}),
	row("log-format", "log format: json, text or auto (text on a terminal, else json)", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.LogFormat })
	}),
	row("log-level", "log level: debug, info, warn or error", func() (func(*Config) string, func(*Config, string) error) {
		return str(func(c *Config) *string { return &c.LogLevel })
	}),
	row("max-body-bytes", "largest request body accepted, in bytes", func() (func(*Config) string, func(*Config, string) error) {
		return int64s(func(c *Config) *int64 { return &c.MaxBodyBytes })
	}),
	row("rate-limit", "requests per second allowed per API key on this replica, answered 429 above it (0 = no limit)", func() (func(*Config) string, func(*Config, string) error) {
		return float(func(c *Config) *float64 { return &c.RateLimit })
	}),
	row("rate-burst", "burst of requests allowed per API key above the rate limit", func() (func(*Config) string, func(*Config, string) error) {
		return integer(func(c *Config) *int { return &c.RateBurst })
	}),
	row("read-timeout", "time allowed to read a request", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.ReadTimeout })
	}),
	row("write-timeout", "time allowed to write a response", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.WriteTimeout })
	}),
	row("idle-timeout", "how long an idle keep-alive connection stays open", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.IdleTimeout })
	}),
	row("shutdown-timeout", "how long a graceful shutdown waits for requests in flight", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.ShutdownTimeout })
	}),
	boolRow("webhook-allow-private", "let webhooks reach loopback/private addresses over plain http (tests, closed networks)", func(c *Config) *bool { return &c.WebhookAllowPrivate }),
	row("max-connections", "most client connections open at once on this replica; at the cap the longest-idle one is closed to make room, and a new one is refused when all are busy", func() (func(*Config) string, func(*Config, string) error) {
		return integer(func(c *Config) *int { return &c.MaxConnections })
	}),
	row("auth-fail-limit", "failed authentications (unknown or revoked API keys, failed dashboard sign-ins) one client address may make per minute before it gets 429 (0 = no limit)", func() (func(*Config) string, func(*Config, string) error) {
		return integer(func(c *Config) *int { return &c.AuthFailLimit })
	}),
	row("retention-every", "how often retention deletes expired and old rows, once among all replicas (0 = not on this replica)", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.RetentionEvery })
	}),
	row("retain-event-keys", "how long event idempotency keys are kept: an event retried later than that counts again", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.RetainEventKeys })
	}),
	row("retain-webhooks", "how long delivered or abandoned webhook deliveries, their attempts and events are kept (pending ones are kept until done)", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.RetainWebhooks })
	}),
	row("sessions-per-key", "dashboard sessions one API key may hold; a sign-in beyond it ends that key's oldest session", func() (func(*Config) string, func(*Config, string) error) {
		return integer(func(c *Config) *int { return &c.SessionsPerKey })
	}),
	row("decide-every", "how often the decision loop evaluates running experiments, funnels and campaigns with new data and records winners, alerts and trips (0 = off on this replica)", func() (func(*Config) string, func(*Config, string) error) {
		return duration(func(c *Config) *time.Duration { return &c.DecideEvery })
	}),
}

func settingByField(name string) setting {
	for _, s := range settings {
		if s.name == name {
			return s
		}
	}
	panic("config: no setting " + name) // a programming error: Validate names a setting that is not in the table
}

// Load builds the configuration from defaults, the file named by --config
// or SAMPLIT_CONFIG, the environment (through getenv, so tests need no real
// environment) and the flags in args, in increasing precedence, and
// validates it. It returns flag.ErrHelp after printing usage to out when
// args ask for help.
func Load(args []string, getenv func(string) string, out io.Writer) (Config, error) {
	c := Default()
	fs := flag.NewFlagSet("samplit serve", flag.ContinueOnError)
	fs.SetOutput(out)
	configFile := fs.String("config", "", "optional TOML file of settings (keys as the flag names); env SAMPLIT_CONFIG")
	values := make(map[string]*string, len(settings))
	for _, s := range settings {
		v := new(string)
		values[s.name] = v
		def := s.get(&c)
		if s.isBool {
			fs.Var(boolFlag{v}, s.name, s.help)
		} else {
			fs.StringVar(v, s.name, def, s.help)
		}
	}
	fs.Usage = func() { usage(out, fs, c) }
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q (settings are --flags)", fs.Arg(0))
	}

	file := *configFile
	if file == "" {
		file = getenv("SAMPLIT_CONFIG")
	}
	if file != "" {
		if err := loadFile(&c, file); err != nil {
			return c, err
		}
	}
	for _, s := range settings {
		if v := getenv(s.env()); v != "" {
			if err := s.set(&c, v); err != nil {
				return c, fmt.Errorf("%s: %v", s.env(), err)
			}
		}
	}
	// DATABASE_URL is what the contract names; SAMPLIT_DB is the table's
	// name for the same setting. The contract's name wins.
	if v := getenv("SAMPLIT_DATABASE_URL"); v != "" {
		c.DatabaseURL = v
	}
	var flagErr error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || flagErr != nil {
			return
		}
		for _, s := range settings {
			if s.name == f.Name {
				if err := s.set(&c, *values[s.name]); err != nil {
					flagErr = fmt.Errorf("--%s: %v", s.name, err)
				}
			}
		}
	})
	if flagErr != nil {
		return c, flagErr
	}
	return c, c.Validate()
}

func loadFile(c *Config, path string) error {
	raw := map[string]any{}
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		if os.IsNotExist(errors.Unwrap(err)) || errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("config file %s does not exist", path)
		}
		return fmt.Errorf("config file %s: %v", path, err)
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := strings.ReplaceAll(k, "_", "-")
		var s *setting
		for i := range settings {
			if settings[i].name == name {
				s = &settings[i]
			}
		}
		if s == nil {
			return fmt.Errorf("config file %s: unknown setting %q", path, k)
		}
		var v string
		switch x := raw[k].(type) {
		case []any:
			parts := make([]string, len(x))
			for i, p := range x {
				parts[i] = fmt.Sprint(p)
			}
			v = strings.Join(parts, ",")
		default:
			v = fmt.Sprint(x)
		}
		if err := s.set(c, v); err != nil {
			return fmt.Errorf("config file %s: %s: %v", path, k, err)
		}
	}
	return nil
}

func usage(out io.Writer, fs *flag.FlagSet, def Config) {
	fmt.Fprintf(out, "Usage: samplit serve [flags]\n\n")
	fmt.Fprintf(out, "Runs the Samplit HTTP server. Settings come from flags, then SAMPLIT_* environment\n")
	fmt.Fprintf(out, "variables, then an optional TOML file (--config), then the defaults below.\n\nFlags:\n")
	fmt.Fprintf(out, "  --config FILE\n        optional TOML file of settings (keys as the flag names)\n        env: SAMPLIT_CONFIG\n")
	for _, s := range settings {
		d := s.get(&def)
		if d == "" {
			d = `""`
		}
		env := s.env()
		if s.name == "db" {
			env = "SAMPLIT_DATABASE_URL (or SAMPLIT_DB)"
		}
		fmt.Fprintf(out, "  --%s\n        %s\n        env: %s\n        default: %s\n", s.name, s.help, env, d)
	}
}

// boolFlag is a string-backed flag that can be given without a value
// (--pg-simple-protocol) like a flag.Bool.
type boolFlag struct{ v *string }

func (b boolFlag) String() string {
	if b.v == nil {
		return ""
	}
	return *b.v
}
func (b boolFlag) Set(s string) error { *b.v = s; return nil }
func (b boolFlag) IsBoolFlag() bool   { return true }
