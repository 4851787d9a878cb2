package service

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// bearerAuth is a Connect interceptor that admits a call only when its
// Authorization header carries the configured bearer token.
type bearerAuth struct {
	// want is the SHA-256 of the token: comparing fixed-size digests in
	// constant time hides the token's length as well as its content.
	want   [sha256.Size]byte
	logger *slog.Logger
}

var _ connect.Interceptor = (*bearerAuth)(nil)

var errUnauthenticated = errors.New("missing or invalid bearer token")

func newBearerAuth(token string, logger *slog.Logger) *bearerAuth {
	return &bearerAuth{want: sha256.Sum256([]byte(token)), logger: logger}
}

// check returns nil when header carries the token, else an unauthenticated
// error. The presented token is never logged.
func (a *bearerAuth) check(ctx context.Context, procedure string, header http.Header) error {
	got, ok := bearerToken(header.Get("Authorization"))
	if ok {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], a.want[:]) == 1 {
			return nil
		}
	}
	a.logger.InfoContext(ctx, "rpc unauthenticated", "procedure", procedure, "token_present", ok)
	err := connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	err.Meta().Set("WWW-Authenticate", `Bearer realm="sms"`)
	return err
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

// WrapUnary checks the token before a unary call.
func (a *bearerAuth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := a.check(ctx, req.Spec().Procedure, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient leaves client streams alone: the interceptor guards a
// server.
func (a *bearerAuth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler checks the token before a streaming call, so RPCs
// added later are covered too.
func (a *bearerAuth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.check(ctx, conn.Spec().Procedure, conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
