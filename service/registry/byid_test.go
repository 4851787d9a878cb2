package registry

import (
	"testing"

	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// checkByID fails t unless the view's uuid map (byID, which point reads
// use) holds exactly the entries of its uuid tree.
func checkByID(t *testing.T, v *View, want int) {
	t.Helper()
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.byUUID.Len() != want || v.byID.len() != want {
		t.Fatalf("uuid tree %d entries, uuid map %d; want %d", v.byUUID.Len(), v.byID.len(), want)
	}
	v.byUUID.Ascend(func(e *entry) bool {
		if got := v.byID.get(e.uuid); got != e {
			t.Fatalf("byID[%s] = %p, the tree's entry %p", e.uuid, got, e)
		}
		return true
	})
}

// The uuid map follows the tree through the first load (build), writes
// (replace), deletes and a reload, and GetNode reads through it.
func TestViewByIDFollowsTheTree(t *testing.T) {
	ctx := t.Context()
	store := watchstore.New(memory.New())
	w := NewView(store)
	defer w.Close()
	for i := range 20 {
		if _, err := w.Nodes().Register(ctx, Node{UUID: benchUUID(i), IPAddress: "10.0.0.1", Port: 1, Metadata: map[string]string{"i": benchUUID(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Nodes().Get(ctx, benchUUID(19)); err != nil { // the fence: w has applied every write
		t.Fatal(err)
	}
	checkByID(t, w, 20)

	v := NewView(store) // loads the 20 nodes with build
	defer v.Close()
	if err := v.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	checkByID(t, v, 20)

	if _, err := v.Nodes().Heartbeat(ctx, benchUUID(2), map[string]string{"disk": "ok"}); err != nil {
		t.Fatal(err)
	}
	if err := v.Nodes().Delete(ctx, benchUUID(3)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Nodes().Register(ctx, Node{UUID: benchUUID(20), IPAddress: "10.0.0.2", Port: 2}); err != nil {
		t.Fatal(err)
	}
	n, err := v.Nodes().Get(ctx, benchUUID(2)) // the fence brings in node 20 too
	if err != nil || n.HealthInfo["disk"] != "ok" || n.Metadata["i"] != benchUUID(2) {
		t.Fatalf("Get after the heartbeat = %+v, %v", n, err)
	}
	if _, err := v.Nodes().Get(ctx, benchUUID(3)); err == nil {
		t.Fatal("Get of a deleted node succeeded")
	}
	if n, err := v.Nodes().Get(ctx, benchUUID(20)); err != nil || n.IPAddress != "10.0.0.2" {
		t.Fatalf("Get of a node registered through another view = %+v, %v", n, err)
	}
	checkByID(t, v, 20)

	if err := w.Nodes().Delete(ctx, benchUUID(4)); err != nil {
		t.Fatal(err)
	}
	if err := v.reload(ctx, 0); err != nil {
		t.Fatal(err)
	}
	checkByID(t, v, 19)
	if _, err := v.Nodes().Get(ctx, benchUUID(4)); err == nil {
		t.Fatal("Get of a node deleted before the reload succeeded")
	}
}
