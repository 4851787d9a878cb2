package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"connectrpc.com/connect"

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
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "deadline of each call (not of nodes watch)")
}

func (g *globals) orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// cli is what a command runs with: the client and the output settings.
type cli struct {
	client    smspbconnect.NodeServiceClient
	placement smspbconnect.PlacementServiceClient
	json      bool
	timeout   time.Duration
	stdout    io.Writer
	stderr    io.Writer
	transport *http.Transport
}

func (c *cli) close() { c.transport.CloseIdleConnections() }

// client resolves the global flags (set: those given on the command line,
// which beat their environment variables) into a cli.
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

	useTLS := g.tlsCA != "" || g.tlsCert != "" || g.insecureSkipVerify
	url := g.addr
	switch {
	case strings.HasPrefix(url, "https://"):
		useTLS = true
	case strings.HasPrefix(url, "http://"):
		if useTLS {
			return nil, usagef("--addr %s is http:// but a TLS flag is set; use https://", url)
		}
	case strings.Contains(url, "://"):
		return nil, usagef("--addr %q: want http://host:port, https://host:port or host:port", url)
	case useTLS:
		url = "https://" + url
	default:
		url = "http://" + url
	}
	url = strings.TrimSuffix(url, "/")

	transport := &http.Transport{Proxy: http.ProxyFromEnvironment}
	protocols := new(http.Protocols)
	var opts []connect.ClientOption
	switch g.protocol {
	case "connect":
		protocols.SetHTTP1(true)
	case "grpc":
		opts = append(opts, connect.WithGRPC())
	case "grpcweb":
		opts = append(opts, connect.WithGRPCWeb())
		protocols.SetHTTP1(true)
	default:
		return nil, usagef("--protocol %q: want connect, grpc or grpcweb", g.protocol)
	}
	if useTLS {
		protocols.SetHTTP2(true)
		tc, err := g.tlsConfig()
		if err != nil {
			return nil, err
		}
		transport.TLSClientConfig = tc
	} else {
		// gRPC needs HTTP/2: over cleartext, that is prior-knowledge h2c,
		// which the server speaks. Connect and gRPC-web use HTTP/1.1 too.
		protocols.SetUnencryptedHTTP2(true)
		if g.protocol != "grpc" {
			protocols = new(http.Protocols)
			protocols.SetHTTP1(true)
		}
	}
	transport.Protocols = protocols

	hints := &hints{next: transport, cleartext: !useTLS}
	if useTLS && len(transport.TLSClientConfig.Certificates) == 0 {
		// Note when the server asks for a certificate we do not have: with
		// TLS 1.3 its refusal arrives after the handshake, as a broken pipe
		// or an alert on some later read.
		transport.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			hints.certRequested.Store(true)
			return &tls.Certificate{}, nil
		}
	}
	var rt http.RoundTripper = hints
	if g.token != "" {
		rt = bearer{token: g.token, next: hints}
	}
	return &cli{
		client:    smspbconnect.NewNodeServiceClient(&http.Client{Transport: rt}, url, opts...),
		placement: smspbconnect.NewPlacementServiceClient(&http.Client{Transport: rt}, url, opts...),
		json:      g.output == "json",
		timeout:   g.timeout,
		stdout:    stdout,
		stderr:    stderr,
		transport: transport,
	}, nil
}

func (g *globals) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: g.insecureSkipVerify}
	if g.tlsCA != "" {
		pem, err := os.ReadFile(g.tlsCA)
		if err != nil {
			return nil, usagef("--tls-ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--tls-ca: %s holds no PEM certificate", g.tlsCA)
		}
		tc.RootCAs = pool
	}
	switch {
	case g.tlsCert != "" && g.tlsKey != "":
		cert, err := tls.LoadX509KeyPair(g.tlsCert, g.tlsKey)
		if err != nil {
			return nil, usagef("--tls-cert/--tls-key: %v", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case g.tlsCert != "" || g.tlsKey != "":
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	return tc, nil
}

// bearer adds the Authorization header to every request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
