package client_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/service/registry"
)

// watchSnapshot reads w's events up to WatchSnapshotEnd and returns the
// snapshot's nodes and the end's version.
func watchSnapshot(t *testing.T, w *client.Watcher) ([]client.Node, uint64) {
	t.Helper()
	var nodes []client.Node
	for {
		ev, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Kind {
		case client.WatchSnapshot:
			nodes = append(nodes, ev.Node)
		case client.WatchSnapshotEnd:
			return nodes, ev.Version
		default:
			t.Fatalf("event %v before the end of the snapshot", ev.Kind)
		}
	}
}

// Watch hands out a batched snapshot node by node: the same nodes and
// version as one node per message, on every protocol, then the changes.
func TestWatch(t *testing.T) {
	t.Parallel()
	store := openSQLite(t)
	const fleet = 1500 // two batches
	now := time.Now()
	nodes := make([]registry.Node, fleet)
	for i := range nodes {
		nodes[i] = registry.Node{UUID: fmt.Sprintf("5eed0000-0000-4000-8000-%012d", i), IPAddress: "10.0.0.1", Port: int32(1 + i),
			Status: registry.StatusActive, Metadata: map[string]string{"i": fmt.Sprint(i)}, RegisteredAt: now, LastHeartbeat: now}
	}
	if err := registry.BulkPut(t.Context(), store, nodes, nil); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "127.0.0.1:0", store, serverOptions{})
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			c := dial(t, srv.URL, client.WithProtocol(p))
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			plain, err := c.Watch(ctx, client.WatchOptions{OnePerMessage: true})
			if err != nil {
				t.Fatal(err)
			}
			defer plain.Close()
			want, wantVersion := watchSnapshot(t, plain)
			w, err := c.Watch(ctx, client.WatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			got, version := watchSnapshot(t, w)
			if len(got) < fleet || !reflect.DeepEqual(got, want) || version != wantVersion {
				t.Fatalf("batched snapshot of %d nodes at version %d, one per message %d at %d: want the same, at least %d",
					len(got), version, len(want), wantVersion, fleet)
			}
			id, err := c.Register(ctx, client.Node{Address: "10.9.9.9", Port: 1, Metadata: map[string]string{"via": string(p)}})
			if err != nil {
				t.Fatal(err)
			}
			for {
				ev, err := w.Next()
				if err != nil {
					t.Fatal(err)
				}
				if ev.Kind == client.WatchRegistered && ev.Node.UUID == id {
					if ev.Node.Metadata["via"] != string(p) || ev.Version <= version || ev.Resync {
						t.Errorf("event %+v, want the registration, after version %d", ev, version)
					}
					break
				}
			}
		})
	}
}
