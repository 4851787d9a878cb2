package service

import (
	"context"
	"errors"
	"log/slog"

	"connectrpc.com/connect"
	"google.golang.org/grpc"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// Messages of the errors whose underlying text must not reach clients (it
// may hold SQL, host names or file paths); the full error is logged instead.
var (
	errInternal    = errors.New("internal error")
	errUnavailable = errors.New("store unavailable, retry later")
	errConflict    = errors.New("concurrent update, retry")
	errTooLarge    = errors.New("request exceeds the store's size limit")
	errFull        = errors.New("storage full: the database's disk is full; writes fail until space is freed, reads still work")

	errWatchLagged      = errors.New("watcher fell behind; watch again (a fresh snapshot), or set resync_on_lag to be resynced in the stream")
	errWatchUnsupported = errors.New("this server's store cannot watch")
)

// connectError maps an error from a registry call to the Connect error a
// client sees. It is the only place that decides codes:
//
//	*connect.Error (made by a handler)           unchanged
//	registry.ErrInvalid, *registry.ValidationError invalid_argument, with the field and reason
//	registry.ErrNotFound                         not_found
//	registry.ErrWatchLagged                      aborted, "watcher fell behind; watch again ..." (naming resync_on_lag)
//	registry.ErrWatchUnsupported                 unimplemented
//	context.Canceled                             canceled
//	context.DeadlineExceeded                     deadline_exceeded
//	sqlkv.ErrKeyTooLarge, sqlkv.ErrValueTooLarge resource_exhausted
//	sqlkv.ErrStorageFull                         resource_exhausted, "storage full: ..."
//	sqlkv.ErrUnavailable, sqlkv.ErrClosed        unavailable
//	sqlkv.ErrConflict (never from the registries) aborted
//	anything else                                internal, "internal error"
//
// Only registry errors keep their text; for store and unknown errors the
// client gets a fixed message and the error itself is logged.
func connectError(ctx context.Context, logger *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var (
		ce *connect.Error
		ve *registry.ValidationError
	)
	switch {
	case errors.As(err, &ce):
		return ce
	case errors.As(err, &ve):
		return connect.NewError(connect.CodeInvalidArgument, ve)
	case errors.Is(err, registry.ErrInvalid):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, registry.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, err)
	// aborted, not resource_exhausted: the client did nothing wrong and no
	// quota applies; like a transaction conflict, it should simply retry
	// at a higher level, by watching again.
	case errors.Is(err, registry.ErrWatchLagged):
		return connect.NewError(connect.CodeAborted, errWatchLagged)
	case errors.Is(err, registry.ErrWatchUnsupported):
		return connect.NewError(connect.CodeUnimplemented, errWatchUnsupported)
	// Context errors come before store errors: a store may wrap the
	// caller's cancellation in ErrUnavailable, and the caller's deadline is
	// the better explanation.
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, context.Canceled)
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded)
	// A size limit of the store, like gRPC's own message size limit, is
	// resource_exhausted rather than invalid_argument: the same request is
	// fine against a store with a larger limit. With the default request
	// limit (4 MiB) far below sqlkv.MaxValueSize it does not happen.
	case errors.Is(err, sqlkv.ErrKeyTooLarge), errors.Is(err, sqlkv.ErrValueTooLarge):
		logger.WarnContext(ctx, "rpc exceeded a store size limit", procedureAttr(ctx), "err", err)
		return connect.NewError(connect.CodeResourceExhausted, errTooLarge)
	case errors.Is(err, sqlkv.ErrStorageFull):
		logger.ErrorContext(ctx, "rpc failed: storage full", procedureAttr(ctx), "err", err)
		return connect.NewError(connect.CodeResourceExhausted, errFull)
	case errors.Is(err, sqlkv.ErrUnavailable), errors.Is(err, sqlkv.ErrClosed):
		logger.WarnContext(ctx, "rpc failed: store unavailable", procedureAttr(ctx), "err", err)
		return connect.NewError(connect.CodeUnavailable, errUnavailable)
	case errors.Is(err, sqlkv.ErrConflict):
		logger.WarnContext(ctx, "rpc aborted: write conflicts persisted", procedureAttr(ctx), "err", err)
		return connect.NewError(connect.CodeAborted, errConflict)
	}
	logger.ErrorContext(ctx, "rpc failed", procedureAttr(ctx), "err", err)
	return connect.NewError(connect.CodeInternal, errInternal)
}

// procedureAttr names the RPC being served, for logs.
func procedureAttr(ctx context.Context) slog.Attr {
	if info, ok := connect.CallInfoForHandlerContext(ctx); ok {
		return slog.String("procedure", info.Spec().Procedure)
	}
	if method, ok := grpc.Method(ctx); ok {
		return slog.String("procedure", method)
	}
	return slog.String("procedure", "")
}
