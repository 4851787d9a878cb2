package service_test

import (
	"strconv"
	"strings"
	"testing"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
)

// Metadata beyond the registry's limits is invalid_argument on the wire,
// for every RPC that carries a map.
func TestMetadataLimitsOnTheWire(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, "memory"), p.opts, nil)
			id := e.register(t, nodeA, "")
			tooMany := map[string]string{}
			for i := range registry.MaxMetadataEntries + 1 {
				tooMany[strings.Repeat("k", i+1)] = "v"
			}
			longValue := map[string]string{"k": strings.Repeat("v", registry.MaxMetadataValueBytes+1)}

			_, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
				IpAddress: "10.0.0.1", Port: 1, Metadata: tooMany}})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.UpdateNode(t.Context(), &smspb.UpdateNodeRequest{Uuid: id, Node: &smspb.Node{
				IpAddress: "10.0.0.1", Port: 1, Metadata: longValue}})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{Uuid: id, HealthInfo: tooMany})
			wantCode(t, err, connect.CodeInvalidArgument)
			_, err = e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: &smspb.NodeResource{
				NodeUuid: id, ResourceMetadata: longValue}})
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	}
}

// grpcCode names a numeric grpc-status the way Connect does.
func grpcCode(s string) string {
	n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return "grpc-status " + s
	}
	return connect.Code(n).String()
}
