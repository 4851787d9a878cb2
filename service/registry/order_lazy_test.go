package registry

import (
	"testing"

	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// A value order's trees are built by the first page in that order, kept
// current by the writes after it, and kept built through a reload.
func TestValueOrderTreesBuiltOnFirstUse(t *testing.T) {
	ctx := t.Context()
	v := NewView(watchstore.New(memory.New()))
	defer v.Close()
	statuses := []Status{StatusActive, StatusInactive, StatusUnhealthy, StatusDecommissioning}
	for i := range 20 {
		id := benchUUID(i)
		if _, err := v.Nodes().Register(ctx, Node{UUID: id, IPAddress: "10.0.0.1", Port: 1, Status: statuses[i%4]}); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Resources().Update(ctx, Resource{NodeUUID: id, CPUUsagePercent: float64(i), MemoryUsagePercent: 1}); err != nil {
			t.Fatal(err)
		}
	}
	built := func() map[Order]bool {
		v.mu.RLock()
		defer v.mu.RUnlock()
		out := map[Order]bool{}
		for _, o := range valueOrders {
			out[o] = v.sorted.built(o)
		}
		return out
	}
	top := func(want string) {
		t.Helper()
		got, _, err := v.Nodes().ListPage(ctx, ListOptions{OrderBy: OrderCPU, Descending: true, PageSize: 1})
		if err != nil || len(got) != 1 || got[0].UUID != want {
			t.Fatalf("highest CPU: %v, %v; want %s", got, err, want)
		}
	}
	if _, _, err := v.Nodes().ListPage(ctx, ListOptions{OrderBy: OrderStatus, PageSize: 5}); err != nil {
		t.Fatal(err)
	}
	if b := built(); b[OrderLastHeartbeat] || b[OrderCPU] || b[OrderMemory] {
		t.Fatalf("value trees built before any page asked for them: %v", b)
	}
	top(benchUUID(19))
	if b := built(); !b[OrderCPU] || b[OrderLastHeartbeat] || b[OrderMemory] {
		t.Fatalf("after a CPU page, built: %v; want CPU only", b)
	}
	if _, err := v.Resources().Update(ctx, Resource{NodeUUID: benchUUID(3), CPUUsagePercent: 99, MemoryUsagePercent: 1}); err != nil {
		t.Fatal(err)
	}
	top(benchUUID(3))
	if err := v.reload(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if b := built(); !b[OrderCPU] {
		t.Fatalf("the CPU trees are gone after a reload: %v", b)
	}
	if err := v.Nodes().Delete(ctx, benchUUID(3)); err != nil {
		t.Fatal(err)
	}
	top(benchUUID(19))
}
