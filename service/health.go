package service

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/sqlkv"
)

// storeChecker is the gRPC health checker: the server and sms.NodeService
// are serving exactly when the store answers Ping.
type storeChecker struct {
	store  sqlkv.Store
	logger *slog.Logger
}

var _ grpchealth.Checker = (*storeChecker)(nil)

// Check answers SERVING or NOT_SERVING for "", "sms.NodeService" and
// "sms.PlacementService", and
// not_found for any other service.
func (c *storeChecker) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", smspbconnect.NodeServiceName, smspbconnect.PlacementServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if err := ping(ctx, c.store, c.logger); err != nil {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
}

// healthz is the HTTP readiness probe: 200 "ok" while the store answers Ping,
// 503 otherwise.
func healthz(store sqlkv.Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if err := ping(r.Context(), store, logger); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("unavailable\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
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

// health is SPEAR's GET /health: 200 {"status": "healthy", ...} while the
// store answers Ping, 503 with "unhealthy" otherwise; timestamp is the
// server time in RFC 3339.
func health(store sqlkv.Store, logger *slog.Logger) http.Handler {
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
