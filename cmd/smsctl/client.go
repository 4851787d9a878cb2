package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// Defaults and environment variables of the global flags.
const (
	defaultAddr  = "http://127.0.0.1:50051"
	envAddr      = "SMS_ADDR"
	envToken     = "SMS_TOKEN"
	envTokenFile = "SMS_TOKEN_FILE"
)

// globals are the flags every command takes: where the server is and how
// to talk to it.
type globals struct {
	addr, token, tokenFile string
	protocol, output       string
	tlsCA, tlsCert, tlsKey string
	insecureSkipVerify     bool
	timeout                time.Duration
}

func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.orDefault(g.addr, defaultAddr), "server URL, or host:port (env "+envAddr+"; https:// when a TLS flag is set)")
	fs.StringVar(&g.token, "token", g.token, "bearer token for a server started with --auth-token-file (env "+envToken+")")
	fs.StringVar(&g.tokenFile, "token-file", g.tokenFile, "file holding the bearer token (env "+envTokenFile+")")
	fs.StringVar(&g.protocol, "protocol", g.orDefault(g.protocol, "connect"), "wire protocol: connect, grpc or grpcweb")
	fs.StringVar(&g.output, "o", g.orDefault(g.output, "table"), "output: table or json")
	fs.StringVar(&g.tlsCA, "tls-ca", g.tlsCA, "PEM CA certificates to verify the server with (default: the system's)")
	fs.StringVar(&g.tlsCert, "tls-cert", g.tlsCert, "PEM client certificate, for a server with --tls-client-ca")
	fs.StringVar(&g.tlsKey, "tls-key", g.tlsKey, "PEM private key of --tls-cert")
	fs.BoolVar(&g.insecureSkipVerify, "insecure-skip-verify", g.insecureSkipVerify, "do not verify the server's certificate (testing only)")
	if g.timeout == 0 {
		g.timeout = 10 * time.Second
	}
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of each call, retries included (not of nodes watch)")
}

func (g *globals) orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// cli is what a command runs with: the clients and the output settings.
type cli struct {
	conn      *client.Client
	client    smspbconnect.NodeServiceClient
	placement smspbconnect.PlacementServiceClient
	json      bool
	stdout    io.Writer
	stderr    io.Writer
}

func (c *cli) close() { c.conn.Close() }

// client resolves the global flags (set: those given on the command line,
// which beat their environment variables) into a cli, dialing the server
// with the client package: its deadline (--timeout) bounds each call, and
// it retries the calls that can be repeated while the server is
// unavailable.
func (g *globals) client(set map[string]bool, getenv func(string) string, stdout, stderr io.Writer) (*cli, error) {
	if !set["addr"] && getenv(envAddr) != "" {
		g.addr = getenv(envAddr)
	}
	if !set["token"] && !set["token-file"] {
		g.token = getenv(envToken)
		if g.token == "" {
			g.tokenFile = getenv(envTokenFile)
		}
	}
	if set["token"] && set["token-file"] {
		return nil, usagef("--token and --token-file are exclusive")
	}
	if g.tokenFile != "" {
		b, err := os.ReadFile(g.tokenFile)
		if err != nil {
			return nil, usagef("--token-file: %v", err)
		}
		g.token = strings.TrimSpace(string(b))
		if g.token == "" {
			return nil, usagef("--token-file: %s is empty", g.tokenFile)
		}
	}
	if g.output != "table" && g.output != "json" {
		return nil, usagef("-o %q: want table or json", g.output)
	}
	if g.timeout <= 0 {
		return nil, usagef("--timeout %s: want a duration > 0", g.timeout)
	}
	protocol, err := client.ParseProtocol(g.protocol)
	if err != nil {
		return nil, usagef("--protocol %q: want connect, grpc or grpcweb", g.protocol)
	}

	opts := []client.Option{client.WithProtocol(protocol), client.WithTimeout(g.timeout)}
	if g.token != "" {
		opts = append(opts, client.WithToken(g.token))
	}
	files := client.TLSFiles{CA: g.tlsCA, Cert: g.tlsCert, Key: g.tlsKey, InsecureSkipVerify: g.insecureSkipVerify}
	if !files.Empty() {
		tc, err := client.LoadTLS(files)
		if err != nil {
			return nil, usagef("%v", err)
		}
		opts = append(opts, client.WithTLS(tc))
	}
	conn, err := client.Dial(g.addr, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	return &cli{
		conn:      conn,
		client:    conn.NodeService(),
		placement: conn.PlacementService(),
		json:      g.output == "json",
		stdout:    stdout,
		stderr:    stderr,
	}, nil
}
