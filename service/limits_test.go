package service_test

import (
	"math"
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
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, "memory"), p, nil)
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

// Lists of uuids in a request are bounded (registry.MaxRequestUUIDs):
// one more is invalid_argument, on ListNodeResources and WatchNodes.
func TestRequestUUIDLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, watchableStore(t, "memory"), connectHTTP, nil)
	uuids := make([]string, registry.MaxRequestUUIDs+1)
	for i := range uuids {
		uuids[i] = nodeA
	}
	_, err := e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{NodeUuids: uuids})
	wantCode(t, err, connect.CodeInvalidArgument)
	stream, err := e.client.WatchNodes(t.Context(), &smspb.WatchNodesRequest{Uuids: uuids})
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	wantCode(t, err, connect.CodeInvalidArgument)

	// At the limit, both are served.
	uuids = uuids[:registry.MaxRequestUUIDs]
	if _, err := e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{NodeUuids: uuids}); err != nil {
		t.Fatalf("ListNodeResources with %d uuids: %v", len(uuids), err)
	}
}

// Cluster sums saturate at the int64 limit instead of wrapping negative.
func TestClusterStatsSaturate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	for range 2 {
		id := e.register(t, "", "")
		must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: &smspb.NodeResource{
			NodeUuid: id, TotalMemoryBytes: math.MaxInt64, UsedMemoryBytes: math.MaxInt64}}))(t)
	}
	st := must(e.client.GetClusterStats(t.Context(), &smspb.GetClusterStatsRequest{}))(t)
	if got := st.GetTotalMemoryBytes(); got != math.MaxInt64 {
		t.Errorf("total_memory_bytes = %d, want %d (saturated)", got, int64(math.MaxInt64))
	}
	if got := st.GetUsedMemoryBytes(); got != math.MaxInt64 {
		t.Errorf("used_memory_bytes = %d, want %d (saturated)", got, int64(math.MaxInt64))
	}
}
