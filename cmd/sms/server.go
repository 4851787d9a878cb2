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
	"sync"
	"time"

	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
)

const (
	// readHeaderTimeout bounds how long a client may take to send request
	// headers, against slowloris-style connection hoarding.
	readHeaderTimeout = 10 * time.Second
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

// serve runs the server described by cfg until ctx is done, then shuts down
// gracefully: stop accepting, let in-flight calls finish (up to
// shutdownTimeout), stop the sweeper, close the store. It returns nil after a
// clean shutdown.
func serve(ctx context.Context, cfg config, stderr io.Writer) (err error) {
	logger := newLogger(cfg, stderr)
	store, err := openStore(ctx, cfg)
	if errors.Is(err, migrations.ErrPending) {
		err = fmt.Errorf("%w; run \"sms migrate up\" first, or start without --skip-migrations", err)
	}
	if err != nil {
		// A driver may quote the DSN, password included.
		return redactError(fmt.Errorf("open %s store: %w", cfg.store.Backend, err), dsnSecrets(cfg.store.DSN)...)
	}
	// Deferred first, so it runs last: after the server and the sweeper
	// stopped using the store.
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close store: %w", redactError(cerr, dsnSecrets(cfg.store.DSN)...))
		}
		if err == nil {
			logger.Info("stopped")
		}
	}()

	m, store := instrument(cfg, store)
	nodes := registry.NewNodeRegistry(store)
	resources := registry.NewNodeResourceRegistry(store)
	if m != nil {
		m.RegisterState(nodes, resources, cfg.metricsMaxAge, logger)
	}
	placer := placement.New(store, nodes, resources, placement.Options{HeartbeatTimeout: cfg.heartbeatTimeout})
	stopWatches := make(chan struct{})
	handler := service.NewHandler(service.Config{
		Placer:          placer,
		Nodes:           nodes,
		Resources:       resources,
		Store:           store,
		Metrics:         m,
		Logger:          logger,
		MaxRequestBytes: int64(cfg.maxRequestBytes),
		AuthToken:       cfg.authToken,
		StopWatches:     stopWatches,
	})

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return err
	}
	srv := newHTTPServer(cfg, handler, logger)
	// Watch streams never end on their own: end them (unavailable, "watch
	// again") as shutdown begins, so that they do not hold it up.
	srv.RegisterOnShutdown(func() { close(stopWatches) })

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

	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			// The certificate is in TLSConfig; ServeTLS adds the ALPN
			// protocols from srv.Protocols.
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	logger.Info("sms listening",
		"addr", ln.Addr().String(),
		"protocols", protocolNames(srv),
		"backend", cfg.store.Backend,
		"store", cfg.store.String(), // DSN password redacted
		"client_certs", cfg.clientCAs != nil,
		"auth", cfg.authToken != "",
		"heartbeat_timeout", cfg.heartbeatTimeout,
		"cleanup_interval", cfg.cleanupInterval,
		"node_ttl", cfg.nodeTTL,
		"max_request_bytes", cfg.maxRequestBytes)

	select {
	case err := <-served:
		// Serve only returns early when the listener fails.
		srv.Close()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("shutting down", "grace", shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// A call stuck on a slow client or a hung database, or a streaming
		// call, would otherwise hold the process up indefinitely.
		logger.Warn("in-flight calls did not finish in time; closing their connections", "err", err)
		srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
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
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		// No ReadTimeout or WriteTimeout: they bound a whole request or
		// response, so they would cut long-lived streaming calls (gRPC
		// server streams, health Watch) and large answers to slow clients
		// mid-stream. Request size is bounded by MaxRequestBytes instead,
		// and idle connections by IdleTimeout.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if cfg.tlsCert == nil {
		protocols.SetUnencryptedHTTP2(true)
		return srv
	}
	protocols.SetHTTP2(true)
	srv.TLSConfig = &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{*cfg.tlsCert},
	}
	if cfg.clientCAs != nil {
		srv.TLSConfig.ClientCAs = cfg.clientCAs
		srv.TLSConfig.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return srv
}

// protocolNames lists what srv speaks, for the startup line.
func protocolNames(srv *http.Server) string {
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
