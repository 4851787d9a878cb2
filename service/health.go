package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// storeChecker is the gRPC health checker: the server and sms.NodeService
// are serving exactly when the registry view is loaded and the store
// answers Ping.
type storeChecker struct {
	store  sqlkv.Store
	view   *registry.View
	logger *slog.Logger
}

var _ grpchealth.Checker = (*storeChecker)(nil)

// healthServices are the service names gRPC health answers for: the server
// as a whole ("") and each service it serves.
var healthServices = []string{"", smspbconnect.NodeServiceName, smspbconnect.PlacementServiceName}

// serving reports whether service is serving: true once the registry view
// is loaded and while the store answers Ping. It fails with not_found for a
// service not in healthServices. Both stacks' health services answer with
// it.
func (c *storeChecker) serving(ctx context.Context, service string) (bool, error) {
	if !slices.Contains(healthServices, service) {
		return false, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", service))
	}
	return ready(ctx, c.store, c.view, c.logger) == nil, nil
}

// Check answers SERVING or NOT_SERVING for "", "sms.NodeService" and
// "sms.PlacementService", and not_found for any other service.
func (c *storeChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	ok, err := c.serving(ctx, req.Service)
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// healthz is the HTTP readiness probe: 200 "ok" while the view is loaded and
// the store answers Ping, 503 otherwise. While the store is degraded (its
// disk full: reads work, writes fail) it stays 200, as reads are still
// served, with a body that says "degraded" and why.
func healthz(store sqlkv.Store, view *registry.View, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := ready(r.Context(), store, view, logger); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("unavailable\n"))
			return
		}
		if sqlkv.Degraded(store) != nil {
			_, _ = w.Write([]byte("degraded: " + errFull.Error() + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// errViewLoading is why SMS is not ready while its registry view loads.
var errViewLoading = errors.New("registry view still loading")

// ready checks that the view is loaded (every read waits for it until then)
// and that the store answers.
func ready(ctx context.Context, store sqlkv.Store, view *registry.View, logger *slog.Logger) error {
	if !view.Loaded() {
		logger.DebugContext(ctx, "not ready", "err", errViewLoading)
		return errViewLoading
	}
	return ping(ctx, store, logger)
}

// ping checks the store within pingTimeout and logs why it is not ready.
func ping(ctx context.Context, store sqlkv.Store, logger *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	err := store.Ping(ctx)
	if err != nil {
		logger.WarnContext(ctx, "store not ready", "err", err)
	}
	return err
}

// spearHealth is SPEAR's GET /health: 200 {"status": "healthy", ...} while the
// store answers Ping, 503 with "unhealthy" otherwise; timestamp is the
// server time in RFC 3339.
func spearHealth(store sqlkv.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code := "healthy", http.StatusOK
		if err := ping(r.Context(), store, logger); err != nil {
			status, code = "unhealthy", http.StatusServiceUnavailable
		}
		writeJSON(w, code, struct {
			Status    string `json:"status"`
			Timestamp string `json:"timestamp"`
			Service   string `json:"service"`
		}{status, time.Now().UTC().Format(time.RFC3339), "sms"})
	})
}
