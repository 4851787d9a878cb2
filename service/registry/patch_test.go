package registry_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

func TestPatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		ctx := context.Background()
		e := newEnv(store)
		n, err := e.nodes.Register(ctx, registry.Node{IPAddress: "10.0.0.1", Port: 8080, HTTPPort: 9090,
			Metadata: map[string]string{"zone": "a", "rack": "r1"}})
		if err != nil {
			t.Fatal(err)
		}

		t.Run("absent fields are kept", func(t *testing.T) {
			port := int32(8081)
			got, err := e.nodes.Patch(ctx, n.UUID, registry.NodePatch{Port: &port})
			if err != nil {
				t.Fatal(err)
			}
			if got.Port != 8081 || got.IPAddress != "10.0.0.1" || got.HTTPPort != 9090 ||
				!maps.Equal(got.Metadata, n.Metadata) || !got.RegisteredAt.Equal(n.RegisteredAt) {
				t.Fatalf("Patch(port) = %+v, want only the port changed from %+v", got, n)
			}
		})

		t.Run("metadata replaces the whole map, status any spelling", func(t *testing.T) {
			md := map[string]string{"zone": "b"}
			status := registry.Status("OFFLINE")
			got, err := e.nodes.Patch(ctx, n.UUID, registry.NodePatch{Metadata: &md, Status: &status})
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got.Metadata, md) || got.Status != registry.StatusInactive || got.Port != 8081 {
				t.Fatalf("Patch(metadata, status) = %+v", got)
			}
		})

		t.Run("invalid merged node", func(t *testing.T) {
			port := int32(0)
			if _, err := e.nodes.Patch(ctx, n.UUID, registry.NodePatch{Port: &port}); !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Patch(port 0) = %v, want ErrInvalid", err)
			}
		})

		t.Run("absent node", func(t *testing.T) {
			if _, err := e.nodes.Patch(ctx, "00000000-0000-4000-8000-000000000000", registry.NodePatch{}); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("Patch(absent) = %v, want ErrNotFound", err)
			}
		})

		// Two patches of different fields at once: neither is lost, since
		// each merges onto what it read and writes only if that is still
		// the stored version.
		t.Run("concurrent patches of different fields both land", func(t *testing.T) {
			for i := range 10 {
				port, hport := int32(1000+i), int32(2000+i)
				var wg sync.WaitGroup
				errs := make([]error, 2)
				wg.Go(func() { _, errs[0] = e.nodes.Patch(ctx, n.UUID, registry.NodePatch{Port: &port}) })
				wg.Go(func() { _, errs[1] = e.nodes.Patch(ctx, n.UUID, registry.NodePatch{HTTPPort: &hport}) })
				wg.Wait()
				if err := errors.Join(errs...); err != nil {
					t.Fatal(err)
				}
				got, err := e.nodes.Get(ctx, n.UUID)
				if err != nil {
					t.Fatal(err)
				}
				if got.Port != port || got.HTTPPort != hport {
					t.Fatalf("after concurrent patches: port %d http_port %d, want %d %d", got.Port, got.HTTPPort, port, hport)
				}
			}
		})
	})
}
