package service_test

import (
	"context"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// watchableStore opens backend's store as cmd/sms does: memory and SQLite
// wrapped by watchstore, Postgres as is.
func watchableStore(t *testing.T, backend string) sqlkv.Store {
	s := openStore(t, backend)
	if _, ok := s.(sqlkv.Watchable); ok {
		return s
	}
	return watchstore.New(s)
}

// receive returns the next message of stream, failing the test on an error
// or the end of the stream.
func receive(t *testing.T, stream *connect.ServerStreamForClient[smspb.WatchNodesResponse]) *smspb.WatchNodesResponse {
	t.Helper()
	if !stream.Receive() {
		t.Fatalf("stream ended: %v (code %v)", stream.Err(), connect.CodeOf(stream.Err()))
	}
	return stream.Msg()
}

func TestWatchNodes(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		for _, p := range protocols {
			t.Run(backend+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				stop := make(chan struct{})
				e := newEnv(t, watchableStore(t, backend), p, func(c *service.Config) { c.StopWatches = stop })
				first := e.register(t, "", "")

				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				stream, err := e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
				if err != nil {
					t.Fatal(err)
				}
				defer stream.Close()
				if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_SNAPSHOT || m.GetNode().GetUuid() != first {
					t.Fatalf("first message = %v, want the snapshot of %s", m, first)
				}
				if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_SNAPSHOT_END || m.GetNode() != nil {
					t.Fatalf("second message = %v, want SNAPSHOT_END", m)
				}
				second := e.register(t, "", "")
				if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_REGISTERED || m.GetNode().GetUuid() != second {
					t.Fatalf("message = %v, want REGISTERED %s", m, second)
				}
				must(e.client.UpdateNode(t.Context(), &smspb.UpdateNodeRequest{Uuid: first, Node: &smspb.Node{IpAddress: "h", Port: 1, Status: "offline"}}))(t)
				if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_STATUS_CHANGED ||
					m.GetNode().GetStatus() != "inactive" || m.GetPreviousStatus() != "active" {
					t.Fatalf("message = %v, want STATUS_CHANGED active -> inactive", m)
				}
				must(e.client.DeleteNode(t.Context(), &smspb.DeleteNodeRequest{Uuid: second}))(t)
				if m := receive(t, stream); m.GetKind() != smspb.WatchNodesResponse_KIND_DELETED || m.GetNode().GetUuid() != second {
					t.Fatalf("message = %v, want DELETED %s", m, second)
				}

				// Shutdown ends the stream with unavailable.
				close(stop)
				if stream.Receive() {
					t.Fatalf("unexpected message %v after shutdown", stream.Msg())
				}
				wantCode(t, stream.Err(), connect.CodeUnavailable)
			})
		}
	}
}

func TestWatchNodesErrors(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		for _, req := range []*smspb.WatchNodesRequest{{StatusFilter: "sleepy"}, {Uuids: []string{"nope"}}} {
			stream, err := e.client.WatchNodes(t.Context(), req)
			if err == nil {
				if stream.Receive() {
					t.Fatalf("WatchNodes(%v) sent %v", req, stream.Msg())
				}
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeInvalidArgument)
		}
		// Without a watchable store (memory and SQLite unwrapped).
		if _, ok := e.store.(sqlkv.Watchable); !ok {
			stream, err := e.client.WatchNodes(t.Context(), &smspb.WatchNodesRequest{})
			if err == nil {
				stream.Receive()
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeUnimplemented)
		}
	})
}
