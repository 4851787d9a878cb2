package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

func TestConnectError(t *testing.T) {
	// secret stands for what a database error may carry: SQL, host names,
	// paths. It must never reach the client.
	const secret = `pq: relation "kv" does not exist at 10.1.2.3`
	wrap := func(sentinel error) error {
		return fmt.Errorf("get node abc: %w: %s", sentinel, secret)
	}
	validation := &registry.ValidationError{Field: "node.port", Reason: "must be between 1 and 65535, got 0"}
	handlerErr := connect.NewError(connect.CodePermissionDenied, errors.New("made by a handler"))

	tests := []struct {
		name    string
		err     error
		code    connect.Code
		message string // the client-visible message
		logged  bool   // whether the error is logged, with its full text
	}{
		{"connect error passes through", handlerErr, connect.CodePermissionDenied, "made by a handler", false},
		{"validation error keeps field and reason", fmt.Errorf("register: %w", validation),
			connect.CodeInvalidArgument, "node.port: must be between 1 and 65535, got 0", false},
		{"bare ErrInvalid", fmt.Errorf("list: %w", registry.ErrInvalid), connect.CodeInvalidArgument, "list: registry: invalid argument", false},
		{"not found", fmt.Errorf("get node x: %w", registry.ErrNotFound), connect.CodeNotFound, "get node x: registry: node not found", false},
		{"watcher fell behind", fmt.Errorf("watch: %w", registry.ErrWatchLagged), connect.CodeAborted, "watcher fell behind; watch again (a fresh snapshot), or set resync_on_lag to be resynced in the stream", false},
		{"store cannot watch", registry.ErrWatchUnsupported, connect.CodeUnimplemented, errWatchUnsupported.Error(), false},
		{"canceled", fmt.Errorf("get: %w", context.Canceled), connect.CodeCanceled, "context canceled", false},
		{"deadline", fmt.Errorf("get: %w", context.DeadlineExceeded), connect.CodeDeadlineExceeded, "context deadline exceeded", false},
		{"canceled inside unavailable", fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, context.Canceled), connect.CodeCanceled, "context canceled", false},
		{"key too large", wrap(sqlkv.ErrKeyTooLarge), connect.CodeResourceExhausted, errTooLarge.Error(), true},
		{"value too large", wrap(sqlkv.ErrValueTooLarge), connect.CodeResourceExhausted, errTooLarge.Error(), true},
		{"unavailable", wrap(sqlkv.ErrUnavailable), connect.CodeUnavailable, errUnavailable.Error(), true},
		{"closed", wrap(sqlkv.ErrClosed), connect.CodeUnavailable, errUnavailable.Error(), true},
		{"conflict retries exhausted", wrap(sqlkv.ErrConflict), connect.CodeAborted, errConflict.Error(), true},
		{"storage full", wrap(sqlkv.ErrStorageFull), connect.CodeResourceExhausted, errFull.Error(), true},
		{"store not found is a bug", wrap(sqlkv.ErrNotFound), connect.CodeInternal, errInternal.Error(), true},
		{"unknown", errors.New(secret), connect.CodeInternal, errInternal.Error(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			err := connectError(context.Background(), logger, tt.err)
			if got, want := connect.CodeOf(err), tt.code; got != want {
				t.Fatalf("code = %v, want %v (err %v)", got, want, err)
			}
			var ce *connect.Error
			if !errors.As(err, &ce) {
				t.Fatalf("connectError returned %T, want *connect.Error", err)
			}
			if got, want := ce.Message(), tt.message; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
			if strings.Contains(ce.Message(), "10.1.2.3") {
				t.Errorf("message %q leaks the store's error text", ce.Message())
			}
			if got, want := logs.Len() > 0, tt.logged; got != want {
				t.Errorf("logged = %v, want %v; logs:\n%s", got, want, logs.String())
			}
			if tt.logged && !strings.Contains(logs.String(), "10.1.2.3") {
				t.Errorf("logs lack the full error text:\n%s", logs.String())
			}
		})
	}

	t.Run("unknown error is logged at error level", func(t *testing.T) {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, nil))
		_ = connectError(context.Background(), logger, errors.New(secret))
		if !strings.Contains(logs.String(), "level=ERROR") {
			t.Errorf("logs = %q, want an ERROR record", logs.String())
		}
	})

	t.Run("nil is nil", func(t *testing.T) {
		if err := connectError(context.Background(), slog.New(slog.DiscardHandler), nil); err != nil {
			t.Fatalf("connectError(nil) = %v, want nil", err)
		}
	})
}

func TestUnixSeconds(t *testing.T) {
	var zero registry.Node
	if got := nodeToProto(zero).GetLastHeartbeat(); got != 0 {
		t.Errorf("zero time = %d, want 0", got)
	}
}
