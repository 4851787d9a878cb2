package service_test

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/grpchealth"

	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// slowLoadStore holds every range read (the view's load) until release is
// closed.
type slowLoadStore struct {
	sqlkv.Store
	release chan struct{}
}

func (s *slowLoadStore) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Store.Range(ctx, opts)
}

// Readiness (gRPC health and /healthz) says "not serving" until the
// registry view is loaded, and "serving" once it is.
func TestNotServingUntilViewLoaded(t *testing.T) {
	t.Parallel()
	store := &slowLoadStore{Store: memory.New(), release: make(chan struct{})}
	view := registry.NewView(watchstore.New(store))
	t.Cleanup(view.Close)
	url, client := startServer(t, service.Config{Nodes: view.Nodes(), Resources: view.Resources(), Store: store, Logger: testLogger(t)})
	health := grpchealth.NewClient(client, url)
	e := &env{url: url, http: client}

	resp, err := health.Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != grpchealth.StatusNotServing {
		t.Errorf("health while the view loads = %v, want NOT_SERVING", resp.Status)
	}
	if got, want := getHealthz(t, e), http.StatusServiceUnavailable; got != want {
		t.Errorf("GET /healthz while the view loads = %d, want %d", got, want)
	}

	close(store.release)
	if err := view.WaitLoaded(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, err = health.Check(t.Context(), &grpchealth.CheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != grpchealth.StatusServing {
		t.Errorf("health once loaded = %v, want SERVING", resp.Status)
	}
	if got, want := getHealthz(t, e), http.StatusOK; got != want {
		t.Errorf("GET /healthz once loaded = %d, want %d", got, want)
	}
}
