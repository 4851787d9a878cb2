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
		m.ObserveRPC(info.FullMethod, grpcCode(err), time.Since(start))
		return resp, err
	}
}

// StreamServerInterceptor is UnaryServerInterceptor for streaming RPCs,
// which count when they end.
func (m *Metrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.ObserveRPC(info.FullMethod, grpcCode(err), time.Since(start))
		return err
	}
}

// grpcCode is the Connect code of a grpc-go handler's error, whose numbers
// are gRPC's: 0 (ok) for nil.
func grpcCode(err error) connect.Code {
	return connect.Code(status.Code(err))
}
