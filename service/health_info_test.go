package service_test

import (
	"context"
	"maps"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestHealthInfoIsReadable: the health_info a heartbeat sends comes back on
// the Node of every read (GetNode, ListNodes, GetNodeWithResource, the
// WatchNodes snapshot), and is ignored on registration.
func TestHealthInfoIsReadable(t *testing.T) {
	t.Parallel()
	for _, backend := range storetest.Backends {
		for _, p := range protocols {
			t.Run(backend+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, watchableStore(t, backend), p, nil)
				checkHealthInfo(t, e)
			})
		}
	}
}

func checkHealthInfo(t *testing.T, e *env) {
	resp := must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
		IpAddress: "10.0.0.1", Port: 8080, HealthInfo: map[string]string{"ignored": "yes"},
	}}))(t)
	id := resp.GetNodeUuid()
	if n := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id}))(t).GetNode(); len(n.GetHealthInfo()) != 0 {
		t.Errorf("health_info after RegisterNode = %v, want none (it is output only)", n.GetHealthInfo())
	}
	health := map[string]string{"disk": "ok", "gpu": "degraded"}
	must(e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{Uuid: id, HealthInfo: health}))(t)

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
	if err != nil || !stream.Receive() {
		t.Fatalf("WatchNodes: %v, %v", err, stream.Err())
	}
	defer stream.Close()

	for _, read := range []struct {
		name string
		node *smspb.Node
	}{
		{"GetNode", must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id}))(t).GetNode()},
		{"ListNodes", must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{}))(t).GetNodes()[0]},
		{"GetNodeWithResource", must(e.client.GetNodeWithResource(t.Context(), &smspb.GetNodeWithResourceRequest{Uuid: id}))(t).GetNode()},
		{"WatchNodes snapshot", stream.Msg().GetNode()},
	} {
		if got := read.node.GetHealthInfo(); !maps.Equal(got, health) {
			t.Errorf("%s: health_info = %v, want %v", read.name, got, health)
		}
	}
}
