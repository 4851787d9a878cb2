package service

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

var errSnapshotSent = errors.New("snapshot sent")

// BenchmarkWatchSnapshotServer is the server's side of a WatchNodes
// snapshot of 100,000 nodes (the shape smsbench seeds), without a network
// or a client: each message is marshalled as both stacks' codecs do and
// dropped. one-per-message is what a client without batch_snapshot gets
// (the baseline); batched-messages what a JSON client gets (nodes built as
// messages); batched-wire what a binary client gets (nodes encoded from
// the view). The nodes/s metric is the server's ceiling for one watcher.
func BenchmarkWatchSnapshotServer(b *testing.B) {
	const n = 100_000
	store := watchstore.New(memory.New())
	now := time.Now()
	nodes := make([]registry.Node, 0, 2000)
	for i := 0; i < n; i += cap(nodes) {
		nodes = nodes[:0]
		for j := i; j < min(n, i+cap(nodes)); j++ {
			nodes = append(nodes, registry.Node{UUID: fmt.Sprintf("5eed0000-0000-4000-8000-%012d", j), IPAddress: "10.0.0.1",
				Port: 8080, HTTPPort: 8081, Status: registry.StatusActive, RegisteredAt: now, LastHeartbeat: now,
				Metadata: map[string]string{"zone": "a", "rack": "r1"}, HealthInfo: map[string]string{"disk": "ok", "agent": "1.4.2"}})
		}
		if err := registry.BulkPut(b.Context(), store, nodes, nil); err != nil {
			b.Fatal(err)
		}
	}
	view := registry.NewView(store)
	b.Cleanup(view.Close)
	if err := view.WaitLoaded(b.Context()); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []struct {
		name        string
		batch, wire bool
	}{{"one-per-message", false, false}, {"batched-messages", true, false}, {"batched-wire", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			var buf []byte
			bytes := 0
			for b.Loop() {
				send := func(m *smspb.WatchNodesResponse) error {
					var err error
					buf, err = proto.MarshalOptions{}.MarshalAppend(buf[:0], m)
					bytes += len(buf)
					if err == nil && m.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
						return errSnapshotSent
					}
					return err
				}
				var opts registry.WatchOptions
				forward := forwarder(&opts, mode.batch, mode.wire, send)
				if err := view.Nodes().Watch(context.Background(), opts, forward); !errors.Is(err, errSnapshotSent) {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "nodes/s")
			b.ReportMetric(float64(bytes)/float64(b.N)/n, "B/node")
		})
	}
}
