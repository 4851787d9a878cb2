package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"github.com/sethvargo/go-retry"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// idempotent lists the procedures whose repetition leaves the same state
// and answer as one call, which are retried on unavailable. RegisterNode is
// idempotent only with a uuid (see retryable).
var idempotent = map[string]bool{
	smspbconnect.NodeServiceGetNodeProcedure:             true,
	smspbconnect.NodeServiceListNodesProcedure:           true,
	smspbconnect.NodeServiceGetNodeResourceProcedure:     true,
	smspbconnect.NodeServiceListNodeResourcesProcedure:   true,
	smspbconnect.NodeServiceGetNodeWithResourceProcedure: true,
	smspbconnect.NodeServiceGetClusterStatsProcedure:     true,
	smspbconnect.NodeServiceHeartbeatProcedure:           true,
	smspbconnect.NodeServiceUpdateNodeProcedure:          true,
	smspbconnect.NodeServiceUpdateNodeResourceProcedure:  true,
}

func retryable(req connect.AnyRequest) bool {
	if r, ok := req.Any().(*smspb.RegisterNodeRequest); ok {
		return r.GetNode().GetUuid() != ""
	}
	return idempotent[req.Spec().Procedure]
}

// policy is the Client's interceptor: a default deadline on every unary
// call, and retries of idempotent calls that failed with unavailable.
type policy struct {
	timeout   time.Duration
	attempts  int
	firstWait time.Duration
}

var _ connect.Interceptor = (*policy)(nil)

func (p *policy) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if _, ok := ctx.Deadline(); !ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, p.timeout)
			defer cancel()
		}
		if p.attempts <= 1 || !retryable(req) {
			return next(ctx, req)
		}
		backoff := retry.WithMaxRetries(uint64(p.attempts-1),
			retry.WithFullJitter(retry.WithCappedDuration(maxRetryWait, retry.NewExponential(max(p.firstWait, 1)))))
		var last error
		resp, err := retry.DoValue(ctx, backoff, func(ctx context.Context) (connect.AnyResponse, error) {
			resp, err := next(ctx, req)
			if connect.CodeOf(err) == connect.CodeUnavailable && !errors.Is(err, ErrServerSpeaksTLS) {
				last = err
				return nil, retry.RetryableError(err)
			}
			return resp, err
		})
		var ce *connect.Error
		if err != nil && !errors.As(err, &ce) {
			// The deadline or a cancellation ended a backoff wait: keep
			// the Connect code of what ended it and say what failed last.
			code := connect.CodeDeadlineExceeded
			if errors.Is(err, context.Canceled) {
				code = connect.CodeCanceled
			}
			err = connect.NewError(code, fmt.Errorf("%w while retrying after: %w", err, last))
		}
		return resp, err
	}
}

func (p *policy) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (p *policy) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}
