package metrics

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

// UnaryServerInterceptor returns the grpc-go interceptor that counts and
// times unary RPCs in the same metrics, with the same labels, as
// Interceptor: procedure "/sms.NodeService/GetNode", code "not_found".
func (m *Metrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.ObserveRPC(info.FullMethod, asConnect(err), time.Since(start))
		return resp, err
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming RPCs,
// which count when they end.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.ObserveRPC(info.FullMethod, asConnect(err), time.Since(start))
		return err
	}
}

// asConnect is a grpc-go handler's error as a Connect error of the same
// code (the numbers are gRPC's on both stacks), nil for nil.
func asConnect(err error) error {
	if err == nil {
		return nil
	}
	return connect.NewError(connect.Code(status.Code(err)), err)
}
