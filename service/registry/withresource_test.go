package registry_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// fenceCounter counts the read fences of the views on it.
type fenceCounter struct {
	sqlkv.Store
	fences atomic.Int64
}

func (s *fenceCounter) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	return s.Store.(sqlkv.Watchable).Watch(ctx, prefix)
}

func (s *fenceCounter) Fence(ctx context.Context) error {
	s.fences.Add(1)
	return s.Store.(sqlkv.Fencer).Fence(ctx)
}

// GetWithResource reads the node and its report after one fence, and sees
// every write acknowledged before it began, through another view (on
// Postgres, another store: another replica) too.
func TestGetWithResourceFencesOnce(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			storeA, storeB := storetest.Replicas(t, backend)
			counted := &fenceCounter{Store: storeB}
			a, b := registry.NewView(storeA), registry.NewView(counted)
			t.Cleanup(a.Close)
			t.Cleanup(b.Close)
			ctx := t.Context()
			get := func(id string) (registry.Node, registry.Resource, bool, error) {
				t.Helper()
				before := counted.fences.Load()
				n, res, found, err := b.Nodes().GetWithResource(ctx, id)
				if fences := counted.fences.Load() - before; fences != 1 {
					t.Errorf("GetWithResource(%s) fenced %d times, want 1", id, fences)
				}
				return n, res, found, err
			}

			if _, _, _, err := get(uuidA); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("GetWithResource of a missing node: %v, want ErrNotFound", err)
			}
			for i := range 10 {
				if _, err := a.Nodes().Register(ctx, registry.Node{UUID: uuidA, IPAddress: "10.0.0.1", Port: int32(1000 + i)}); err != nil {
					t.Fatal(err)
				}
				n, _, found, err := get(uuidA)
				if err != nil || found || n.UUID != uuidA || n.Port != int32(1000+i) {
					t.Fatalf("round %d, no report: GetWithResource = %+v, found %v, %v; want the node, no report", i, n, found, err)
				}
				if _, err := a.Resources().Update(ctx, registry.Resource{NodeUUID: uuidA, CPUUsagePercent: float64(i)}); err != nil {
					t.Fatal(err)
				}
				n, res, found, err := get(uuidA)
				if err != nil || !found || n.Port != int32(1000+i) || res.NodeUUID != uuidA || res.CPUUsagePercent != float64(i) {
					t.Fatalf("round %d: GetWithResource = %+v, %+v, found %v, %v; want the node and its report of cpu %d", i, n, res, found, err, i)
				}
				if err := a.Nodes().Delete(ctx, uuidA); err != nil {
					t.Fatal(err)
				}
				if _, _, _, err := get(uuidA); !errors.Is(err, registry.ErrNotFound) {
					t.Fatalf("round %d: GetWithResource of a deleted node: %v, want ErrNotFound", i, err)
				}
			}
		})
	}
}
