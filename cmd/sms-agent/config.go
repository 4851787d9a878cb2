package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/internal/buildinfo"
	"github.com/spear-next/sms/internal/cliopt"
)

// The server connection's variables are smsctl's, so one environment
// serves both; the agent's own start with SMS_AGENT_.
var options = cliopt.Options{
	{Name: "addr", Env: "SMS_ADDR", Default: "http://127.0.0.1:50051", Arg: "url", Usage: "server URL, or host:port (https:// when a TLS flag is set)"},
	{Name: "token", Env: "SMS_TOKEN", Default: "", Arg: "token", Usage: "bearer token, for a server started with --auth-token-file"},
	{Name: "token-file", Env: "SMS_TOKEN_FILE", Default: "", Arg: "file", Usage: "file holding the bearer token (instead of --token)"},
	{Name: "protocol", Env: "SMS_AGENT_PROTOCOL", Default: "connect", Arg: "name", Usage: "wire protocol: connect, grpc or grpcweb"},
	{Name: "tls-ca", Env: "SMS_AGENT_TLS_CA", Default: "", Arg: "file", Usage: "PEM CA certificates to verify the server with (default: the system's)"},
	{Name: "tls-cert", Env: "SMS_AGENT_TLS_CERT", Default: "", Arg: "file", Usage: "PEM client certificate, for a server with --tls-client-ca"},
	{Name: "tls-key", Env: "SMS_AGENT_TLS_KEY", Default: "", Arg: "file", Usage: "PEM private key of --tls-cert"},
	{Name: "insecure-skip-verify", Env: "SMS_AGENT_INSECURE_SKIP_VERIFY", Default: "false", Arg: cliopt.BoolArg, Usage: "do not verify the server's certificate (testing only)"},
	{Name: "timeout", Env: "SMS_AGENT_TIMEOUT", Default: "10s", Arg: "duration", Usage: "deadline of each call, retries included (> 0)"},
	{Name: "node-uuid", Env: "SMS_AGENT_NODE_UUID", Default: "", Arg: "uuid", Usage: "the node's uuid (default: a v5 uuid of the machine id, --node-addr and --node-port, stable across restarts)"},
	{Name: "machine-id-file", Env: "SMS_AGENT_MACHINE_ID_FILE", Default: "/etc/machine-id", Arg: "file", Usage: "file holding the machine id the default node uuid derives from"},
	{Name: "node-addr", Env: "SMS_AGENT_NODE_ADDR", Default: "", Arg: "host", Usage: "address registered for the node (default: this machine's address on the route to the server)"},
	{Name: "node-port", Env: "SMS_AGENT_NODE_PORT", Default: "50052", Arg: "port", Usage: "service port registered for the node, 1..65535"},
	{Name: "node-http-port", Env: "SMS_AGENT_NODE_HTTP_PORT", Default: "0", Arg: "port", Usage: "HTTP port registered for the node, 0..65535 (0 = none)"},
	{Name: "label", Env: "SMS_AGENT_LABELS", Default: "", Arg: "key=value", Usage: "node metadata, added to hostname, os and arch (repeatable; env: comma-separated)"},
	{Name: "heartbeat-interval", Env: "SMS_AGENT_HEARTBEAT_INTERVAL", Default: "10s", Arg: "duration", Usage: "time between heartbeats, ±10 % jitter (> 0; keep it well below the server's --heartbeat-timeout)"},
	{Name: "report-interval", Env: "SMS_AGENT_REPORT_INTERVAL", Default: "5s", Arg: "duration", Usage: "time between resource reports, ±10 % jitter (> 0)"},
	{Name: "disk-path", Env: "SMS_AGENT_DISK_PATH", Default: "/", Arg: "path", Usage: "report the disk usage of the file system holding this path"},
	{Name: "once", Env: "SMS_AGENT_ONCE", Default: "false", Arg: cliopt.BoolArg, Usage: "register, report once and exit, leaving the node registered (for scripts)"},
	{Name: "deregister-on-exit", Env: "SMS_AGENT_DEREGISTER_ON_EXIT", Default: "false", Arg: cliopt.BoolArg, Usage: "on SIGTERM or SIGINT, delete the node instead of marking it inactive"},
	{Name: "metrics-addr", Env: "SMS_AGENT_METRICS_ADDR", Default: "", Arg: "host:port", Usage: "serve the agent's Prometheus metrics on GET /metrics at this address (default: off)"},
	{Name: "log-level", Env: "SMS_AGENT_LOG_LEVEL", Default: "info", Arg: "level", Usage: "debug, info, warn or error"},
	{Name: "log-format", Env: "SMS_AGENT_LOG_FORMAT", Default: "text", Arg: "format", Usage: "text or json"},
}

// config is the validated agent configuration; files it names are read.
type config struct {
	addr     string
	dialOpts []client.Option

	nodeUUID      string // "" = derive from machineIDFile
	machineIDFile string
	nodeAddr      string // "" = detect
	nodePort      int
	nodeHTTPPort  int
	labels        map[string]string

	heartbeatInterval, reportInterval time.Duration
	diskPath                          string
	once, deregisterOnExit            bool
	metricsAddr                       string

	logLevel  slog.Level
	logFormat string
}

// usageError is a configuration mistake, on one line; main exits 2.
type usageError = cliopt.UsageError

// errHelp and errVersion mean --help or --version was asked for and
// answered.
var (
	errHelp    = cliopt.ErrHelp
	errVersion = errors.New("version requested")
)

// bad returns the one-line error for option name:
// `--name (ENV): <problem>; want <want>`.
func bad(name, problem, want string) error { return options.Bad(name, problem, want) }

func oneLine(s string) string { return cliopt.OneLine(s) }

// parseConfig parses the command line and environment: a flag given wins
// over its environment variable, which wins over the default. It returns
// errHelp or errVersion after printing to stdout, and a *usageError for
// anything wrong.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	fs := flag.NewFlagSet("sms-agent", flag.ContinueOnError)
	v := options.Bind(fs, getenv)
	version := fs.Bool("version", false, "print the version and exit")
	if err := cliopt.Parse(fs, args); err != nil {
		if errors.Is(err, errHelp) {
			printUsage(stdout)
		}
		return config{}, err
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("sms-agent"))
		return config{}, errVersion
	}
	if err := cliopt.NoArgs(fs); err != nil {
		return config{}, err
	}
	return resolve(v)
}

func resolve(v *cliopt.Values) (config, error) {
	var c config
	var err error
	get := v.Get
	c.addr = get("addr")

	var opts []client.Option
	if v.FromFlag("token") && v.FromFlag("token-file") {
		return c, bad("token-file", "set together with --token", "one of --token and --token-file")
	}
	token := get("token")
	if file := get("token-file"); file != "" && !v.FromFlag("token") {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, bad("token-file", err.Error(), "a readable file holding one token")
		}
		if token = strings.TrimSpace(string(b)); token == "" {
			return c, bad("token-file", file+" is empty", "a readable file holding one token")
		}
	}
	if token != "" {
		opts = append(opts, client.WithToken(token))
	}

	p, err := client.ParseProtocol(get("protocol"))
	if err != nil {
		return c, bad("protocol", fmt.Sprintf("%q is not a protocol", get("protocol")), "connect, grpc or grpcweb")
	}
	opts = append(opts, client.WithProtocol(p))

	files := client.TLSFiles{CA: get("tls-ca"), Cert: get("tls-cert"), Key: get("tls-key")}
	if files.InsecureSkipVerify, err = v.Bool("insecure-skip-verify"); err != nil {
		return c, err
	}
	if !files.Empty() {
		tc, err := client.LoadTLS(files)
		if err != nil {
			name := "tls-cert"
			if strings.HasPrefix(err.Error(), "tls ca") {
				name = "tls-ca"
			}
			return c, bad(name, err.Error(), "readable PEM files (--tls-cert and --tls-key together)")
		}
		opts = append(opts, client.WithTLS(tc))
	}
	timeout, err := v.PositiveDuration("timeout", "a Go duration > 0 such as 10s")
	if err != nil {
		return c, err
	}
	opts = append(opts, client.WithTimeout(timeout))
	// Dial checks the address; its error says what it wants.
	if _, err := client.Dial(c.addr, opts...); err != nil {
		return c, options.Invalid("addr", err.Error())
	}
	c.dialOpts = opts

	if raw := get("node-uuid"); raw != "" {
		u, err := uuid.Parse(raw)
		if err != nil {
			return c, bad("node-uuid", fmt.Sprintf("%q is not a uuid", raw), "a uuid such as 0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b")
		}
		c.nodeUUID = u.String()
	}
	c.machineIDFile = get("machine-id-file")
	c.nodeAddr = get("node-addr")
	if c.nodePort, err = port(get, "node-port", 1); err != nil {
		return c, err
	}
	if c.nodeHTTPPort, err = port(get, "node-http-port", 0); err != nil {
		return c, err
	}
	c.labels = map[string]string{}
	for _, l := range v.List("label") {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return c, bad("label", fmt.Sprintf("%q is not key=value", l), "key=value such as zone=a")
		}
		c.labels[k] = v
	}

	if c.heartbeatInterval, err = v.PositiveDuration("heartbeat-interval", "a Go duration > 0 such as 10s"); err != nil {
		return c, err
	}
	if c.reportInterval, err = v.PositiveDuration("report-interval", "a Go duration > 0 such as 5s"); err != nil {
		return c, err
	}
	if c.diskPath = get("disk-path"); c.diskPath == "" {
		return c, bad("disk-path", "empty", "a path such as /")
	}
	if c.once, err = v.Bool("once"); err != nil {
		return c, err
	}
	if c.deregisterOnExit, err = v.Bool("deregister-on-exit"); err != nil {
		return c, err
	}
	if c.metricsAddr = get("metrics-addr"); c.metricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.metricsAddr); err != nil {
			return c, bad("metrics-addr", fmt.Sprintf("%q is not host:port", c.metricsAddr), "host:port such as 127.0.0.1:9101")
		}
	}

	raw := get("log-level")
	if err := c.logLevel.UnmarshalText([]byte(raw)); err != nil || strings.ContainsAny(raw, "+-") {
		return c, bad("log-level", fmt.Sprintf("%q is not a level", raw), "debug, info, warn or error")
	}
	c.logFormat = strings.ToLower(get("log-format"))
	if c.logFormat != "text" && c.logFormat != "json" {
		return c, bad("log-format", fmt.Sprintf("%q is not a format", get("log-format")), "text or json")
	}
	return c, nil
}

func port(get func(string) string, name string, lowest int) (int, error) {
	raw := get(name)
	n, err := strconv.Atoi(raw)
	if err != nil || n < lowest || n > 65535 {
		return 0, bad(name, fmt.Sprintf("%q is not a port", raw), fmt.Sprintf("a number in %d..65535", lowest))
	}
	return n, nil
}

// printUsage writes --help: every flag with its environment variable and
// default.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sms-agent [flags]

sms-agent registers this machine as a node with an SMS server, heartbeats,
and reports its CPU, memory, disk, network and load. On SIGTERM or SIGINT it
marks the node inactive (or deletes it, with --deregister-on-exit) and exits.
Each flag falls back to its environment variable (when set and not empty),
then to its default.

`)
	options.PrintUsage(w)
	fmt.Fprint(w, `  --version
	print the version and exit

Exit status: 0 after a clean stop; 1 when the agent could not run (bad token,
a node the server rejects, --once failing); 2 for a bad setting.
`)
}
