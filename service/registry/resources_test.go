package registry_test

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

func TestResourceValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(*registry.Resource)
		want string
	}{
		{"missing node uuid", func(r *registry.Resource) { r.NodeUUID = "" }, "resource.node_uuid: required"},
		{"bad node uuid", func(r *registry.Resource) { r.NodeUUID = "x" }, `resource.node_uuid: not a UUID: "x"`},
		{"cpu NaN", func(r *registry.Resource) { r.CPUUsagePercent = math.NaN() },
			"resource.cpu_usage_percent: must be a finite number in [0, 100], got NaN"},
		{"cpu +Inf", func(r *registry.Resource) { r.CPUUsagePercent = math.Inf(1) },
			"resource.cpu_usage_percent: must be a finite number in [0, 100], got +Inf"},
		{"cpu negative", func(r *registry.Resource) { r.CPUUsagePercent = -1 },
			"resource.cpu_usage_percent: must be a finite number in [0, 100], got -1"},
		{"memory 101", func(r *registry.Resource) { r.MemoryUsagePercent = 101 },
			"resource.memory_usage_percent: must be a finite number in [0, 100], got 101"},
		{"disk 100.5", func(r *registry.Resource) { r.DiskUsagePercent = 100.5 },
			"resource.disk_usage_percent: must be a finite number in [0, 100], got 100.5"},
		{"load NaN", func(r *registry.Resource) { r.LoadAverage1m = math.NaN() },
			"resource.load_average_1m: must be a finite number >= 0, got NaN"},
		{"load -Inf", func(r *registry.Resource) { r.LoadAverage5m = math.Inf(-1) },
			"resource.load_average_5m: must be a finite number >= 0, got -Inf"},
		{"load +Inf", func(r *registry.Resource) { r.LoadAverage15m = math.Inf(1) },
			"resource.load_average_15m: must be a finite number >= 0, got +Inf"},
		{"load negative", func(r *registry.Resource) { r.LoadAverage15m = -0.5 },
			"resource.load_average_15m: must be a finite number >= 0, got -0.5"},
		{"total memory negative", func(r *registry.Resource) { r.TotalMemoryBytes = -1 },
			"resource.total_memory_bytes: must be >= 0, got -1"},
		{"used memory negative", func(r *registry.Resource) { r.UsedMemoryBytes = -1 },
			"resource.used_memory_bytes: must be >= 0, got -1"},
		{"available memory negative", func(r *registry.Resource) { r.AvailableMemoryBytes = -1 },
			"resource.available_memory_bytes: must be >= 0, got -1"},
		{"total disk negative", func(r *registry.Resource) { r.TotalDiskBytes = -1 },
			"resource.total_disk_bytes: must be >= 0, got -1"},
		{"used disk negative", func(r *registry.Resource) { r.UsedDiskBytes = -1 },
			"resource.used_disk_bytes: must be >= 0, got -1"},
		{"rx negative", func(r *registry.Resource) { r.NetworkRxBytesPerSec = -1 },
			"resource.network_rx_bytes_per_sec: must be >= 0, got -1"},
		{"tx negative", func(r *registry.Resource) { r.NetworkTxBytesPerSec = -1 },
			"resource.network_tx_bytes_per_sec: must be >= 0, got -1"},
	}
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		e.register(t, uuidA, "")
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				r := fullResource(uuidA)
				tc.edit(&r)
				_, err := e.res.Update(t.Context(), r)
				if !errors.Is(err, registry.ErrInvalid) {
					t.Fatalf("Update error = %v, want ErrInvalid", err)
				}
				if got := err.Error(); got != tc.want {
					t.Errorf("Update error = %q, want %q", got, tc.want)
				}
			})
		}
		if _, found, _ := e.res.Get(t.Context(), uuidA); found {
			t.Error("an invalid report was stored")
		}
		// The bounds themselves are valid.
		r := fullResource(uuidA)
		r.CPUUsagePercent, r.MemoryUsagePercent, r.DiskUsagePercent = 0, 100, 100
		r.LoadAverage1m, r.TotalMemoryBytes = 0, 0
		if _, err := e.res.Update(t.Context(), r); err != nil {
			t.Errorf("Update at the bounds: %v", err)
		}
	})
}

func TestResourceUpdateAndGet(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		e.register(t, uuidA, "")

		in := fullResource("URN:UUID:" + uuidA)
		in.UpdatedAt = time.Unix(1, 0) // set by the server
		got, err := e.res.Update(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		want := fullResource(uuidA)
		want.UpdatedAt = e.clock.Now()
		assertResource(t, "Update", got, want)
		stored, found, err := e.res.Get(t.Context(), "{"+uuidA+"}")
		if err != nil || !found {
			t.Fatalf("Get = found %v, %v", found, err)
		}
		assertResource(t, "Get", stored, want)

		// A new report replaces the old one wholesale.
		e.clock.Advance(time.Second)
		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidA, CPUUsagePercent: 5}); err != nil {
			t.Fatal(err)
		}
		stored, _, _ = e.res.Get(t.Context(), uuidA)
		assertResource(t, "Get after a second report", stored,
			registry.Resource{NodeUUID: uuidA, CPUUsagePercent: 5, UpdatedAt: e.clock.Now(), Metadata: map[string]string{}})

		if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: uuidB}); !errors.Is(err, registry.ErrNotFound) {
			t.Errorf("Update for an absent node: %v, want ErrNotFound", err)
		}
		if ok, _ := sqlkv.Exists(t.Context(), store, []byte("resource:"+uuidB)); ok {
			t.Error("a report for an absent node was stored")
		}
		if _, found, err := e.res.Get(t.Context(), uuidB); err != nil || found {
			t.Errorf("Get without a report = found %v, %v; want false, nil", found, err)
		}
		if _, _, err := e.res.Get(t.Context(), "nope"); !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Get(nope): %v, want ErrInvalid", err)
		}
	})
}

func TestResourceList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		if got, err := e.res.List(t.Context(), nil); err != nil || len(got) != 0 {
			t.Fatalf("List of nothing = %v, %v", got, err)
		}
		for i, id := range []string{uuidC, uuidA, uuidB} {
			e.register(t, id, "")
			if id == uuidB {
				continue // registered, never reported
			}
			if _, err := e.res.Update(t.Context(), registry.Resource{NodeUUID: id, CPUUsagePercent: float64(i)}); err != nil {
				t.Fatal(err)
			}
		}
		const unknown = "99999999-9999-4999-8999-999999999999"
		tests := []struct {
			name string
			in   []string
			want []string
		}{
			{"empty is all, ascending", nil, []string{uuidA, uuidC}},
			{"empty slice is all", []string{}, []string{uuidA, uuidC}},
			{"request order", []string{uuidC, uuidA}, []string{uuidC, uuidA}},
			{"missing left out", []string{uuidB, unknown, uuidA}, []string{uuidA}},
			{"any spelling", []string{"{" + uuidC + "}"}, []string{uuidC}},
			{"duplicates repeated", []string{uuidA, uuidA}, []string{uuidA, uuidA}},
			{"none found", []string{uuidB}, nil},
		}
		for _, tc := range tests {
			got, err := e.res.List(t.Context(), tc.in)
			if err != nil {
				t.Errorf("%s: List(%v): %v", tc.name, tc.in, err)
				continue
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.NodeUUID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("%s: List(%v) = %v, want %v", tc.name, tc.in, ids, tc.want)
			}
		}
		all, _ := e.res.List(t.Context(), nil)
		one, _, _ := e.res.Get(t.Context(), uuidC)
		assertResource(t, "List entry", all[1], one)

		_, err := e.res.List(t.Context(), []string{uuidA, "bogus"})
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != "node_uuids[1]" {
			t.Errorf("List with an invalid uuid: %v, want a ValidationError on node_uuids[1]", err)
		}
	})
}

func TestIsHighLoad(t *testing.T) {
	r := registry.NewView(memory.New()).Resources()
	tests := []struct {
		res  registry.Resource
		want bool
	}{
		{registry.Resource{}, false},
		{registry.Resource{CPUUsagePercent: 80}, false},
		{registry.Resource{CPUUsagePercent: 80.01}, true},
		{registry.Resource{MemoryUsagePercent: 85}, false},
		{registry.Resource{MemoryUsagePercent: 85.01}, true},
		{registry.Resource{LoadAverage1m: 4.0}, false},
		{registry.Resource{LoadAverage1m: 4.01}, true},
		{registry.Resource{CPUUsagePercent: 80, MemoryUsagePercent: 85, LoadAverage1m: 4, LoadAverage5m: 100}, false},
	}
	for _, tc := range tests {
		if got := r.IsHighLoad(tc.res); got != tc.want {
			t.Errorf("IsHighLoad(cpu %v, mem %v, load %v) = %v, want %v",
				tc.res.CPUUsagePercent, tc.res.MemoryUsagePercent, tc.res.LoadAverage1m, got, tc.want)
		}
	}
	custom := registry.NewView(memory.New(), registry.WithThresholds(registry.Thresholds{CPUPercent: 50, MemoryPercent: 100, LoadAverage1m: 100})).Resources()
	if !custom.IsHighLoad(registry.Resource{CPUUsagePercent: 60}) || custom.IsHighLoad(registry.Resource{MemoryUsagePercent: 90}) {
		t.Error("IsHighLoad ignores WithThresholds")
	}
}

func TestClusterStats(t *testing.T) {
	forEachBackend(t, func(t *testing.T, store sqlkv.Store) {
		e := newEnv(store)
		st, err := e.res.ClusterStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		assertStats(t, st, registry.ClusterStats{NodesByStatus: map[registry.Status]int64{
			"active": 0, "inactive": 0, "unhealthy": 0, "decommissioning": 0,
		}})

		const uuidD = "d0000000-0000-4000-8000-000000000000"
		e.register(t, uuidA, "active")
		e.register(t, uuidB, "active")
		e.register(t, uuidC, "inactive")
		e.register(t, uuidD, "unhealthy")
		reports := []registry.Resource{
			{NodeUUID: uuidA, CPUUsagePercent: 90, MemoryUsagePercent: 10, TotalMemoryBytes: 1000, UsedMemoryBytes: 100},
			{NodeUUID: uuidB, CPUUsagePercent: 10, MemoryUsagePercent: 50, TotalMemoryBytes: 3000, UsedMemoryBytes: 1500},
			{NodeUUID: uuidC, CPUUsagePercent: 20, MemoryUsagePercent: 30, TotalMemoryBytes: 2000, UsedMemoryBytes: 600, LoadAverage1m: 8},
		}
		for _, r := range reports {
			if _, err := e.res.Update(t.Context(), r); err != nil {
				t.Fatal(err)
			}
		}
		st, err = e.res.ClusterStats(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		assertStats(t, st, registry.ClusterStats{
			TotalNodes: 4,
			NodesByStatus: map[registry.Status]int64{
				"active": 2, "inactive": 1, "unhealthy": 1, "decommissioning": 0,
			},
			NodesWithResources:   3,
			AverageCPUPercent:    40,
			AverageMemoryPercent: 30,
			TotalMemoryBytes:     6000,
			UsedMemoryBytes:      2200,
			HighLoadNodes:        2,
		})
	})
}

func assertStats(t *testing.T, got, want registry.ClusterStats) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ClusterStats =\n  %+v\nwant\n  %+v", got, want)
	}
}

func fullResource(id string) registry.Resource {
	return registry.Resource{
		NodeUUID:             id,
		CPUUsagePercent:      12.5,
		MemoryUsagePercent:   33.25,
		TotalMemoryBytes:     16 << 30,
		UsedMemoryBytes:      5 << 30,
		AvailableMemoryBytes: 11 << 30,
		DiskUsagePercent:     71,
		TotalDiskBytes:       1 << 40,
		UsedDiskBytes:        700 << 30,
		NetworkRxBytesPerSec: 1234,
		NetworkTxBytesPerSec: 5678,
		LoadAverage1m:        0.5,
		LoadAverage5m:        0.75,
		LoadAverage15m:       1.25,
		Metadata:             map[string]string{"gpu": "none"},
	}
}

func assertResource(t *testing.T, what string, got, want registry.Resource) {
	t.Helper()
	if !got.UpdatedAt.Equal(want.UpdatedAt) || got.Metadata == nil {
		t.Errorf("%s: UpdatedAt %v, Metadata %#v; want %v, non-nil", what, got.UpdatedAt, got.Metadata, want.UpdatedAt)
	}
	got.UpdatedAt, want.UpdatedAt = time.Time{}, time.Time{}
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) {
		t.Errorf("%s =\n  %+v\nwant\n  %+v", what, got, want)
	}
}
