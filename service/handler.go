// Package service exposes the node and resource registries over the network:
// Connect handlers for sms.NodeService (Connect, gRPC and gRPC-web on one
// handler), gRPC health, gRPC server reflection and an HTTP readiness probe,
// all on one http.Handler built by NewHandler.
//
// Every request passes the request policy (package policy) first:
// authentication from the headers, body size and time limits, CORS, frame
// checks, and the counting of rejected calls.
//
// Handlers are thin: they convert the request to domain types, call the
// registry, and convert the result back. Every error leaves through one
// function (connectError) that maps registry and store errors to Connect
// codes; unknown errors are logged and answered with a bare internal error,
// so no database text ever reaches a client.
package service

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service/apidocs"
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/policy"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/service/web"
	"github.com/spear-next/sms/sqlkv"
)

// DefaultMaxRequestBytes is the request size limit used when
// Config.MaxRequestBytes is not positive (4 MiB).
const DefaultMaxRequestBytes = policy.DefaultMaxRequestBytes

// CompressMinBytes is the smallest response that is compressed (when the
// client accepts it): below it gzip costs more CPU than it saves bytes.
const CompressMinBytes = 1024

// pingTimeout bounds one readiness check of the store, so a hung database
// makes /healthz and gRPC health answer "not serving" instead of hanging.
const pingTimeout = 3 * time.Second

// Config holds what NewHandler serves. Nodes, Resources and Store are
// required; the rest is optional.
type Config struct {
	// Nodes and Resources are the registries behind sms.NodeService, from
	// one registry.View (whose loading NewHandler starts).
	Nodes     *registry.NodeRegistry
	Resources *registry.NodeResourceRegistry

	// Store is the registries' store; its Ping decides readiness (gRPC
	// health and /healthz).
	Store sqlkv.Store

	// Logger receives errors the handlers could not classify, panics, and
	// readiness failures. Nil discards logs.
	Logger *slog.Logger

	// MaxRequestBytes is the largest request message accepted, in bytes,
	// as sent and as inflated; larger requests fail with
	// resource_exhausted (413 on REST). Zero or less means
	// DefaultMaxRequestBytes.
	MaxRequestBytes int64

	// MaxWatchers bounds the WatchNodes streams open at once; beyond it a
	// new one fails with resource_exhausted. Zero or less means
	// DefaultMaxWatchers.
	MaxWatchers int

	// Watchers, if not nil, is the limit that every stack built with this
	// Config (NewHandler, NewGRPCServer) counts its WatchNodes streams
	// against, so that the two together stay within it; nil gives each
	// stack a limit of MaxWatchers of its own.
	Watchers *WatcherLimit

	// BodyReadTimeout, if positive, is how long a request body may take to
	// arrive (see policy.Config).
	BodyReadTimeout time.Duration

	// CORSAllowOrigins lists the origins browsers may call from; empty
	// refuses cross-origin calls (see policy.Config).
	CORSAllowOrigins []string

	// Policy, if not nil, is the request policy to serve behind, shared
	// with another server stack; it then replaces AuthToken,
	// MaxRequestBytes and CORSAllowOrigins.
	Policy *policy.Policy

	// StopWatches, if not nil, ends every WatchNodes stream with
	// unavailable ("server shutting down; watch again") when it is closed.
	// Close it when shutdown begins (http.Server.RegisterOnShutdown), since
	// watch streams never end on their own and would hold up a graceful
	// shutdown.
	StopWatches <-chan struct{}

	// AuthToken, if not empty, is the bearer token every sms.* RPC
	// and REST call must carry (Authorization: Bearer <token>), checked
	// before any byte of the body is read; others fail with
	// unauthenticated (401 on REST). Health, reflection and /healthz stay
	// open. The token is never logged.
	AuthToken string

	// Metrics, if not nil, counts and times every sms.NodeService RPC (its
	// Interceptor, and the policy for calls rejected before a handler ran)
	// and is served on GET /metrics, which, like /healthz, needs no token.
	Metrics *metrics.Metrics

	// Placer serves sms.PlacementService and the placement routes of the
	// SPEAR gateway. Nil means a Placer over Nodes, Resources and Store
	// with the default heartbeat timeout.
	Placer *placement.Placer
}

// NewHandler returns an http.Handler serving, on their standard paths:
//
//   - sms.NodeService over Connect, gRPC and gRPC-web (/sms.NodeService/...);
//   - gRPC health, grpc.health.v1.Health: SERVING for "",
//     "sms.NodeService" and "sms.PlacementService" while the registry view
//     is loaded and Store.Ping succeeds, NOT_SERVING otherwise, not_found
//     for any other service name;
//   - gRPC server reflection, v1 and v1alpha, listing sms.NodeService,
//     sms.PlacementService and grpc.health.v1.Health;
//   - GET /healthz: 200 "ok" while the view is loaded and Store.Ping
//     succeeds, 503 otherwise;
//   - sms.PlacementService over the same three protocols, with the same
//     policy and interceptors (token, metrics);
//   - SPEAR's HTTP gateway: its routes under /api/v1/ with its JSON shapes
//     (gateway.go), GET /health, GET /api/openapi.json and Swagger UI at
//     /swagger-ui/;
//   - the web dashboard (package web) at GET / and GET /ui/.
//
// gRPC needs HTTP/2: serve the handler with HTTP/2 enabled (TLS, or
// unencrypted HTTP/2 via http.Server.Protocols). NewHandler panics if Nodes,
// Resources or Store is nil, which is a programming error.
func NewHandler(cfg Config) http.Handler {
	if cfg.Nodes == nil || cfg.Resources == nil || cfg.Store == nil {
		panic("service.NewHandler: Config.Nodes, Config.Resources and Config.Store are required")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	pol := cfg.policy(logger)

	common := append(pol.HandlerOptions(),
		connect.WithRecover(recoverPanic(logger)),
		// Connect compresses every response a client accepts gzip for by
		// default; for the hot path's tiny answers (a heartbeat's is ~30
		// bytes) that was 13 % of the CPU of a heartbeat run, mostly
		// resetting the compressor (BENCHMARKS.md).
		connect.WithCompressMinBytes(CompressMinBytes),
	)
	rpcOpts := common
	if cfg.Metrics != nil {
		// Calls rejected before they reach it (by the policy, or because
		// their request does not decode) are counted by the policy.
		rpcOpts = append(rpcOpts[:len(rpcOpts):len(rpcOpts)],
			connect.WithInterceptors(cfg.Metrics.Interceptor()))
	}
	// Debug-level request log of the calls that reach a handler; the
	// policy logs the ones it rejects (unauthenticated) at debug too.
	rpcOpts = append(rpcOpts[:len(rpcOpts):len(rpcOpts)], connect.WithInterceptors(requestLog{logger}))

	// Innermost: its deadline is the handler's.
	rpcOpts = append(rpcOpts[:len(rpcOpts):len(rpcOpts)], connect.WithInterceptors(callDeadline(logger)))

	cfg.Nodes.View().Start()
	mux := http.NewServeMux()
	svc := NewNodeService(cfg.Nodes, cfg.Resources, logger)
	svc.stopWatches = cfg.StopWatches
	svc.watchers = cfg.watcherLimit()
	rpcPath, rpc := smspbconnect.NewNodeServiceHandler(svc, rpcOpts...)
	mux.Handle(rpcPath, rpc)
	placer := cfg.placer()
	mux.Handle(smspbconnect.NewPlacementServiceHandler(NewPlacementService(placer, logger), rpcOpts...))
	// The policy (pol.Handler below) authenticates the gateway's routes by
	// their headers, before any body byte, like every RPC: the gateway has
	// no token check of its own.
	gw := &gateway{nodes: cfg.Nodes, resources: cfg.Resources, placer: placer, logger: logger,
		maxBytes: pol.MaxRequestBytes(), metrics: cfg.Metrics}
	gw.routes(mux)
	mux.Handle("GET /health", spearHealth(cfg.Store, logger))
	docs := apidocs.Handler()
	mux.Handle("GET "+apidocs.OpenAPIPath, docs)
	mux.Handle("GET "+apidocs.SwaggerPrefix, docs)
	mux.Handle(grpchealth.NewHandler(&storeChecker{store: cfg.Store, view: cfg.Nodes.View(), logger: logger}, common...))
	reflector := grpcreflect.NewStaticReflector(smspbconnect.NodeServiceName, smspbconnect.PlacementServiceName,
		grpchealth.HealthV1ServiceName)
	mux.Handle(grpcreflect.NewHandlerV1(reflector, common...))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector, common...))
	mux.Handle("GET /healthz", healthz(cfg.Store, cfg.Nodes.View(), logger))
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", cfg.Metrics.Handler())
	}
	dashboard := web.Handler()
	mux.Handle("GET /{$}", dashboard)
	mux.Handle("GET "+web.AssetsPrefix, dashboard)
	return pol.Handler(mux)
}

// placer is Config.Placer, or a Placer over the registries with the
// default heartbeat timeout.
func (cfg Config) placer() *placement.Placer {
	if cfg.Placer != nil {
		return cfg.Placer
	}
	return placement.New(cfg.Store, cfg.Nodes, cfg.Resources, placement.Options{})
}

// recoverPanic turns a handler panic into a logged, bare internal error
// instead of a reset stream.
func recoverPanic(logger *slog.Logger) func(context.Context, connect.Spec, http.Header, any) error {
	return func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
		logger.ErrorContext(ctx, "rpc panic", "procedure", spec.Procedure, "panic", p)
		return connect.NewError(connect.CodeInternal, errInternal)
	}
}
