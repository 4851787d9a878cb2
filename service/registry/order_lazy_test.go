package registry

import (
	"slices"
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

// Changes made while a build reads its snapshot are in the trees it puts
// in the index: a report that moves a node, a deleted node, a new node.
func TestValueOrderBuildReplaysChanges(t *testing.T) {
	ctx := t.Context()
	v := NewView(watchstore.New(memory.New()))
	defer v.Close()
	for i := range 10 {
		id := benchUUID(i)
		if _, err := v.Nodes().Register(ctx, Node{UUID: id, IPAddress: "10.0.0.1", Port: 1, Status: StatusActive}); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Resources().Update(ctx, Resource{NodeUUID: id, CPUUsagePercent: float64(i)}); err != nil {
			t.Fatal(err)
		}
	}
	p, snap := v.beginBuild(OrderCPU)
	if snap == nil {
		t.Fatal("no build started")
	}
	if _, err := v.Resources().Update(ctx, Resource{NodeUUID: benchUUID(2), CPUUsagePercent: 99}); err != nil {
		t.Fatal(err)
	}
	if err := v.Nodes().Delete(ctx, benchUUID(9)); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Nodes().Register(ctx, Node{UUID: benchUUID(10), IPAddress: "10.0.0.1", Port: 1, Status: StatusActive}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Resources().Update(ctx, Resource{NodeUUID: benchUUID(10), CPUUsagePercent: 50}); err != nil {
		t.Fatal(err)
	}
	if err := v.sync(ctx); err != nil { // the view has applied them: logged
		t.Fatal(err)
	}
	if q, again := v.beginBuild(OrderCPU); q != p || again != nil {
		t.Fatal("a second build started while one is in progress")
	}
	v.finishBuild(OrderCPU, p, buildTrees(OrderCPU, snap))
	got, _, err := v.Nodes().ListPage(ctx, ListOptions{OrderBy: OrderCPU, Descending: true})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range got {
		ids = append(ids, n.UUID)
	}
	want := []string{benchUUID(2), benchUUID(10), benchUUID(8), benchUUID(7), benchUUID(6), benchUUID(5), benchUUID(4), benchUUID(3), benchUUID(1), benchUUID(0)}
	if !slices.Equal(ids, want) {
		t.Fatalf("by CPU, descending:\n got %v\nwant %v", ids, want)
	}
}
