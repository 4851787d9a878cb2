// Package policy is SMS's one request policy, in front of every surface
// (Connect, gRPC, gRPC-web, REST): authentication from the headers before
// any body byte is read, the request size limit on the body as sent and on
// what it inflates to, CORS, well-formed gRPC frames, and the counting of
// calls it rejects.
//
// It is written once: Handler wraps the http.Handler of connect-go's stack,
// and Authenticate is the same token check as a plain function, for stacks
// that are not net/http handlers (grpc-go's tap.ServerInHandle).
package policy

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/service/metrics"
)

// DefaultMaxRequestBytes is the request size limit used when
// Config.MaxRequestBytes is not positive (4 MiB).
const DefaultMaxRequestBytes = 4 << 20

// envelopePrefix is the size of the header of one enveloped message (gRPC,
// gRPC-web, Connect streaming): a flag byte and a 4-byte length.
const envelopePrefix = 5

// RESTPrefix is where the REST routes live; their errors are JSON bodies
// with an HTTP status, not Connect or gRPC errors.
const RESTPrefix = "/api/v1/"

// Config is what a Policy enforces. The zero value admits every caller with
// the default size limit and no cross-origin access.
type Config struct {
	// AuthToken, if not empty, is the bearer token every protected call
	// must carry (Authorization: Bearer <token>): sms.* services and the
	// REST routes. Health, reflection, /healthz, /metrics and the
	// dashboard's files stay open.
	AuthToken string

	// MaxRequestBytes bounds a request message, as sent and as inflated.
	// Zero or less means DefaultMaxRequestBytes.
	MaxRequestBytes int64

	// CORSAllowOrigins lists the origins browsers may call from ("*" for
	// any). Empty disables cross-origin access: preflights are refused
	// with 403.
	CORSAllowOrigins []string

	// BodyReadTimeout, if positive, is how long a request body may take to
	// arrive, from the end of its headers to its end: a client trickling
	// it fails (deadline_exceeded, 408 on REST) and its connection is
	// closed. It ends with the body, so it does not limit a stream's life.
	BodyReadTimeout time.Duration

	// Metrics, if not nil, counts rejected calls and failed
	// authentications.
	Metrics *metrics.Metrics

	// Logger receives unauthenticated calls at debug level. Nil discards.
	Logger *slog.Logger
}

// Policy enforces a Config. Build it with New; it is safe for concurrent
// use.
type Policy struct {
	// want is the SHA-256 of the token: comparing fixed-size digests in
	// constant time hides the token's length as well as its content.
	want     [sha256.Size]byte
	auth     bool
	maxBytes int64
	timeout  time.Duration
	cors     *corsPolicy
	metrics  *metrics.Metrics
	logger   *slog.Logger
	errors   *connect.ErrorWriter
}

// New returns the Policy of cfg.
func New(cfg Config) *Policy {
	p := &Policy{
		auth:     cfg.AuthToken != "",
		want:     sha256.Sum256([]byte(cfg.AuthToken)),
		maxBytes: cfg.MaxRequestBytes,
		timeout:  cfg.BodyReadTimeout,
		metrics:  cfg.Metrics,
		logger:   cfg.Logger,
		errors:   connect.NewErrorWriter(),
	}
	if p.maxBytes <= 0 {
		p.maxBytes = DefaultMaxRequestBytes
	}
	p.maxBytes = min(p.maxBytes, math.MaxInt32) // one gRPC message at most
	if p.logger == nil {
		p.logger = slog.New(slog.DiscardHandler)
	}
	p.cors = newCORS(cfg.CORSAllowOrigins)
	return p
}

// MaxRequestBytes is the limit in force, in bytes.
func (p *Policy) MaxRequestBytes() int64 { return p.maxBytes }

// ErrUnauthenticated is the error of a call without the right token.
var ErrUnauthenticated = errors.New("missing or invalid bearer token")

// Authenticate checks authorization, the value of a call's Authorization
// header, against the token: nil when it carries it (or no token is
// configured), else a connect error with code unauthenticated wrapping
// ErrUnauthenticated. A failure is logged at debug level (a flood of them
// must not fill the log) and counted in sms_auth_failures_total; the
// presented token is never logged.
func (p *Policy) Authenticate(authorization string) error {
	if !p.auth {
		return nil
	}
	got, ok := bearerToken(authorization)
	if ok {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], p.want[:]) == 1 {
			return nil
		}
	}
	if p.metrics != nil {
		p.metrics.AuthFailed()
	}
	return connect.NewError(connect.CodeUnauthenticated, ErrUnauthenticated)
}

// bearerToken extracts the token of an "Authorization: Bearer <token>" value;
// the scheme is case-insensitive (RFC 9110, section 11.1).
func bearerToken(v string) (string, bool) {
	scheme, token, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// Handler returns next behind the policy. In order, before next reads a
// byte of the body: CORS (preflights answered here), authentication of
// protected calls, then the body is bounded as sent (MaxRequestBytes plus
// one envelope prefix; beyond it the read fails with resource_exhausted or
// 413 and the connection is closed), REST bodies are inflated here up to
// the limit, and enveloped bodies are checked frame by frame (a truncated
// or malformed frame is invalid_argument). Rejections are answered in the
// caller's protocol and counted by Metrics.
func (p *Policy) Handler(next http.Handler) http.Handler {
	protected := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		kind := classify(r)
		if err := p.Authenticate(r.Header.Get("Authorization")); err != nil {
			p.reject(w, r, kind, err, start)
			return
		}
		if kind == rest {
			if err := p.readREST(r); err != nil {
				p.reject(w, r, kind, err, start)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, p.maxBytes+envelopePrefix)
		if enveloped(r) {
			r.Body = &frameReader{body: r.Body, compressed: namesEncoding(r)}
		}
		next.ServeHTTP(w, r)
	})
	// Only protected calls count in sms_rpc_requests_total: not scrapes,
	// probes and the dashboard's files.
	var counted http.Handler = protected
	if p.metrics != nil {
		counted = p.metrics.CountRejected(protected, procedureOf)
	}
	return p.cors.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A reflection stream carries many messages, as slowly as its
		// client likes; connect-go bounds each. Every other call has one
		// request message, if any.
		oneMessage := !strings.HasPrefix(r.URL.Path, "/grpc.reflection.")
		if oneMessage && p.timeout > 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = newTimedBody(w, r, p.timeout)
		}
		if classify(r) != open {
			counted.ServeHTTP(w, r)
			return
		}
		if oneMessage {
			r.Body = http.MaxBytesReader(w, r.Body, p.maxBytes+envelopePrefix)
		}
		if enveloped(r) {
			r.Body = &frameReader{body: r.Body, compressed: namesEncoding(r)}
		}
		next.ServeHTTP(w, r)
	}))
}

// reject answers a call the policy refused: REST with an HTTP status and a
// JSON body, RPCs in their own protocol.
//
// It logs the call at debug level as the service's request log does (msg
// "rpc": procedure, protocol, code, duration, peer), never a header or the
// body.
func (p *Policy) reject(w http.ResponseWriter, r *http.Request, kind callKind, err error, start time.Time) {
	code := connect.CodeOf(err)
	metrics.Rejected(r.Context(), code)
	p.logger.LogAttrs(r.Context(), slog.LevelDebug, "rpc",
		slog.String("procedure", procedureOf(r)),
		slog.String("protocol", protocolOf(r, kind)),
		slog.String("code", code.String()),
		slog.Duration("duration", time.Since(start)),
		slog.String("peer", r.RemoteAddr),
	)
	if code == connect.CodeUnauthenticated && !isGRPC(r) {
		// Not on gRPC: there it would be a trailer, which HTTP/2 forbids
		// for this header (net/http logs "ignoring invalid trailer").
		w.Header().Set("WWW-Authenticate", `Bearer realm="sms"`)
	}
	if kind == rest {
		writeRESTError(w, r, restStatus(code), err)
		return
	}
	p.errors.Write(w, r, err)
}

// callKind says what the policy does with a request.
type callKind int

const (
	open callKind = iota // no token: health, reflection, metrics, dashboard
	rpc                  // an sms.* RPC over Connect, gRPC or gRPC-web
	rest                 // a REST route
)

// classify decides the policy of r by its path: every sms.* service and the
// REST routes are protected.
func classify(r *http.Request) callKind {
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/sms."):
		return rpc
	case strings.HasPrefix(p, RESTPrefix):
		return rest
	default:
		return open
	}
}

// procedureOf names r's call for logs and metrics: the RPC's path, or
// "rest" for every REST route (their paths carry uuids).
func procedureOf(r *http.Request) string {
	if classify(r) == rest {
		return "rest"
	}
	return r.URL.Path
}

// protocolOf names r's protocol as connect.Peer.Protocol does, or "rest".
func protocolOf(r *http.Request, kind callKind) string {
	ct := contentType(r)
	switch {
	case kind == rest:
		return "rest"
	case strings.HasPrefix(ct, "application/grpc-web"):
		return connect.ProtocolGRPCWeb
	case strings.HasPrefix(ct, "application/grpc"):
		return connect.ProtocolGRPC
	default:
		return connect.ProtocolConnect
	}
}

// isGRPC reports whether r speaks gRPC over HTTP/2 (not gRPC-web).
func isGRPC(r *http.Request) bool {
	ct := contentType(r)
	return strings.HasPrefix(ct, "application/grpc") && !strings.HasPrefix(ct, "application/grpc-web")
}

// enveloped reports whether r's body is a stream of enveloped messages
// (gRPC, gRPC-web, Connect streaming) rather than one bare message.
func enveloped(r *http.Request) bool {
	ct := contentType(r)
	return strings.HasPrefix(ct, "application/grpc") || strings.HasPrefix(ct, "application/connect+")
}

// contentType is r's media type in lower case, as connect-go compares it
// (media types are case-insensitive, RFC 9110 section 8.3.1).
func contentType(r *http.Request) string {
	return strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Type")))
}

// errTooLarge is the error of a body over the limit.
func errTooLarge(limit int64) error {
	return connect.NewError(connect.CodeResourceExhausted,
		fmt.Errorf("request body is larger than the %d byte limit", limit))
}
