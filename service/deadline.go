package service

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
)

// DefaultCallTimeout bounds a unary call whose client set no deadline, so
// that a database that stops answering (a silent network) cannot hold a
// call, and its goroutine and connection, forever.
const DefaultCallTimeout = 30 * time.Second

// maxReserve bounds the part of a unary call's remaining time kept back
// from its handler (a tenth of it) to answer the client before the client's
// own deadline passes.
const maxReserve = 250 * time.Millisecond

// callDeadline is the interceptor that makes a call whose database did not
// answer in time fail with unavailable, before the client's deadline: the
// handler runs with a deadline a little earlier than the client's (a tenth
// of the remaining time, at most maxReserve; DefaultCallTimeout without
// one), and when that deadline ends the call while the client's has not,
// the client is told the store is unavailable rather than seeing its own
// deadline expire. A silent network then answers every call with
// unavailable by its deadline. Streams (WatchNodes) are not bounded.
func callDeadline(logger *slog.Logger) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			return withCallDeadline(ctx, logger, func(ctx context.Context) (connect.AnyResponse, error) { return next(ctx, req) })
		}
	}
}

// grpcCallDeadline is callDeadline for grpc-go's stack. It runs inside
// grpcUnaryErrors, which turns its Connect error into a status.
func grpcCallDeadline(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return withCallDeadline(ctx, logger, func(ctx context.Context) (any, error) { return handler(ctx, req) })
	}
}

// withCallDeadline runs a unary handler under the handler's deadline and
// answers unavailable when that deadline, not the client's, ended it.
func withCallDeadline[T any](ctx context.Context, logger *slog.Logger, handle func(context.Context) (T, error)) (T, error) {
	inner, cancel := handlerDeadline(ctx)
	defer cancel()
	resp, err := handle(inner)
	// Not inner.Err(): the driver may see the deadline (through the
	// connection's I/O deadline) an instant before the context reports it.
	// The client's deadline has not passed, so the one that did is the
	// handler's.
	if err != nil && ctx.Err() == nil && connect.CodeOf(err) == connect.CodeDeadlineExceeded {
		logger.WarnContext(ctx, "rpc failed: the store did not answer before the call's deadline", procedureAttr(ctx), "err", err)
		var zero T
		return zero, connect.NewError(connect.CodeUnavailable, errUnavailable)
	}
	return resp, err
}

// handlerDeadline returns ctx with the handler's deadline (see
// callDeadline).
func handlerDeadline(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return context.WithTimeoutCause(ctx, DefaultCallTimeout, errNoAnswer)
	}
	reserve := min(time.Until(d)/10, maxReserve)
	return context.WithDeadlineCause(ctx, d.Add(-reserve), errNoAnswer)
}

var errNoAnswer = errors.New("the store did not answer in time")
