package service_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// watchProtocols are every protocol of protocols plus the JSON codec
// (Connect and gRPC-web), whose batches the server builds as messages
// instead of encoding them from the view.
var watchProtocols = append(protocols[:len(protocols):len(protocols)],
	protocol{Name: "connect-json", Opts: []connect.ClientOption{connect.WithProtoJSON()}},
	protocol{Name: "grpcweb-json", Opts: []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
)

// seedFleet writes n nodes straight into store (registry.BulkPut), with a
// mix of statuses, ports, metadata and health info, and returns their
// uuids in ascending order.
func seedFleet(t *testing.T, store sqlkv.Store, n int) []string {
	t.Helper()
	now := time.Now()
	statuses := []registry.Status{registry.StatusActive, registry.StatusInactive, registry.StatusDecommissioning}
	nodes := make([]registry.Node, n)
	ids := make([]string, n)
	for i := range nodes {
		ids[i] = fmt.Sprintf("5eed0000-0000-4000-8000-%012d", i)
		meta := map[string]string{}
		for j := range i % 4 {
			meta[fmt.Sprintf("k%d", j)] = strings.Repeat("v", i%7+j)
		}
		var health map[string]string
		if i%3 == 0 {
			health = map[string]string{"gpu": "ok", "disk": fmt.Sprint(i)}
		}
		nodes[i] = registry.Node{UUID: ids[i], IPAddress: fmt.Sprintf("10.0.%d.%d", i/256, i%256), Port: int32(1 + i%65535),
			HTTPPort: int32(i % 2 * 8081), Status: statuses[i%len(statuses)], Metadata: meta, HealthInfo: health,
			RegisteredAt: now.Add(-time.Hour), LastHeartbeat: now}
	}
	for len(nodes) > 0 {
		k := min(len(nodes), 1000)
		if err := registry.BulkPut(t.Context(), store, nodes[:k], nil); err != nil {
			t.Fatal(err)
		}
		nodes = nodes[k:]
	}
	return ids
}

// snapshotRead is what a watch delivered up to its SNAPSHOT_END.
type snapshotRead struct {
	nodes    []*smspb.Node
	messages []*smspb.WatchNodesResponse // the SNAPSHOT messages
	end      *smspb.WatchNodesResponse
}

// readSnapshot reads SNAPSHOT messages (one node each, or batches) up to
// and including SNAPSHOT_END.
func readSnapshot(t *testing.T, recv func() (*smspb.WatchNodesResponse, error)) snapshotRead {
	t.Helper()
	var r snapshotRead
	for {
		m, err := recv()
		if err != nil {
			t.Fatalf("stream ended before its snapshot did: %v (code %v)", err, connect.CodeOf(err))
		}
		switch m.GetKind() {
		case smspb.WatchNodesResponse_KIND_SNAPSHOT:
			r.messages = append(r.messages, m)
			if m.GetNode() != nil {
				r.nodes = append(r.nodes, m.GetNode())
			}
			r.nodes = append(r.nodes, m.GetSnapshotNodes()...)
		case smspb.WatchNodesResponse_KIND_SNAPSHOT_END:
			r.end = m
			return r
		default:
			t.Fatalf("message %v before SNAPSHOT_END", m)
		}
	}
}

// connectRecv adapts connect-go's client stream to readSnapshot.
func connectRecv(stream *connect.ServerStreamForClient[smspb.WatchNodesResponse]) func() (*smspb.WatchNodesResponse, error) {
	return func() (*smspb.WatchNodesResponse, error) {
		if stream.Receive() {
			return stream.Msg(), nil
		}
		if err := stream.Err(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
}

// checkSameSnapshot fails unless batched delivered, in batches, exactly
// the nodes and version that plain delivered one per message.
func checkSameSnapshot(t *testing.T, plain, batched snapshotRead, want int) {
	t.Helper()
	if len(plain.nodes) != want || len(batched.nodes) != want {
		t.Fatalf("snapshots of %d (one per message) and %d (batched) nodes, want %d", len(plain.nodes), len(batched.nodes), want)
	}
	for i := range plain.nodes {
		if !proto.Equal(plain.nodes[i], batched.nodes[i]) {
			t.Fatalf("node %d: batched %v, one per message %v", i, batched.nodes[i], plain.nodes[i])
		}
	}
	for _, m := range plain.messages {
		if m.GetNode() == nil || len(m.GetSnapshotNodes()) != 0 {
			t.Fatalf("unbatched SNAPSHOT message %v: want one node, no snapshot_nodes", m)
		}
	}
	wantBatches := (want + 1023) / 1024
	if len(batched.messages) != wantBatches {
		t.Errorf("%d batches of %d nodes, want %d (1,024 nodes each)", len(batched.messages), want, wantBatches)
	}
	for _, r := range []snapshotRead{plain, batched} {
		for _, m := range r.messages {
			if m.GetVersion() != r.end.GetVersion() || m.GetResync() {
				t.Fatalf("SNAPSHOT version %d resync %v, want the SNAPSHOT_END's %d, not resync", m.GetVersion(), m.GetResync(), r.end.GetVersion())
			}
		}
	}
	for _, m := range batched.messages {
		if m.GetNode() != nil {
			t.Fatalf("batched SNAPSHOT message has node %v set", m.GetNode())
		}
	}
	if plain.end.GetVersion() != batched.end.GetVersion() || plain.end.GetVersion() == 0 {
		t.Errorf("snapshot versions %d (one per message) and %d (batched), want the same, not zero", plain.end.GetVersion(), batched.end.GetVersion())
	}
}

// Batched and unbatched snapshots deliver identical nodes and versions on
// every protocol (binary and JSON codecs, both server stacks), in batches
// of at most 1,024 nodes, and a change made after SNAPSHOT_END arrives
// without any further event to push it out.
func TestWatchNodesBatchSnapshot(t *testing.T) {
	t.Parallel()
	const fleet = 2100 // three batches
	for _, p := range watchProtocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			store := watchableStore(t, "memory")
			ids := seedFleet(t, store, fleet)
			e := newEnv(t, store, p, nil)
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			// A node registered through the service, with a heartbeat's
			// health info, sorts last.
			last := "ffffffff-0000-4000-8000-000000000000"
			must(e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{Uuid: last, IpAddress: "h", Port: 9,
				Metadata: map[string]string{"zone": "z"}}}))(t)
			must(e.client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: last, HealthInfo: map[string]string{"temp": "40"}}))(t)

			plainStream := must(e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{}))(t)
			defer plainStream.Close()
			plain := readSnapshot(t, connectRecv(plainStream))
			stream := must(e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{BatchSnapshot: true}))(t)
			defer stream.Close()
			batched := readSnapshot(t, connectRecv(stream))
			checkSameSnapshot(t, plain, batched, fleet+1)
			if got := batched.nodes[fleet].GetHealthInfo()["temp"]; got != "40" {
				t.Errorf("health info of the last node = %q, want 40", got)
			}

			// A change after SNAPSHOT_END is delivered on its own: nothing
			// else happens until it is received.
			must(e.client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: ids[3], Node: &smspb.Node{IpAddress: "moved", Port: 1}}))(t)
			if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_UPDATED || m.GetNode().GetIpAddress() != "moved" ||
				len(m.GetSnapshotNodes()) != 0 || m.GetVersion() <= batched.end.GetVersion() {
				t.Fatalf("message after the snapshot = %v, want UPDATED %s at moved with a later version", m, ids[3])
			}
			sentinel := e.register(t, "", "")
			if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_REGISTERED || m.GetNode().GetUuid() != sentinel {
				t.Fatalf("message = %v, want REGISTERED %s", m, sentinel)
			}
		})
	}
}

// grpc-go's generated client reads batches from both server stacks.
func TestWatchNodesBatchSnapshotGRPCGoClient(t *testing.T) {
	t.Parallel()
	store := watchableStore(t, "memory")
	seedFleet(t, store, 1500)
	e := newEnv(t, store, connectHTTP, nil)
	for name, url := range map[string]string{"http listener": e.url, "grpc-go listener": e.grpcURL} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
			defer cancel()
			client := smspb.NewNodeServiceClient(grpcGoConn(t, url))
			var reads []snapshotRead
			for _, batch := range []bool{false, true} {
				stream, err := client.WatchNodes(ctx, &smspb.WatchNodesRequest{BatchSnapshot: batch})
				if err != nil {
					t.Fatal(err)
				}
				reads = append(reads, readSnapshot(t, stream.Recv))
			}
			checkSameSnapshot(t, reads[0], reads[1], 1500)
		})
	}
}

// A watcher that falls behind the server's buffer of changes gets, with
// resync_on_lag, a fresh snapshot in the stream (marked resync) and then
// the changes after it; without, the stream ends with aborted, and the
// error says how to recover.
func TestWatchNodesResyncOnLag(t *testing.T) {
	t.Parallel()
	for _, p := range watchProtocols {
		for _, batch := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batch=%v", p.Name, batch), func(t *testing.T) {
				t.Parallel()
				store := watchableStore(t, "memory")
				e := newEnv(t, store, p, nil, registry.WithWatchBuffer(16))
				first := e.register(t, "", "")
				ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
				defer cancel()
				resyncing := must(e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{ResyncOnLag: true, BatchSnapshot: batch}))(t)
				defer resyncing.Close()
				ending := must(e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{BatchSnapshot: batch}))(t)
				defer ending.Close()
				for _, s := range []*connect.ServerStreamForClient[smspb.WatchNodesResponse]{resyncing, ending} {
					if r := readSnapshot(t, connectRecv(s)); len(r.nodes) != 1 || r.nodes[0].GetUuid() != first {
						t.Fatalf("first snapshot = %v, want %s", r.nodes, first)
					}
				}
				// 100 nodes in one write: more changes at once than the
				// buffer's 16, so both watchers fall behind.
				seedFleet(t, store, 100)

				// Whatever the watcher got before it lagged comes first.
				var pending *smspb.WatchNodesResponse
				for pending == nil {
					m := receive(t, resyncing)
					switch {
					case m.GetResync():
						pending = m
					case m.GetKind() != smspb.WatchNodesResponse_KIND_REGISTERED:
						t.Fatalf("message %v before the resync, want registrations", m)
					}
				}
				recv := connectRecv(resyncing)
				r := readSnapshot(t, func() (*smspb.WatchNodesResponse, error) {
					if m := pending; m != nil {
						pending = nil
						return m, nil
					}
					return recv()
				})
				if len(r.nodes) != 101 || !r.end.GetResync() {
					t.Fatalf("resync snapshot of %d nodes, end %v; want 101 nodes and SNAPSHOT_END resync", len(r.nodes), r.end)
				}
				for _, m := range r.messages {
					if !m.GetResync() {
						t.Fatalf("resync snapshot message %v is not marked resync", m)
					}
				}
				must(e.client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: first}))(t)
				for {
					m := receive(t, resyncing)
					if m.GetKind() == smspb.WatchNodesResponse_KIND_DELETED && m.GetNode().GetUuid() == first && !m.GetResync() {
						break
					}
					if m.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT || m.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
						t.Fatalf("message %v after the resync, want the deletion", m)
					}
				}

				for ending.Receive() {
					if m := ending.Msg(); m.GetKind() != smspb.WatchNodesResponse_KIND_REGISTERED {
						t.Fatalf("message %v on the watch without resync_on_lag, want registrations, then aborted", m)
					}
				}
				wantCode(t, ending.Err(), connect.CodeAborted)
				var ce *connect.Error
				if !errors.As(ending.Err(), &ce) || !strings.Contains(ce.Message(), "resync_on_lag") {
					t.Errorf("aborted message %q does not name resync_on_lag", ce.Message())
				}
			})
		}
	}
}
