package registry

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// Heartbeats whose callers give up mid-write (deadlines of tens of
// microseconds, so that many end while SQLite's group commit holds their
// write) leave the view where the store is: a write committed after its
// caller left is published all the same. On a watchstore that published
// only writes that returned, every node ended behind the store.
func TestViewSeesWritesWhoseCallerGaveUp(t *testing.T) {
	store := watchstore.New(storetest.Open(t, "sqlite"))
	v := NewView(store)
	t.Cleanup(v.Close)
	ctx := t.Context()
	if err := v.WaitLoaded(ctx); err != nil {
		t.Fatal(err)
	}
	const nodes = 32
	for i := range nodes {
		if _, err := v.Nodes().Register(ctx, Node{UUID: benchUUID(i), IPAddress: "10.0.0.1", Port: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Go(func() {
			for i := range 100 {
				d := time.Duration(50+(i*g)%400) * time.Microsecond
				c, cancel := context.WithTimeout(ctx, d)
				_, _ = v.Nodes().Heartbeat(c, benchUUID((g+i)%nodes), map[string]string{"i": "x"})
				cancel()
			}
		})
	}
	wg.Wait()
	// A range read answers once every write in flight has settled and been
	// published; the writes of callers that gave up may still be running.
	if _, err := store.Range(ctx, sqlkv.RangeOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := v.sync(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range nodes {
		id := benchUUID(i)
		e, err := store.Get(ctx, heartbeatKey(id))
		if err != nil {
			t.Fatal(err)
		}
		if got := v.get(id); got == nil || got.hv != e.Version {
			var hv int64
			if got != nil {
				hv = got.hv
			}
			t.Errorf("%s: heartbeat version %d in the store, %d in the view", id, e.Version, hv)
		}
	}
}
