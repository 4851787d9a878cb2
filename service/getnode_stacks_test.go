package service_test

import (
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// GetNode on grpc-go's listener, which encodes the node straight from the
// view, answers what the Connect stack builds for a JSON client.
func TestGetNodeWireSameOnBothStacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, watchableStore(t, "memory"), connectHTTP, nil)
	ctx := t.Context()
	reg := must(e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.9", Port: 7000, HttpPort: 7001,
		Metadata: map[string]string{"zone": "a", "rack": "r1"}}}))(t)
	id := reg.GetNodeUuid()
	must(e.client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: id, HealthInfo: map[string]string{"disk": "ok"}}))(t)
	plain := must(e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "h", Port: 1}}))(t).GetNodeUuid()

	grpcGo := smspb.NewNodeServiceClient(grpcGoConn(t, e.grpcURL))
	jsonClient := smspbconnect.NewNodeServiceClient(e.http, e.url, connect.WithProtoJSON())
	for _, id := range []string{id, plain} {
		got, err := grpcGo.GetNode(ctx, &smspb.GetNodeRequest{Uuid: id})
		if err != nil {
			t.Fatal(err)
		}
		want := must(jsonClient.GetNode(ctx, &smspb.GetNodeRequest{Uuid: id}))(t)
		if !proto.Equal(got, want) || len(got.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("GetNode(%s) on grpc-go = %v, want the Connect JSON answer %v", id, got, want)
		}
	}
	if got := must(grpcGo.GetNode(ctx, &smspb.GetNodeRequest{Uuid: id}))(t); got.GetNode().GetHealthInfo()["disk"] != "ok" || got.GetNode().GetMetadata()["rack"] != "r1" {
		t.Errorf("GetNode on grpc-go = %v, want its metadata and health info", got)
	}
}
