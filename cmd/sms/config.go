package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spear-next/sms/internal/cliopt"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

// options are the server's settings, each a flag with the environment
// variable it falls back to: the single source of parsing and of --help.
var options = cliopt.Options{
	{Name: "addr", Env: "SMS_ADDR", Default: "127.0.0.1:50051", Arg: "host:port", Usage: "one-port layout: everything on one address (Connect, gRPC through connect-go, gRPC-web, REST, dashboard, /metrics, /healthz); the default layout"},
	{Name: "grpc-addr", Env: "SMS_GRPC_ADDR", Default: "", Arg: "host:port", Usage: "SPEAR's layout: gRPC on grpc-go's server at this address (SPEAR: 127.0.0.1:50051), with --http-addr for the rest; instead of --addr"},
	{Name: "http-addr", Env: "SMS_HTTP_ADDR", Default: "", Arg: "host:port", Usage: "SPEAR's layout: Connect, gRPC-web, gRPC through connect-go, REST, dashboard, /metrics and /healthz at this address (SPEAR: 127.0.0.1:8080), with --grpc-addr; instead of --addr"},
	{Name: "kv-backend", Env: kvstore.EnvBackend, Default: kvstore.DefaultBackend, Arg: "name", Usage: "key/value store: memory, sqlite or postgres"},
	{Name: "kv-path", Env: kvstore.EnvPath, Default: kvstore.DefaultPath, Arg: "file", Usage: "SQLite database file (sqlite backend)"},
	{Name: "kv-dsn", Env: kvstore.EnvDSN, Default: "", Arg: "url", Usage: "Postgres connection string (required for the postgres backend; logged with its password masked)"},
	{Name: "kv-listen-dsn", Env: kvstore.EnvListenDSN, Default: "", Arg: "url", Usage: "direct Postgres connection for the change feed's LISTEN and migrations, when --kv-dsn goes through a transaction pooler (default: --kv-dsn; logged with its password masked)"},
	{Name: "sqlite-synchronous", Env: kvstore.EnvSQLiteSynchronous, Default: kvstore.SynchronousLevels[0], Arg: "level", Usage: "SQLite synchronous level: full, or normal (survives a process crash, may lose the last commits on power loss)"},
	{Name: "skip-migrations", Env: "SMS_SKIP_MIGRATIONS", Default: "false", Arg: cliopt.BoolArg, Usage: "do not migrate the database on start (run sms migrate up as a deploy step); refuse to start if a migration is pending"},
	{Name: "heartbeat-timeout", Env: "SMS_HEARTBEAT_TIMEOUT", Default: "90s", Arg: "duration", Usage: "an active node silent for longer is marked unhealthy (> 0)"},
	{Name: "cleanup-interval", Env: "SMS_CLEANUP_INTERVAL", Default: "30s", Arg: "duration", Usage: "how often the liveness sweeper runs (> 0)"},
	{Name: "node-ttl", Env: "SMS_NODE_TTL", Default: "0", Arg: "duration", Usage: "delete nodes silent for longer; 0 = never, otherwise >= the heartbeat timeout"},
	{Name: "max-request-bytes", Env: "SMS_MAX_REQUEST_BYTES", Default: "4194304", Arg: "bytes", Usage: "largest request message accepted (> 0), as sent and as inflated; larger ones get resource_exhausted (413 on REST)"},
	{Name: "max-watchers", Env: "SMS_MAX_WATCHERS", Default: "1024", Arg: "count", Usage: "most WatchNodes streams open at once (> 0); more get resource_exhausted"},
	{Name: "read-header-timeout", Env: "SMS_READ_HEADER_TIMEOUT", Default: "10s", Arg: "duration", Usage: "close a connection whose request headers take longer to arrive (> 0)"},
	{Name: "read-body-timeout", Env: "SMS_READ_BODY_TIMEOUT", Default: "30s", Arg: "duration", Usage: "fail a call whose request body takes longer to arrive, and close its connection (> 0); streams are not limited once their request is in"},
	{Name: "cors-allow-origin", Env: "SMS_CORS_ALLOW_ORIGIN", Default: "", Arg: "origin", Usage: "let browser pages from this origin (scheme://host[:port], or * for any) call SMS; repeatable, the variable comma-separated; none = cross-origin calls refused"},
	{Name: "tls-cert", Env: "SMS_TLS_CERT", Default: "", Arg: "file", Usage: "PEM server certificate; with --tls-key serves TLS instead of cleartext"},
	{Name: "tls-key", Env: "SMS_TLS_KEY", Default: "", Arg: "file", Usage: "PEM private key of --tls-cert"},
	{Name: "tls-client-ca", Env: "SMS_TLS_CLIENT_CA", Default: "", Arg: "file", Usage: "PEM CA certificates; if set, clients must present a certificate they signed (needs TLS)"},
	{Name: "auth-token-file", Env: "SMS_AUTH_TOKEN_FILE", Default: "", Arg: "file", Usage: "file holding one bearer token every RPC must carry; health, reflection and /healthz stay open"},
	{Name: "metrics", Env: "SMS_METRICS", Default: "true", Arg: cliopt.BoolArg, Usage: "serve Prometheus metrics on GET /metrics (no token needed, like /healthz)"},
	{Name: "metrics-max-age", Env: "SMS_METRICS_MAX_AGE", Default: "10s", Arg: "duration", Usage: "how long /metrics reuses one pass over the registry view for the heartbeat and report age histograms (> 0); node counts are current at every scrape"},
	{Name: "memory-limit", Env: "SMS_MEMORY_LIMIT", Default: "auto", Arg: "size", Usage: "soft limit of the Go heap (what GOMEMLIMIT sets): auto = a GOMEMLIMIT variable if set, else 90% of the cgroup's memory limit, else 896MiB; 0 = none; or a size such as 2GiB or 1536MiB"},
	{Name: "log-level", Env: "SMS_LOG_LEVEL", Default: "info", Arg: "level", Usage: "debug, info, warn or error"},
	{Name: "log-format", Env: "SMS_LOG_FORMAT", Default: "text", Arg: "format", Usage: "text or json"},
}

// config is the validated server configuration. Files named by flags are
// already read, so a config that parsed can start the server.
type config struct {
	// addr is the one port of the one-port layout; "" in SPEAR's layout,
	// where grpcAddr and httpAddr are both set. An address is host:port, or
	// fd:N for a listening socket inherited as file descriptor N.
	addr              string
	grpcAddr          string
	httpAddr          string
	store             kvstore.Config // validated; its DSN is a secret
	metrics           bool
	metricsMaxAge     time.Duration
	memory            memorySetting
	memoryLimit       int64  // resolved from memory: bytes, 0 = none
	memorySource      string // where memoryLimit comes from, for the log
	heartbeatTimeout  time.Duration
	cleanupInterval   time.Duration
	nodeTTL           time.Duration // 0 = never
	maxRequestBytes   int
	maxWatchers       int
	readHeaderTimeout time.Duration
	readBodyTimeout   time.Duration
	corsOrigins       []string // empty = cross-origin calls refused

	// tlsCert is nil for cleartext.
	tlsCert *tls.Certificate
	// clientCAs, if not nil, must have signed the client's certificate.
	clientCAs *x509.CertPool

	authToken string // secret; "" = no authentication

	logLevel  slog.Level
	logFormat string // text or json
}

// usageError is a configuration mistake: the message names the flag, its
// environment variable and what it accepts, on one line. main exits 2.
type usageError = cliopt.UsageError

// errHelp means --help was asked for and the usage was printed.
var errHelp = cliopt.ErrHelp

// values are the options resolved: each flag if given, else its
// environment variable if not empty, else its default.
type values struct{ *cliopt.Values }

// parseConfig parses the command line and environment into a config. It
// returns errHelp after printing usage to out for --help, and a *usageError
// for anything wrong.
func parseConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("sms", flag.ContinueOnError)
	v := values{options.Bind(fs, getenv)}
	if err := cliopt.Parse(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			printUsage(out)
		}
		return config{}, err
	}
	if err := cliopt.NoArgs(fs); err != nil {
		return config{}, err
	}
	c, err := v.config()
	if err == nil {
		c.memoryLimit, c.memorySource = c.memory.resolve(getenv, cgroupMemoryLimit)
	}
	return c, err
}

// bad returns the one-line error for option name:
// `--name (ENV): <problem>; want <want>`.
func bad(name, problem, want string) error { return options.Bad(name, problem, want) }

// oneLine keeps errors from files or the OS on one line.
func oneLine(s string) string { return cliopt.OneLine(s) }

// storeFlags names the flag behind each parameter of kvstore.Config.
var storeFlags = map[kvstore.Param]string{
	kvstore.ParamBackend:           "kv-backend",
	kvstore.ParamPath:              "kv-path",
	kvstore.ParamDSN:               "kv-dsn",
	kvstore.ParamListenDSN:         "kv-listen-dsn",
	kvstore.ParamSQLiteSynchronous: "sqlite-synchronous",
	kvstore.ParamSkipMigrations:    "skip-migrations",
}

// storeConfig fills the store factory's configuration from the kv flags:
// the backend, and each of its parameters that was given, or defaulted for
// the backend that uses it (--kv-path's default means nothing to Postgres).
// kvstore validates it, rejecting a given parameter the backend does not
// use; the error names the flag.
func (v values) storeConfig() (kvstore.Config, error) {
	c := kvstore.Config{Backend: strings.ToLower(strings.TrimSpace(v.Get("kv-backend")))}
	param := func(name, usedBy string) string { // "" for what sms migrate does not take
		if v.Has(name) && (v.Given(name) || c.Backend == usedBy) {
			return v.Get(name)
		}
		return ""
	}
	c.Path = param("kv-path", kvstore.BackendSQLite)
	c.DSN = param("kv-dsn", kvstore.BackendPostgres)
	c.ListenDSN = param("kv-listen-dsn", kvstore.BackendPostgres)
	c.SQLiteSynchronous = strings.ToLower(param("sqlite-synchronous", kvstore.BackendSQLite))
	if v.Has("skip-migrations") && v.Get("skip-migrations") != "" { // sms migrate has no such flag
		var err error
		if c.SkipMigrations, err = v.Bool("skip-migrations"); err != nil {
			return c, err
		}
	}
	return c, storeFlagError(c.Validate())
}

// storeFlagError turns kvstore's error about a parameter into the one-line
// error about its flag (the first, if several are wrong).
func storeFlagError(err error) error {
	var pe *kvstore.ParamError
	if errors.As(err, &pe) {
		if name, ok := storeFlags[pe.Param]; ok {
			return bad(name, pe.Problem, pe.Want)
		}
	}
	return err
}

func (v values) config() (config, error) {
	var c config
	var err error

	if err := c.loadAddrs(v); err != nil {
		return c, err
	}

	if c.store, err = v.storeConfig(); err != nil {
		return c, err
	}

	if c.heartbeatTimeout, err = v.PositiveDuration("heartbeat-timeout", "a Go duration > 0 such as 90s"); err != nil {
		return c, err
	}
	if c.cleanupInterval, err = v.PositiveDuration("cleanup-interval", "a Go duration > 0 such as 30s"); err != nil {
		return c, err
	}

	const ttlWant = "0 (never) or a Go duration >= --heartbeat-timeout such as 24h"
	raw := v.Get("node-ttl")
	c.nodeTTL, err = time.ParseDuration(raw)
	switch {
	case err != nil:
		return c, bad("node-ttl", fmt.Sprintf("%q is not a duration", raw), ttlWant)
	case c.nodeTTL < 0:
		return c, bad("node-ttl", fmt.Sprintf("%q is negative", raw), ttlWant)
	case c.nodeTTL > 0 && c.nodeTTL < c.heartbeatTimeout:
		// Deleting a node before it could even be marked unhealthy would
		// skip the unhealthy state altogether.
		return c, bad("node-ttl", fmt.Sprintf("%s is shorter than --heartbeat-timeout %s", c.nodeTTL, c.heartbeatTimeout), ttlWant)
	}

	raw = v.Get("max-request-bytes")
	n, err := strconv.ParseInt(raw, 10, 0)
	switch {
	case err != nil:
		return c, bad("max-request-bytes", fmt.Sprintf("%q is not an integer", raw), "a byte count > 0 such as 4194304")
	case n <= 0:
		return c, bad("max-request-bytes", fmt.Sprintf("%q is not > 0", raw), "a byte count > 0 such as 4194304")
	}
	c.maxRequestBytes = int(n)

	raw = v.Get("max-watchers")
	if n, err = strconv.ParseInt(raw, 10, 0); err != nil || n <= 0 {
		return c, bad("max-watchers", fmt.Sprintf("%q is not an integer > 0", raw), "a count > 0 such as 1024")
	}
	c.maxWatchers = int(n)
	if c.readHeaderTimeout, err = v.PositiveDuration("read-header-timeout", "a Go duration > 0 such as 10s"); err != nil {
		return c, err
	}
	if c.readBodyTimeout, err = v.PositiveDuration("read-body-timeout", "a Go duration > 0 such as 30s"); err != nil {
		return c, err
	}
	if c.corsOrigins, err = parseOrigins(strings.Join(v.List("cors-allow-origin"), ",")); err != nil {
		return c, err
	}

	if err := c.loadTLS(v); err != nil {
		return c, err
	}
	if c.authToken, err = loadToken(v.Get("auth-token-file")); err != nil {
		return c, err
	}

	if c.metrics, err = v.Bool("metrics"); err != nil {
		return c, err
	}
	if c.metricsMaxAge, err = v.PositiveDuration("metrics-max-age", "a Go duration > 0 such as 10s"); err != nil {
		return c, err
	}
	if c.memory, err = parseMemoryLimit(v.Get("memory-limit")); err != nil {
		return c, bad("memory-limit", err.Error(), "auto, 0 (none) or a size such as 1GiB")
	}

	raw = v.Get("log-level")
	switch strings.ToLower(raw) {
	case "debug":
		c.logLevel = slog.LevelDebug
	case "info":
		c.logLevel = slog.LevelInfo
	case "warn":
		c.logLevel = slog.LevelWarn
	case "error":
		c.logLevel = slog.LevelError
	default:
		return c, bad("log-level", fmt.Sprintf("%q is not a level", raw), "debug, info, warn or error")
	}
	c.logFormat = strings.ToLower(v.Get("log-format"))
	switch c.logFormat {
	case "text", "json":
	default:
		return c, bad("log-format", fmt.Sprintf("%q is not a format", v.Get("log-format")), "text or json")
	}
	return c, nil
}

// Defaults of SPEAR's layout, for the one of --grpc-addr and --http-addr
// that is not given.
const (
	defaultGRPCAddr = "127.0.0.1:50051"
	defaultHTTPAddr = "127.0.0.1:8080"
)

// loadAddrs picks the layout: SPEAR's (gRPC and HTTP apart) when
// --grpc-addr or --http-addr is given, the other one defaulting to SPEAR's
// port; otherwise the one-port layout on --addr.
func (c *config) loadAddrs(v values) error {
	c.grpcAddr, c.httpAddr = v.Get("grpc-addr"), v.Get("http-addr")
	if c.grpcAddr == "" && c.httpAddr == "" {
		c.addr = v.Get("addr")
		return checkAddr("addr", c.addr)
	}
	if v.Given("addr") {
		name := "grpc-addr"
		if c.grpcAddr == "" {
			name = "http-addr"
		}
		return bad(name, "set together with --addr", "either --addr (one port) or --grpc-addr and --http-addr (SPEAR's layout)")
	}
	if c.grpcAddr == "" {
		c.grpcAddr = defaultGRPCAddr
	}
	if c.httpAddr == "" {
		c.httpAddr = defaultHTTPAddr
	}
	if err := checkAddr("grpc-addr", c.grpcAddr); err != nil {
		return err
	}
	if err := checkAddr("http-addr", c.httpAddr); err != nil {
		return err
	}
	if _, port, _ := net.SplitHostPort(c.grpcAddr); c.grpcAddr == c.httpAddr && port != "0" {
		return bad("http-addr", fmt.Sprintf("%q is also --grpc-addr", c.httpAddr), "two different addresses, or --addr for one port")
	}
	return nil
}

// checkAddr accepts host:port, or fd:N (an inherited listening socket).
func checkAddr(name, addr string) error {
	if n, ok := strings.CutPrefix(addr, "fd:"); ok {
		if fd, err := strconv.Atoi(n); err != nil || fd < 3 {
			return bad(name, fmt.Sprintf("%q is not an inherited file descriptor", addr), "fd:N with N >= 3")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return bad(name, fmt.Sprintf("%q is not host:port", addr), "host:port such as 127.0.0.1:50051 or :50051, or fd:N")
	}
	return nil
}

// parseOrigins parses the comma-separated origins of --cors-allow-origin:
// each "*" or scheme://host[:port] with nothing after.
func parseOrigins(raw string) ([]string, error) {
	var origins []string
	for o := range strings.SplitSeq(raw, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if o != "*" {
			u, err := url.Parse(o)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
				(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
				return nil, bad("cors-allow-origin", fmt.Sprintf("%q is not an origin", o), "scheme://host[:port] such as https://dashboard.example.com, or *")
			}
			o = u.Scheme + "://" + u.Host // a browser's Origin has no trailing slash
		}
		origins = append(origins, o)
	}
	return origins, nil
}

// loadTLS reads the certificate, key and client CAs now, so that a bad file
// stops the server at start rather than failing every handshake.
func (c *config) loadTLS(v values) error {
	certFile, keyFile, caFile := v.Get("tls-cert"), v.Get("tls-key"), v.Get("tls-client-ca")
	switch {
	case certFile == "" && keyFile != "":
		return bad("tls-cert", "missing, and --tls-key is set", "both --tls-cert and --tls-key, or neither")
	case certFile != "" && keyFile == "":
		return bad("tls-key", "missing, and --tls-cert is set", "both --tls-cert and --tls-key, or neither")
	case certFile == "" && caFile != "":
		return bad("tls-client-ca", "set without --tls-cert and --tls-key", "a CA file only together with --tls-cert and --tls-key")
	case certFile == "":
		return nil
	}

	const pairWant = "a PEM certificate and the PEM private key that matches it"
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return bad("tls-cert", err.Error(), pairWant)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return bad("tls-key", err.Error(), pairWant)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// X509KeyPair's errors describe the problem, never the key.
		return bad("tls-cert", fmt.Sprintf("%s with %s: %v", certFile, keyFile, err), pairWant)
	}
	c.tlsCert = &cert

	if caFile == "" {
		return nil
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return bad("tls-client-ca", err.Error(), "a PEM file of CA certificates")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return bad("tls-client-ca", fmt.Sprintf("%s holds no PEM certificate", caFile), "a PEM file of CA certificates")
	}
	c.clientCAs = pool
	return nil
}

// loadToken reads the bearer token from file ("" = no authentication). The
// token itself never appears in an error.
func loadToken(file string) (string, error) {
	if file == "" {
		return "", nil
	}
	const want = "a readable file holding one token"
	b, err := os.ReadFile(file)
	if err != nil {
		return "", bad("auth-token-file", err.Error(), want)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", bad("auth-token-file", fmt.Sprintf("%s is empty", file), want)
	}
	// The token travels in an Authorization header: only visible ASCII, and
	// no inner whitespace, which would mean the file holds several tokens.
	for i := 0; i < len(token); i++ {
		if token[i] <= ' ' || token[i] > '~' {
			return "", bad("auth-token-file", fmt.Sprintf("%s holds whitespace or non-ASCII characters inside the token", file), want+" of visible ASCII characters")
		}
	}
	return token, nil
}

// printUsage writes --help: every flag with its environment variable and
// default.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sms [flags]
       sms migrate up|down|status [flags]   (see sms migrate --help)
       sms backup [--kv-path FILE] DEST     (see sms backup --help)
       sms --version

SMS serves the node and resource registries over Connect, gRPC and gRPC-web.
Layouts: one port (--addr, the default), or SPEAR's: gRPC on grpc-go's server
at --grpc-addr and everything else at --http-addr.
Each flag falls back to its environment variable (when set and not empty),
then to its default. A flag given on the command line wins over its variable.

`)
	options.PrintUsage(w)
}
