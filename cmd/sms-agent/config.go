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
)

// option is one setting: its flag, the environment variable it falls back
// to, and its default. The table is the single source of parsing and of
// --help.
type option struct {
	name  string // flag name, without dashes
	env   string
	def   string // "" = none
	arg   string // placeholder in --help
	usage string
}

// The server connection's variables are smsctl's, so one environment
// serves both; the agent's own start with SMS_AGENT_.
var options = []option{
	{"addr", "SMS_ADDR", "http://127.0.0.1:50051", "url", "server URL, or host:port (https:// when a TLS flag is set)"},
	{"token", "SMS_TOKEN", "", "token", "bearer token, for a server started with --auth-token-file"},
	{"token-file", "SMS_TOKEN_FILE", "", "file", "file holding the bearer token (instead of --token)"},
	{"protocol", "SMS_AGENT_PROTOCOL", "connect", "name", "wire protocol: connect, grpc or grpcweb"},
	{"tls-ca", "SMS_AGENT_TLS_CA", "", "file", "PEM CA certificates to verify the server with (default: the system's)"},
	{"tls-cert", "SMS_AGENT_TLS_CERT", "", "file", "PEM client certificate, for a server with --tls-client-ca"},
	{"tls-key", "SMS_AGENT_TLS_KEY", "", "file", "PEM private key of --tls-cert"},
	{"insecure-skip-verify", "SMS_AGENT_INSECURE_SKIP_VERIFY", "false", boolArg, "do not verify the server's certificate (testing only)"},
	{"timeout", "SMS_AGENT_TIMEOUT", "10s", "duration", "deadline of each call, retries included (> 0)"},
	{"node-uuid", "SMS_AGENT_NODE_UUID", "", "uuid", "the node's uuid (default: a v5 uuid of the machine id, --node-addr and --node-port, stable across restarts)"},
	{"machine-id-file", "SMS_AGENT_MACHINE_ID_FILE", "/etc/machine-id", "file", "file holding the machine id the default node uuid derives from"},
	{"node-addr", "SMS_AGENT_NODE_ADDR", "", "host", "address registered for the node (default: this machine's address on the route to the server)"},
	{"node-port", "SMS_AGENT_NODE_PORT", "50052", "port", "service port registered for the node, 1..65535"},
	{"node-http-port", "SMS_AGENT_NODE_HTTP_PORT", "0", "port", "HTTP port registered for the node, 0..65535 (0 = none)"},
	{"label", "SMS_AGENT_LABELS", "", "key=value", "node metadata, added to hostname, os and arch (repeatable; env: comma-separated)"},
	{"heartbeat-interval", "SMS_AGENT_HEARTBEAT_INTERVAL", "10s", "duration", "time between heartbeats, ±10 % jitter (> 0; keep it well below the server's --heartbeat-timeout)"},
	{"report-interval", "SMS_AGENT_REPORT_INTERVAL", "5s", "duration", "time between resource reports, ±10 % jitter (> 0)"},
	{"disk-path", "SMS_AGENT_DISK_PATH", "/", "path", "report the disk usage of the file system holding this path"},
	{"once", "SMS_AGENT_ONCE", "false", boolArg, "register, report once and exit, leaving the node registered (for scripts)"},
	{"deregister-on-exit", "SMS_AGENT_DEREGISTER_ON_EXIT", "false", boolArg, "on SIGTERM or SIGINT, delete the node instead of marking it inactive"},
	{"metrics-addr", "SMS_AGENT_METRICS_ADDR", "", "host:port", "serve the agent's Prometheus metrics on GET /metrics at this address (default: off)"},
	{"log-level", "SMS_AGENT_LOG_LEVEL", "info", "level", "debug, info, warn or error"},
	{"log-format", "SMS_AGENT_LOG_FORMAT", "text", "format", "text or json"},
}

// boolArg is the placeholder of a boolean option: its flag may be given
// alone (--once) or with a value (--once=false).
const boolArg = "[=true|false]"

// boolFlag is a boolean flag kept as the string given, so that it is
// validated like the environment variable it falls back to.
type boolFlag string

func (b *boolFlag) String() string     { return string(*b) }
func (b *boolFlag) Set(s string) error { *b = boolFlag(s); return nil }
func (b *boolFlag) IsBoolFlag() bool   { return true }

// labelsFlag collects repeated --label flags.
type labelsFlag []string

func (l *labelsFlag) String() string     { return strings.Join(*l, ",") }
func (l *labelsFlag) Set(s string) error { *l = append(*l, s); return nil }

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
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// errHelp and errVersion mean --help or --version was asked for and
// answered.
var (
	errHelp    = errors.New("help requested")
	errVersion = errors.New("version requested")
)

func lookup(name string) option {
	for _, o := range options {
		if o.name == name {
			return o
		}
	}
	panic("unknown option " + name)
}

// bad returns the one-line error for option name:
// `--name (ENV): <problem>; want <want>`.
func bad(name, problem, want string) error {
	o := lookup(name)
	return &usageError{fmt.Sprintf("--%s (%s): %s; want %s", o.name, o.env, oneLine(problem), want)}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// parseConfig parses the command line and environment: a flag given wins
// over its environment variable, which wins over the default. It returns
// errHelp or errVersion after printing to stdout, and a *usageError for
// anything wrong.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	fs := flag.NewFlagSet("sms-agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := map[string]*string{}
	var labels labelsFlag
	for _, o := range options {
		p := new(string)
		switch {
		case o.name == "label":
			fs.Var(&labels, o.name, o.usage)
		case o.arg == boolArg:
			*p = o.def
			fs.Var((*boolFlag)(p), o.name, o.usage)
		default:
			fs.StringVar(p, o.name, o.def, o.usage)
		}
		flags[o.name] = p
	}
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return config{}, errHelp
		}
		return config{}, &usageError{err.Error() + "; see sms-agent --help"}
	}
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("sms-agent"))
		return config{}, errVersion
	}
	if fs.NArg() > 0 {
		return config{}, &usageError{fmt.Sprintf("unexpected argument %q; sms-agent takes only flags, see sms-agent --help", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	get := func(name string) string {
		o := lookup(name)
		switch {
		case set[name]:
			return *flags[name]
		case getenv(o.env) != "":
			return getenv(o.env)
		}
		return o.def
	}
	if !set["label"] && getenv(lookup("label").env) != "" {
		for l := range strings.SplitSeq(getenv(lookup("label").env), ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
	}
	return resolve(get, set, labels)
}

func resolve(get func(string) string, set map[string]bool, labels []string) (config, error) {
	var c config
	var err error
	c.addr = get("addr")

	var opts []client.Option
	if set["token"] && set["token-file"] {
		return c, bad("token-file", "set together with --token", "one of --token and --token-file")
	}
	token := get("token")
	if file := get("token-file"); file != "" && !set["token"] {
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
	if files.InsecureSkipVerify, err = parseBool(get, "insecure-skip-verify"); err != nil {
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
	timeout, err := positiveDuration(get, "timeout", "a Go duration > 0 such as 10s")
	if err != nil {
		return c, err
	}
	opts = append(opts, client.WithTimeout(timeout))
	// Dial checks the address; its error says what it wants.
	if _, err := client.Dial(c.addr, opts...); err != nil {
		o := lookup("addr")
		return c, &usageError{fmt.Sprintf("--%s (%s): %s", o.name, o.env, oneLine(err.Error()))}
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
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return c, bad("label", fmt.Sprintf("%q is not key=value", l), "key=value such as zone=a")
		}
		c.labels[k] = v
	}

	if c.heartbeatInterval, err = positiveDuration(get, "heartbeat-interval", "a Go duration > 0 such as 10s"); err != nil {
		return c, err
	}
	if c.reportInterval, err = positiveDuration(get, "report-interval", "a Go duration > 0 such as 5s"); err != nil {
		return c, err
	}
	if c.diskPath = get("disk-path"); c.diskPath == "" {
		return c, bad("disk-path", "empty", "a path such as /")
	}
	if c.once, err = parseBool(get, "once"); err != nil {
		return c, err
	}
	if c.deregisterOnExit, err = parseBool(get, "deregister-on-exit"); err != nil {
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

func parseBool(get func(string) string, name string) (bool, error) {
	b, err := strconv.ParseBool(get(name))
	if err != nil {
		return false, bad(name, fmt.Sprintf("%q is not a boolean", get(name)), "true or false")
	}
	return b, nil
}

func positiveDuration(get func(string) string, name, want string) (time.Duration, error) {
	raw := get(name)
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		return 0, bad(name, fmt.Sprintf("%q is not a duration", raw), want)
	case d <= 0:
		return 0, bad(name, fmt.Sprintf("%q is not > 0", raw), want)
	}
	return d, nil
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
	fmt.Fprintf(w, "Usage: sms-agent [flags]\n\n")
	fmt.Fprintf(w, "sms-agent registers this machine as a node with an SMS server, heartbeats,\n")
	fmt.Fprintf(w, "and reports its CPU, memory, disk, network and load. On SIGTERM or SIGINT it\n")
	fmt.Fprintf(w, "marks the node inactive (or deletes it, with --deregister-on-exit) and exits.\n")
	fmt.Fprintf(w, "Each flag falls back to its environment variable (when set and not empty),\n")
	fmt.Fprintf(w, "then to its default.\n\n")
	for _, o := range options {
		def := o.def
		if def == "" {
			def = "none"
		}
		sep := " "
		if o.arg == boolArg {
			sep = ""
		}
		fmt.Fprintf(w, "  --%s%s%s\n", o.name, sep, o.arg)
		fmt.Fprintf(w, "\t%s\n\tenv %s, default %s\n", o.usage, o.env, def)
	}
	fmt.Fprintf(w, "  --version\n\tprint the version and exit\n")
	fmt.Fprintf(w, "\nExit status: 0 after a clean stop; 1 when the agent could not run (bad token,\n")
	fmt.Fprintf(w, "a node the server rejects, --once failing); 2 for a bad setting.\n")
}
