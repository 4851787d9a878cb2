package service_test

import (
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
)

func TestListNodesPages(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		for i := range 5 {
			must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
				Uuid: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), IpAddress: "h", Port: 1,
				Metadata: map[string]string{"rack": fmt.Sprint(i % 2)},
			}}))(t)
		}
		req := &smspb.ListNodesRequest{PageSize: 2, MetadataFilter: map[string]string{"rack": "0"}}
		if got := lastDigits(t, e, req); got != "024" {
			t.Errorf("pages of rack 0 = %v, want 024", got)
		}

		// page_size 0: all, no token, as for old clients.
		resp := must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{}))(t)
		if len(resp.GetNodes()) != 5 || resp.GetNextPageToken() != "" {
			t.Errorf("ListNodes{} = %d nodes, token %q; want 5 and none", len(resp.GetNodes()), resp.GetNextPageToken())
		}

		_, err := e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{PageSize: 1, PageToken: "bogus"})
		wantCode(t, err, connect.CodeInvalidArgument)
		_, err = e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{PageSize: -1})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestListNodeResourcesPages(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		for i := range 3 {
			id := e.register(t, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "")
			must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{
				Resource: &smspb.NodeResource{NodeUuid: id, CpuUsagePercent: float64(i)},
			}))(t)
		}
		var got []float64
		req := &smspb.ListNodeResourcesRequest{PageSize: 2}
		for range 10 {
			resp := must(e.client.ListNodeResources(t.Context(), req))(t)
			for _, r := range resp.GetResources() {
				got = append(got, r.GetCpuUsagePercent())
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		if fmt.Sprint(got) != "[0 1 2]" {
			t.Errorf("pages = %v, want [0 1 2]", got)
		}
		_, err := e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{
			NodeUuids: []string{"00000000-0000-4000-8000-000000000000"}, PageSize: 1,
		})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestGetClusterStats(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		a := e.register(t, "", "active")
		b := e.register(t, "", "inactive")
		e.register(t, "", "unhealthy")
		for id, r := range map[string]*smspb.NodeResource{
			a: {CpuUsagePercent: 90, MemoryUsagePercent: 10, TotalMemoryBytes: 100, UsedMemoryBytes: 10},
			b: {CpuUsagePercent: 10, MemoryUsagePercent: 30, TotalMemoryBytes: 300, UsedMemoryBytes: 90},
		} {
			r.NodeUuid = id
			must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: r}))(t)
		}
		got := must(e.client.GetClusterStats(t.Context(), &smspb.GetClusterStatsRequest{}))(t)
		want := &smspb.GetClusterStatsResponse{
			TotalNodes:                3,
			NodesByStatus:             map[string]int64{"active": 1, "inactive": 1, "unhealthy": 1, "decommissioning": 0},
			NodesWithResources:        2,
			AverageCpuUsagePercent:    50,
			AverageMemoryUsagePercent: 20,
			TotalMemoryBytes:          400,
			UsedMemoryBytes:           100,
			HighLoadNodes:             1,
		}
		if !proto.Equal(got, want) {
			t.Errorf("GetClusterStats =\n%v\nwant\n%v", got, want)
		}
	})
}
