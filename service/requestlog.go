package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
)

// requestLog is a Connect interceptor that logs every call at debug level
// when it ends: procedure, protocol, code ("ok" or the Connect code),
// duration and the peer's address. Never a message body or a header, so
// neither tokens nor node data reach the log. It costs one Enabled check
// per call at other levels.
type requestLog struct{ logger *slog.Logger }

var _ connect.Interceptor = requestLog{}

func (l requestLog) log(ctx context.Context, spec connect.Spec, peer connect.Peer, start time.Time, err error) {
	code := connect.Code(0)
	if err != nil {
		code = connect.CodeOf(err)
		if errors.Is(err, context.Canceled) {
			code = connect.CodeCanceled
		}
	}
	logRPC(ctx, l.logger, spec.Procedure, peer.Protocol, code, start, peer.Addr)
}

// logRPC writes the request log line of one call that ended with code (0 =
// ok), for either server stack.
func logRPC(ctx context.Context, logger *slog.Logger, procedure, protocol string, code connect.Code, start time.Time, peer string) {
	label := "ok"
	if code != 0 {
		label = code.String()
	}
	logger.LogAttrs(ctx, slog.LevelDebug, "rpc",
		slog.String("procedure", procedure),
		slog.String("protocol", protocol),
		slog.String("code", label),
		slog.Duration("duration", time.Since(start)),
		slog.String("peer", peer),
	)
}

// WrapUnary logs a unary call.
func (l requestLog) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient || !l.logger.Enabled(ctx, slog.LevelDebug) {
			return next(ctx, req)
		}
		start := time.Now()
		resp, err := next(ctx, req)
		l.log(ctx, req.Spec(), req.Peer(), start, err)
		return resp, err
	}
}

// WrapStreamingClient leaves client streams alone.
func (l requestLog) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler logs a streaming call (WatchNodes) when it ends.
func (l requestLog) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		if !l.logger.Enabled(ctx, slog.LevelDebug) {
			return next(ctx, conn)
		}
		start := time.Now()
		err := next(ctx, conn)
		l.log(ctx, conn.Spec(), conn.Peer(), start, err)
		return err
	}
}
