package service

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed requests, as the Connect stack does
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/anypb"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/policy"
)

// Keepalive of the grpc-go server. Agents keep one connection open and may
// be idle between heartbeats for minutes, so the server never closes an
// idle connection (no MaxConnectionIdle) and lets clients ping as often as
// every GRPCMinPingInterval, with or without a call in flight: grpc-go's
// client pings at most every 10 s, and tonic's and grpc-go's keepalive
// settings are commonly 10-30 s, which grpc-go's default policy (5 minutes)
// would answer with GOAWAY "too_many_pings"; 5 s leaves such clients a
// margin. The server itself pings a connection silent for
// GRPCKeepaliveTime and closes it if no answer comes within
// GRPCKeepaliveTimeout, so a vanished agent does not hold a connection (and
// its watch streams) forever.
const (
	GRPCMinPingInterval  = 5 * time.Second
	GRPCKeepaliveTime    = 2 * time.Minute
	GRPCKeepaliveTimeout = 20 * time.Second
)

// NewGRPCServer returns a grpc-go server with the same services, handlers
// and policy as NewHandler's gRPC: sms.NodeService (the same NodeService
// methods), sms.PlacementService, grpc.health.v1
// (google.golang.org/grpc/health, answering from the store's Ping like the
// Connect stack), server reflection v1 and
// v1alpha, and:
//
//   - the bearer token, checked on the request headers before the stream is
//     created, so no byte of the body is read for a refused call;
//   - MaxRequestBytes as the largest message received, after decompression
//     (resource_exhausted);
//   - panics recovered as a logged, bare internal error;
//   - the same error codes and messages (one table, connectError);
//   - Metrics' RPC counters, under the same names and labels;
//   - keepalive for idle agents (GRPCMinPingInterval and friends).
//
// opts are added to these, for instance grpc.Creds for TLS. Stop the server
// with GracefulStop after closing Config.StopWatches, which also turns its
// health to NOT_SERVING. NewGRPCServer panics if Nodes, Resources or Store is
// nil, which is a programming error.
func NewGRPCServer(cfg Config, opts ...grpc.ServerOption) *grpc.Server {
	if cfg.Nodes == nil || cfg.Resources == nil || cfg.Store == nil {
		panic("service.NewGRPCServer: Config.Nodes, Config.Resources and Config.Store are required")
	}
	logger := cfg.logger()
	srv := grpc.NewServer(append(GRPCServerOptions(cfg), opts...)...)

	svc := NewNodeService(cfg.Nodes, cfg.Resources, logger)
	svc.stopWatches = cfg.StopWatches
	svc.watchers = cfg.watcherLimit()
	smspb.RegisterNodeServiceServer(srv, grpcNodeService{svc})
	// PlacementService's methods are all unary with grpc-go's signatures:
	// it is a smspb.PlacementServiceServer as it is.
	smspb.RegisterPlacementServiceServer(srv, NewPlacementService(cfg.placer(), logger))

	hs := &grpcHealth{Server: health.NewServer(), checker: &storeChecker{store: cfg.Store, view: cfg.Nodes.View(), logger: logger}}
	for _, name := range healthServices {
		// The store was opened and migrated before the server was built.
		hs.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	if cfg.StopWatches != nil {
		go func() {
			<-cfg.StopWatches
			hs.Shutdown() // NOT_SERVING for every service, to Watch streams too
		}()
	}
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(reflected{srv})
	return srv
}

// reflected is the server as reflection sees it: every service but
// reflection itself, the list Connect's static reflector gives.
type reflected struct{ *grpc.Server }

func (r reflected) GetServiceInfo() map[string]grpc.ServiceInfo {
	info := r.Server.GetServiceInfo()
	delete(info, grpcreflect.ReflectV1ServiceName)
	delete(info, grpcreflect.ReflectV1AlphaServiceName)
	return info
}

// grpcServices are the services NewGRPCServer serves behind the token.
var grpcServices = []*grpc.ServiceDesc{&smspb.NodeService_ServiceDesc, &smspb.PlacementService_ServiceDesc}

// GRPCServerOptions returns the policy NewGRPCServer installs, from cfg's
// Logger, MaxRequestBytes, AuthToken and Metrics: interceptors (metrics,
// panic recovery, Connect errors to statuses), the token's tap handle, the
// message size limit and keepalive. It is exported for benchmarks that
// measure the policy around a handler of their own.
func GRPCServerOptions(cfg Config) []grpc.ServerOption {
	logger := cfg.logger()
	pol := cfg.policy(logger)
	unary := []grpc.UnaryServerInterceptor{}
	stream := []grpc.StreamServerInterceptor{}
	if cfg.Metrics != nil {
		unary = append(unary, skipPublicUnary(cfg.Metrics.UnaryServerInterceptor()))
		stream = append(stream, skipPublicStream(cfg.Metrics.StreamServerInterceptor()))
	}
	// The debug-level request log, as the Connect stack's (requestLog).
	unary = append(unary, skipPublicUnary(grpcUnaryLog(logger)), grpcUnaryErrors(logger), grpcCallDeadline(logger))
	stream = append(stream, skipPublicStream(grpcStreamLog(logger)), grpcStreamErrors(logger))
	// Rejected calls count only for procedures that exist, so a client
	// cannot grow the metrics with made-up names.
	known := map[string]bool{}
	for _, sd := range grpcServices {
		for _, m := range sd.Methods {
			known["/"+sd.ServiceName+"/"+m.MethodName] = true
		}
		for _, st := range sd.Streams {
			known["/"+sd.ServiceName+"/"+st.StreamName] = true
		}
	}
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(pol.MaxRequestBytes())),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
		grpc.InTapHandle(grpcAuth(pol, cfg.Metrics, logger, known)),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             GRPCMinPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    GRPCKeepaliveTime,
			Timeout: GRPCKeepaliveTimeout,
		}),
	}
}

// logger is Config.Logger, or one that discards logs.
func (cfg Config) logger() *slog.Logger {
	if cfg.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return cfg.Logger
}

// policy is Config.Policy, or the one its fields describe.
func (cfg Config) policy(logger *slog.Logger) *policy.Policy {
	if cfg.Policy != nil {
		return cfg.Policy
	}
	return policy.New(policy.Config{
		AuthToken:        cfg.AuthToken,
		MaxRequestBytes:  cfg.MaxRequestBytes,
		CORSAllowOrigins: cfg.CORSAllowOrigins,
		BodyReadTimeout:  cfg.BodyReadTimeout,
		Metrics:          cfg.Metrics,
		Logger:           logger,
	})
}

// public reports whether procedure is open to every caller and left out of
// the RPC metrics: gRPC health and server reflection, as on the Connect
// stack.
func public(procedure string) bool {
	for _, svc := range []string{healthpb.Health_ServiceDesc.ServiceName, grpcreflect.ReflectV1ServiceName, grpcreflect.ReflectV1AlphaServiceName} {
		if rest, ok := strings.CutPrefix(procedure, "/"+svc+"/"); ok && rest != "" {
			return true
		}
	}
	return false
}

// grpcNodeService is NodeService as grpc-go's smspb.NodeServiceServer. The
// unary methods have the same signatures on both stacks; only the server
// stream's type differs.
type grpcNodeService struct{ *NodeService }

var _ smspb.NodeServiceServer = grpcNodeService{}

func (s grpcNodeService) WatchNodes(req *smspb.WatchNodesRequest, stream grpc.ServerStreamingServer[smspb.WatchNodesResponse]) error {
	return s.watchNodes(stream.Context(), req, !isJSON(grpcContentType(stream.Context())), stream.Send)
}

// GetNode is NodeService.GetNode with, for a binary protobuf client (on
// grpc-go, every client unless a JSON codec is registered), the node
// encoded straight from the view (wireGetNode): no Node, maps or message
// are built, which at 1M nodes also spares the collector their garbage.
// The Connect stack keeps NodeService.GetNode for every client.
func (s grpcNodeService) GetNode(ctx context.Context, req *smspb.GetNodeRequest) (*smspb.GetNodeResponse, error) {
	if isJSON(grpcContentType(ctx)) {
		return s.NodeService.GetNode(ctx, req)
	}
	n, err := s.nodes.GetRef(ctx, req.GetUuid())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return wireGetNode(n), nil
}

// grpcContentType returns the content type of the call of ctx on grpc-go's
// server ("application/grpc", "application/grpc+proto", ...), "" if none.
func grpcContentType(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "content-type"); len(v) > 0 {
		return v[0]
	}
	return ""
}

// grpcHealth is grpc-go's health server (Watch, List) answering Check from
// the store like the Connect stack; each Check's answer is also what Watch
// streams report.
type grpcHealth struct {
	*health.Server
	checker *storeChecker
}

func (h *grpcHealth) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	ok, err := h.checker.serving(ctx, req.GetService())
	if err != nil {
		return nil, grpcError(err)
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ok {
		st = healthpb.HealthCheckResponse_SERVING
	}
	h.SetServingStatus(req.GetService(), st)
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// grpcAuth is the tap handle of the policy's token check. grpc-go runs it
// on the request headers, before creating the stream, so a refused call's
// body is never read. Refusals are counted and logged like the Connect
// stack's.
func grpcAuth(pol *policy.Policy, m *metrics.Metrics, logger *slog.Logger, known map[string]bool) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if public(info.FullMethodName) {
			return ctx, nil
		}
		var authorization string
		if v := info.Header.Get("authorization"); len(v) > 0 {
			authorization = v[0]
		}
		start := time.Now()
		err := pol.Authenticate(authorization)
		if err == nil {
			return ctx, nil
		}
		procedure := info.FullMethodName
		if !known[procedure] {
			procedure = "unknown"
		}
		if m != nil {
			m.ObserveRPC(procedure, err, time.Since(start))
		}
		if logger.Enabled(ctx, slog.LevelDebug) {
			logRPC(ctx, logger, procedure, "grpc", connect.CodeUnauthenticated, start, peerAddr(ctx))
		}
		return nil, grpcError(err)
	}
}

// grpcError is the grpc-go status of a handler's error, which connectError
// made a *connect.Error: the codes are gRPC's on both stacks, and the
// message and details are kept.
func grpcError(err error) error {
	var ce *connect.Error
	if err == nil || !errors.As(err, &ce) {
		return err
	}
	st := &status.Status{Code: int32(ce.Code()), Message: ce.Message()}
	for _, d := range ce.Details() {
		st.Details = append(st.Details, &anypb.Any{TypeUrl: "type.googleapis.com/" + d.Type(), Value: d.Bytes()})
	}
	return grpcstatus.FromProto(st).Err()
}

// grpcUnaryErrors turns the handlers' Connect errors into grpc-go statuses,
// and a panic into a logged, bare internal error (as connect.WithRecover
// does for the Connect stack).
func grpcUnaryErrors(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, grpcPanic(ctx, logger, info.FullMethod, p)
			}
		}()
		resp, err = handler(ctx, req)
		return resp, grpcError(err)
	}
}

// grpcStreamErrors is grpcUnaryErrors for streaming calls.
func grpcStreamErrors(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = grpcPanic(ss.Context(), logger, info.FullMethod, p)
			}
		}()
		return grpcError(handler(srv, ss))
	}
}

func grpcPanic(ctx context.Context, logger *slog.Logger, procedure string, p any) error {
	logger.ErrorContext(ctx, "rpc panic", "procedure", procedure, "panic", p)
	return grpcstatus.Error(codes.Internal, errInternal.Error())
}

// grpcUnaryLog logs every unary call at debug level when it ends (logRPC).
func grpcUnaryLog(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if !logger.Enabled(ctx, slog.LevelDebug) {
			return handler(ctx, req)
		}
		start := time.Now()
		resp, err := handler(ctx, req)
		logRPC(ctx, logger, info.FullMethod, "grpc", connect.Code(grpcstatus.Code(err)), start, peerAddr(ctx))
		return resp, err
	}
}

// grpcStreamLog is grpcUnaryLog for streaming calls.
func grpcStreamLog(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx := ss.Context()
		if !logger.Enabled(ctx, slog.LevelDebug) {
			return handler(srv, ss)
		}
		start := time.Now()
		err := handler(srv, ss)
		logRPC(ctx, logger, info.FullMethod, "grpc", connect.Code(grpcstatus.Code(err)), start, peerAddr(ctx))
		return err
	}
}

// peerAddr is the client's address of a grpc-go call, "" if unknown.
func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

// skipPublicUnary runs next for every procedure but health and reflection,
// which the Connect stack does not count either.
func skipPublicUnary(next grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if public(info.FullMethod) {
			return handler(ctx, req)
		}
		return next(ctx, req, info, handler)
	}
}

// skipPublicStream is skipPublicUnary for streaming calls.
func skipPublicStream(next grpc.StreamServerInterceptor) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if public(info.FullMethod) {
			return handler(srv, ss)
		}
		return next(srv, ss, info, handler)
	}
}
