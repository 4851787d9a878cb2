package client

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// Defaults of a Client.
const (
	// DefaultTimeout is the deadline of a call whose context has none.
	DefaultTimeout = 10 * time.Second
	// DefaultAttempts is how often an idempotent call is tried, at most,
	// while the server answers unavailable.
	DefaultAttempts = 4
	// DefaultRetryWait is the backoff before the first retry; it doubles
	// for each further one (with full jitter), up to maxRetryWait.
	DefaultRetryWait = 100 * time.Millisecond
)

// maxRetryWait caps one backoff wait between two attempts of a call.
const maxRetryWait = 2 * time.Second

// Protocol is a wire protocol of sms.NodeService.
type Protocol string

// The protocols a Client can speak. All three reach the same handlers.
const (
	ProtocolConnect Protocol = "connect"
	ProtocolGRPC    Protocol = "grpc"
	ProtocolGRPCWeb Protocol = "grpcweb"
)

// ParseProtocol returns the Protocol named s ("connect", "grpc" or
// "grpcweb"), or an error naming the valid ones.
func ParseProtocol(s string) (Protocol, error) {
	switch p := Protocol(s); p {
	case ProtocolConnect, ProtocolGRPC, ProtocolGRPCWeb:
		return p, nil
	}
	return "", fmt.Errorf("protocol %q: want connect, grpc or grpcweb", s)
}

// Option configures a Client.
type Option func(*options)

type options struct {
	token      string
	tls        *tls.Config
	protocol   Protocol
	timeout    time.Duration
	attempts   int
	retryWait  time.Duration
	httpClient *http.Client
}

// WithToken sends token as a bearer token (Authorization: Bearer <token>)
// on every call, for a server started with --auth-token-file.
func WithToken(token string) Option { return func(o *options) { o.token = token } }

// WithTLS sets the TLS configuration (root CAs, client certificate for
// mutual TLS); see LoadTLS. It implies https for an address without a
// scheme. Without it, an https address is verified with the system's roots.
func WithTLS(c *tls.Config) Option { return func(o *options) { o.tls = c } }

// WithProtocol selects the wire protocol; the default is ProtocolConnect.
// gRPC over cleartext uses HTTP/2 with prior knowledge (h2c), which SMS
// serves; Connect and gRPC-web use HTTP/1.1 over cleartext.
func WithProtocol(p Protocol) Option { return func(o *options) { o.protocol = p } }

// WithTimeout sets the deadline of each call whose context has none
// (default DefaultTimeout); it bounds the call's retries too. Streams
// (WatchNodes) get no default deadline.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithRetry sets how often an idempotent call is tried at most while the
// server answers unavailable (attempts 1 disables retries) and the backoff
// before the first retry (default DefaultAttempts and DefaultRetryWait).
func WithRetry(attempts int, firstWait time.Duration) Option {
	return func(o *options) { o.attempts, o.retryWait = attempts, firstWait }
}

// WithHTTPClient makes the Client send its requests through hc instead of
// a transport of its own; WithTLS is then ignored (configure hc's
// transport), and hc must speak HTTP/2 for ProtocolGRPC.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.httpClient = hc } }

// Client calls one SMS server. It is safe for concurrent use; make one per
// server and reuse it, since it keeps connections open.
type Client struct {
	service   smspbconnect.NodeServiceClient
	placement smspbconnect.PlacementServiceClient
	transport *http.Transport // nil with WithHTTPClient
	baseURL   string
}

// Dial returns a Client of the server at addr: a URL (http://host:port,
// https://host:port) or host:port, which means https with WithTLS and http
// otherwise. It does no I/O; connections are made by the calls. It fails
// only for a malformed address or option.
func Dial(addr string, opts ...Option) (*Client, error) {
	o := options{protocol: ProtocolConnect, timeout: DefaultTimeout, attempts: DefaultAttempts, retryWait: DefaultRetryWait}
	for _, opt := range opts {
		opt(&o)
	}
	if _, err := ParseProtocol(string(o.protocol)); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("timeout %s: want > 0", o.timeout)
	}
	if o.attempts < 1 || o.retryWait < 0 {
		return nil, fmt.Errorf("retry: %d attempts, first wait %s: want attempts >= 1 and a wait >= 0", o.attempts, o.retryWait)
	}
	baseURL, useTLS, err := parseAddr(addr, o.tls != nil)
	if err != nil {
		return nil, err
	}

	c := &Client{baseURL: baseURL}
	hc := o.httpClient
	if hc == nil {
		c.transport = newTransport(o.protocol, useTLS, o.tls)
		hc = &http.Client{Transport: withHints(c.transport, useTLS)}
	}
	if o.token != "" {
		next := hc.Transport
		if next == nil {
			next = http.DefaultTransport
		}
		copied := *hc
		copied.Transport = bearer{token: o.token, next: next}
		hc = &copied
	}
	var connectOpts []connect.ClientOption
	switch o.protocol {
	case ProtocolGRPC:
		connectOpts = append(connectOpts, connect.WithGRPC())
	case ProtocolGRPCWeb:
		connectOpts = append(connectOpts, connect.WithGRPCWeb())
	}
	pol := &policy{timeout: o.timeout, attempts: o.attempts, firstWait: o.retryWait}
	connectOpts = append(connectOpts, connect.WithInterceptors(pol))
	c.service = smspbconnect.NewNodeServiceClient(hc, baseURL, connectOpts...)
	c.placement = smspbconnect.NewPlacementServiceClient(hc, baseURL, connectOpts...)
	return c, nil
}

// parseAddr turns addr into a base URL without a trailing slash.
func parseAddr(addr string, wantTLS bool) (url string, useTLS bool, err error) {
	switch {
	case addr == "":
		return "", false, fmt.Errorf("address is empty; want http://host:port, https://host:port or host:port")
	case strings.HasPrefix(addr, "https://"):
		useTLS = true
	case strings.HasPrefix(addr, "http://"):
		if wantTLS {
			return "", false, fmt.Errorf("address %s is http:// but TLS is configured; use https://", addr)
		}
	case strings.Contains(addr, "://"):
		return "", false, fmt.Errorf("address %q: want http://host:port, https://host:port or host:port", addr)
	case wantTLS:
		addr, useTLS = "https://"+addr, true
	default:
		addr = "http://" + addr
	}
	return strings.TrimSuffix(addr, "/"), useTLS, nil
}

// newTransport returns an HTTP transport speaking what protocol needs:
// HTTP/2 (and HTTP/1.1) over TLS; over cleartext, prior-knowledge HTTP/2
// for gRPC and HTTP/1.1 for Connect and gRPC-web.
func newTransport(p Protocol, useTLS bool, tc *tls.Config) *http.Transport {
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		// Agents and tools keep calling one server: keep enough idle
		// HTTP/1.1 connections for concurrent callers to reuse them.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	protocols := new(http.Protocols)
	switch {
	case useTLS:
		protocols.SetHTTP1(true)
		protocols.SetHTTP2(true)
		if tc != nil {
			t.TLSClientConfig = tc.Clone()
		}
	case p == ProtocolGRPC:
		protocols.SetUnencryptedHTTP2(true)
	default:
		protocols.SetHTTP1(true)
	}
	t.Protocols = protocols
	return t
}

// NodeService returns the generated client of sms.NodeService, with the
// Client's token, deadline and retry policy, for calls the typed methods
// do not cover (WatchNodes, one page of ListNodes).
func (c *Client) NodeService() smspbconnect.NodeServiceClient { return c.service }

// PlacementService returns the generated client of sms.PlacementService,
// with the Client's token and deadline; its calls are not retried.
func (c *Client) PlacementService() smspbconnect.PlacementServiceClient { return c.placement }

// BaseURL returns the server's URL, as the calls use it.
func (c *Client) BaseURL() string { return c.baseURL }

// Close closes the Client's idle connections. Calls still running finish;
// the Client stays usable (a later call opens a new connection).
func (c *Client) Close() error {
	if c.transport != nil {
		c.transport.CloseIdleConnections()
	}
	return nil
}

// bearer adds the Authorization header to every request, streams
// included, before any body byte is sent.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}
