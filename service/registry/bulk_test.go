package registry_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

func TestBulkPut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
		var nodes []registry.Node
		var res []registry.Resource
		for i := range 5 {
			nodes = append(nodes, registry.Node{
				UUID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IPAddress: "10.0.0.1", Port: 8080,
				Status: registry.StatusActive, RegisteredAt: at, LastHeartbeat: at.Add(time.Second),
				Metadata: map[string]string{"i": fmt.Sprint(i)}, HealthInfo: map[string]string{},
			})
			if i < 3 {
				res = append(res, registry.Resource{CPUUsagePercent: float64(i), UpdatedAt: at})
			}
		}
		nodes[4].Status = registry.StatusUnhealthy
		if err := registry.BulkPut(t.Context(), store, nodes, res); err != nil {
			t.Fatal(err)
		}
		list, err := e.nodes.List(t.Context(), registry.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(list, nodes) {
			t.Errorf("List after BulkPut = %+v\nwant %+v", list, nodes)
		}
		got, found, err := e.res.Get(t.Context(), nodes[2].UUID)
		if err != nil || !found || got.CPUUsagePercent != 2 || got.NodeUUID != nodes[2].UUID {
			t.Errorf("resource of node 2 = %+v, %v, %v; want cpu 2", got, found, err)
		}
		if _, found, _ := e.res.Get(t.Context(), nodes[3].UUID); found {
			t.Error("node 3 has a resource report, want none")
		}

		bad := []registry.Node{{UUID: "00000000-0000-4000-8000-000000000099", IPAddress: "10.0.0.1", Port: 1}, {UUID: "nope", Port: 1}}
		if err := registry.BulkPut(t.Context(), store, bad, nil); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("BulkPut(bad uuid) = %v, want ErrInvalid", err)
		}
		if _, err := e.nodes.Get(t.Context(), bad[0].UUID); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Get(first of a rejected batch) = %v, want ErrNotFound (nothing written)", err)
		}
	})
}
