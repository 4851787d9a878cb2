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
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
)

// tokenCheck decides whether a call may proceed, from its Authorization
// header alone, so both server stacks can run it before reading any of the
// request body: the Connect interceptor (bearerAuth) and grpc-go's tap
// handle (grpcServer).
type tokenCheck struct {
	// want is the SHA-256 of the token: comparing fixed-size digests in
	// constant time hides the token's length as well as its content.
	want   [sha256.Size]byte
	logger *slog.Logger
}

var errUnauthenticated = errors.New("missing or invalid bearer token")

func newTokenCheck(token string, logger *slog.Logger) *tokenCheck {
	return &tokenCheck{want: sha256.Sum256([]byte(token)), logger: logger}
}

// allow reports whether authorization (the Authorization header's value)
// carries the token, and logs a refusal. The presented token is never
// logged.
func (a *tokenCheck) allow(ctx context.Context, procedure, authorization string) bool {
	got, ok := bearerToken(authorization)
	if ok {
		sum := sha256.Sum256([]byte(got))
		if subtle.ConstantTimeCompare(sum[:], a.want[:]) == 1 {
			return true
		}
	}
	a.logger.InfoContext(ctx, "rpc unauthenticated", "procedure", procedure, "token_present", ok)
	return false
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

// public reports whether procedure is open to every caller and left out of
// the RPC metrics: gRPC health and server reflection, on both stacks.
func public(procedure string) bool {
	for _, svc := range publicServices {
		if rest, ok := strings.CutPrefix(procedure, "/"+svc+"/"); ok && rest != "" {
			return true
		}
	}
	return false
}

var publicServices = []string{
	grpchealth.HealthV1ServiceName,
	grpcreflect.ReflectV1ServiceName,
	grpcreflect.ReflectV1AlphaServiceName,
}

// bearerAuth is the Connect interceptor of tokenCheck: it admits a call only
// when its Authorization header carries the configured bearer token.
type bearerAuth struct{ check *tokenCheck }

var _ connect.Interceptor = bearerAuth{}

func (a bearerAuth) verify(ctx context.Context, procedure string, header http.Header) error {
	if a.check.allow(ctx, procedure, header.Get("Authorization")) {
		return nil
	}
	err := connect.NewError(connect.CodeUnauthenticated, errUnauthenticated)
	err.Meta().Set("WWW-Authenticate", `Bearer realm="sms"`)
	return err
}

// WrapUnary checks the token before a unary call.
func (a bearerAuth) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		if err := a.verify(ctx, req.Spec().Procedure, req.Header()); err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient leaves client streams alone: the interceptor guards a
// server.
func (a bearerAuth) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler checks the token before a streaming call, so RPCs
// added later are covered too.
func (a bearerAuth) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if err := a.verify(ctx, conn.Spec().Procedure, conn.RequestHeader()); err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
