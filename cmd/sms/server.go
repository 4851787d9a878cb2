package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/postgres"
)

const (
	// idleTimeout closes keep-alive connections that carry no requests.
	idleTimeout = 2 * time.Minute
	// shutdownTimeout is how long in-flight calls get to finish after
	// SIGINT/SIGTERM before their connections are closed; short enough that
	// the process exits within a few seconds.
	shutdownTimeout = 3 * time.Second
	// minSweepTimeout is the least time one liveness sweep may take, however
	// short the cleanup interval.
	minSweepTimeout = 10 * time.Second
)

// listeners are the sockets the server serves: one (the one-port layout,
// everything on it) or grpc and http (SPEAR's layout). run opens them from
// the configuration; tests pass their own, bound to 127.0.0.1:0.
type listeners struct {
	one, grpc, http net.Listener
}

// listen opens the listeners of cfg's layout.
func listen(ctx context.Context, cfg config) (ls listeners, err error) {
	if cfg.addr != "" {
		ls.one, err = listenOn(ctx, cfg.addr)
		return ls, err
	}
	if ls.grpc, err = listenOn(ctx, cfg.grpcAddr); err != nil {
		return ls, err
	}
	if ls.http, err = listenOn(ctx, cfg.httpAddr); err != nil {
		ls.grpc.Close()
		return ls, err
	}
	return ls, nil
}

// listenOn listens on addr: host:port, or fd:N for a listening socket
// inherited as file descriptor N (from a supervisor that binds the port, or
// a test that keeps it across restarts).
func listenOn(ctx context.Context, addr string) (net.Listener, error) {
	if n, ok := strings.CutPrefix(addr, "fd:"); ok {
		fd, err := strconv.Atoi(n)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		f := os.NewFile(uintptr(fd), addr)
		defer f.Close() // FileListener holds its own copy
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return ln, nil
	}
	var lc net.ListenConfig
	return lc.Listen(ctx, "tcp", addr)
}

// closeAll closes the listeners that are set, for a server that did not
// start.
func (ls listeners) closeAll() {
	for _, ln := range []net.Listener{ls.one, ls.grpc, ls.http} {
		if ln != nil {
			ln.Close()
		}
	}
}

// serve runs the server described by cfg on ls until ctx is done, then
// shuts down gracefully: stop accepting, end watch streams, let in-flight
// calls finish on both servers (up to shutdownTimeout), stop the sweeper,
// close the store. It returns nil after a clean shutdown, and closes ls in
// every case.
func serve(ctx context.Context, cfg config, ls listeners, stderr io.Writer) (err error) {
	defer ls.closeAll() // a no-op after the servers closed them
	logger := newLogger(cfg, stderr)
	applyMemoryLimit(cfg.memoryLimit)
	m, store, raw, err := openStore(ctx, cfg)
	if errors.Is(err, migrations.ErrPending) {
		err = fmt.Errorf("%w; run \"sms migrate up\" first, or start without --skip-migrations", err)
	}
	if errors.Is(err, postgres.ErrPreparedPooled) {
		err = fmt.Errorf("%w (in --kv-dsn; see README, \"Behind PgBouncer\")", err)
	}
	if errors.Is(err, postgres.ErrListenPooled) {
		err = fmt.Errorf("%w; LISTEN does not work through a transaction pooler: give a direct connection with --kv-listen-dsn (KV_LISTEN_DSN)", err)
	}
	if err != nil {
		// A driver may quote the DSN, password included.
		return postgres.RedactError(postgres.RedactError(fmt.Errorf("open %s store: %w", cfg.store.Backend, err), cfg.store.DSN), cfg.store.ListenDSN)
	}
	// Deferred first, so it runs last: after the servers and the sweeper
	// stopped using the store.
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", postgres.RedactError(cerr, cfg.store.DSN))
		}
		if err == nil {
			logger.Info("stopped")
		}
	}()

	clockOpts, stopClock := databaseClock(ctx, raw, cfg.heartbeatTimeout, logger)
	defer stopClock()
	// The view loads in the background; until it has, readiness says "not
	// serving" and reads wait for it.
	view := registry.NewView(store, clockOpts...)
	view.Start()
	defer view.Close()
	go warnNearMemoryLimit(ctx, view, cfg.memoryLimit, logger)
	nodes, resources := view.Nodes(), view.Resources()
	if m != nil {
		m.RegisterState(nodes, resources, cfg.metricsMaxAge, logger)
	}
	// Watch streams never end on their own: closing stopWatches ends them
	// (unavailable, "watch again") as shutdown begins, on both servers, so
	// that they do not hold it up.
	stopWatches := make(chan struct{})
	// One Placer for both servers and its sweeper.
	placer := placement.New(store, nodes, resources, placement.Options{HeartbeatTimeout: cfg.heartbeatTimeout})
	svc := service.Config{
		Placer:           placer,
		Nodes:            nodes,
		Resources:        resources,
		Store:            store,
		Metrics:          m,
		Logger:           logger,
		MaxRequestBytes:  int64(cfg.maxRequestBytes),
		Watchers:         service.NewWatcherLimit(cfg.maxWatchers), // both servers together
		BodyReadTimeout:  cfg.readBodyTimeout,
		CORSAllowOrigins: cfg.corsOrigins,
		AuthToken:        cfg.authToken,
		StopWatches:      stopWatches,
	}
	srv := newHTTPServer(cfg, service.NewHandler(svc), logger)
	var grpcSrv *grpc.Server
	if ls.grpc != nil {
		grpcSrv = newGRPCServer(cfg, svc)
	}

	sweepCtx, stopSweep := context.WithCancel(context.Background())
	var sweeping sync.WaitGroup
	sweeping.Go(func() {
		runSweeper(sweepCtx, nodes, cfg.cleanupInterval,
			registry.Liveness{HeartbeatTimeout: cfg.heartbeatTimeout, NodeTTL: cfg.nodeTTL}, logger)
	})
	sweeping.Go(func() { runPlacementSweeper(sweepCtx, placer, cfg.cleanupInterval, logger) })
	defer func() {
		stopSweep()
		sweeping.Wait()
	}()

	httpLn := ls.http
	if ls.one != nil {
		httpLn = ls.one
	}
	// Logged before serving: the ports are bound already, and a client that
	// got an answer knows the line was written.
	addrs := []any{"addr", httpLn.Addr().String()}
	if grpcSrv != nil {
		addrs = []any{"grpc_addr", ls.grpc.Addr().String(), "http_addr", httpLn.Addr().String()}
	}
	logger.Info("sms listening", append(addrs,
		"protocols", protocolNames(srv, grpcSrv != nil),
		"backend", cfg.store.Backend,
		"store", cfg.store.String(), // DSN password redacted
		"client_certs", cfg.clientCAs != nil,
		"auth", cfg.authToken != "",
		"heartbeat_timeout", cfg.heartbeatTimeout,
		"cleanup_interval", cfg.cleanupInterval,
		"node_ttl", cfg.nodeTTL,
		"max_request_bytes", cfg.maxRequestBytes,
		"memory_limit", cfg.memoryLimit, "memory_limit_from", cfg.memorySource)...)

	served := make(chan error, 2)
	go func() {
		if srv.TLSConfig != nil {
			// The certificate is in TLSConfig; ServeTLS adds the ALPN
			// protocols from srv.Protocols.
			served <- srv.ServeTLS(httpLn, "", "")
		} else {
			served <- srv.Serve(httpLn)
		}
	}()
	if grpcSrv != nil {
		go func() { served <- grpcSrv.Serve(ls.grpc) }()
	}
	select {
	case err := <-served:
		// Serve only returns early when a listener fails.
		srv.Close()
		if grpcSrv != nil {
			grpcSrv.Stop()
		}
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "grace", shutdownTimeout)
	close(stopWatches)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	var draining sync.WaitGroup
	if grpcSrv != nil {
		draining.Go(func() { drainGRPC(shutdownCtx, grpcSrv, logger) })
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// A call stuck on a slow client or a hung database, or a streaming
		// call, would otherwise hold the process up indefinitely.
		logger.Warn("in-flight calls did not finish in time; closing their connections", "err", err)
		srv.Close()
	}
	draining.Wait()
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if grpcSrv != nil {
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// drainGRPC stops grpcSrv gracefully (no new calls, in-flight ones finish),
// closing its connections when ctx ends first.
func drainGRPC(ctx context.Context, grpcSrv *grpc.Server, logger *slog.Logger) {
	done := make(chan struct{})
	go func() {
		grpcSrv.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		logger.Warn("in-flight gRPC calls did not finish in time; closing their connections")
		grpcSrv.Stop()
		<-done
	}
}

// newGRPCServer configures grpc-go's server for SPEAR's layout: the same
// TLS settings as the HTTP server (HTTP/2 only, which gRPC is), cleartext
// HTTP/2 otherwise.
func newGRPCServer(cfg config, svc service.Config) *grpc.Server {
	var opts []grpc.ServerOption
	if tc := tlsConfig(cfg); tc != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return service.NewGRPCServer(svc, opts...)
}

// newHTTPServer configures one http.Server for Connect, gRPC and gRPC-web:
// HTTP/1.1 plus HTTP/2, the latter over TLS when a certificate is configured
// and as prior-knowledge cleartext HTTP/2 (h2c) otherwise, which gRPC clients
// need.
func newHTTPServer(cfg config, handler http.Handler, logger *slog.Logger) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	srv := &http.Server{
		Handler:           handler,
		Protocols:         &protocols,
		ReadHeaderTimeout: cfg.readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		// No ReadTimeout or WriteTimeout: they bound a whole request or
		// response, so they would cut long-lived streaming calls (gRPC
		// server streams, health Watch) and large answers to slow clients
		// mid-stream. The request body is bounded in size and time by
		// the service's policy (--max-request-bytes, --read-body-timeout)
		// instead, and idle connections by IdleTimeout.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	srv.TLSConfig = tlsConfig(cfg)
	if srv.TLSConfig == nil {
		protocols.SetUnencryptedHTTP2(true)
		return srv
	}
	protocols.SetHTTP2(true)
	return srv
}

// tlsConfig is the servers' TLS configuration, nil for cleartext: TLS 1.2
// or later, and client certificates signed by --tls-client-ca if set.
func tlsConfig(cfg config) *tls.Config {
	if cfg.tlsCert == nil {
		return nil
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cfg.tlsCert},
	}
	if cfg.clientCAs != nil {
		tc.ClientCAs = cfg.clientCAs
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc
}

// protocolNames lists what srv speaks, and grpc-go's server if there is
// one, for the startup line.
func protocolNames(srv *http.Server, grpcGo bool) string {
	names := "http/1.1"
	if srv.Protocols.UnencryptedHTTP2() {
		names += ",h2c"
	}
	if srv.Protocols.HTTP2() && srv.TLSConfig != nil {
		names += ",h2 (tls)"
		if srv.TLSConfig.ClientAuth == tls.RequireAndVerifyClientCert {
			names += " with client certificates"
		}
	}
	if grpcGo {
		names += "; grpc-go"
	}
	return names
}

// newLogger builds the process logger from the log flags, writing to w.
// Durations read the same in both formats ("1m30s", "2.5ms"): the JSON
// handler would otherwise write nanoseconds.
func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel, ReplaceAttr: durationsAsText}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// durationsAsText writes a duration as its String form.
func durationsAsText(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// runSweeper runs one liveness sweep every interval until ctx is done.
func runSweeper(ctx context.Context, s sweeper, every time.Duration, l registry.Liveness, logger *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		sweepOnce(ctx, s, max(every, minSweepTimeout), l, logger)
	}
}

// sweeper is what runSweeper needs of *registry.NodeRegistry.
type sweeper interface {
	Sweep(ctx context.Context, l registry.Liveness) (registry.SweepResult, error)
}

func sweepOnce(ctx context.Context, s sweeper, timeout time.Duration, l registry.Liveness, logger *slog.Logger) {
	sweepCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res, err := s.Sweep(sweepCtx, l)
	// A failed sweep still reports what it changed before the error.
	counts := []any{
		"marked_unhealthy", res.MarkedUnhealthy,
		"deleted_nodes", res.DeletedNodes,
		"deleted_resources", res.DeletedResources,
	}
	switch {
	case err != nil && ctx.Err() == nil:
		logger.Warn("liveness sweep failed", append(counts, "err", err)...)
	case res != registry.SweepResult{}:
		// Also after a sweep cut short by shutdown, which is no failure.
		logger.Info("liveness sweep", counts...)
	}
}
