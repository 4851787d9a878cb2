package service_test

import (
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
)

// ListNodes' order_by, descending and search, on every backend and
// protocol (connect-go's and grpc-go's servers).
func TestListNodesOrderAndSearch(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		cpu := []float64{40, 10, 90, 10, 70}
		for i, c := range cpu {
			id := e.register(t, fmt.Sprintf("00000000-0000-4000-8000-%012d", i), []string{"active", "inactive"}[i%2])
			must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{
				Resource: &smspb.NodeResource{NodeUuid: id, CpuUsagePercent: c, MemoryUsagePercent: 100 - c},
			}))(t)
		}
		e.register(t, "00000000-0000-4000-8000-000000000009", "active") // no report
		pages := func(req *smspb.ListNodesRequest) string { return lastDigits(t, e, req) }
		for _, c := range []struct {
			req  *smspb.ListNodesRequest
			want string
		}{
			{&smspb.ListNodesRequest{PageSize: 2}, "012349"},
			{&smspb.ListNodesRequest{PageSize: 2, OrderBy: smspb.ListNodesRequest_ORDER_CPU, Descending: true}, "240319"},
			{&smspb.ListNodesRequest{PageSize: 2, OrderBy: smspb.ListNodesRequest_ORDER_CPU}, "913042"},
			{&smspb.ListNodesRequest{PageSize: 4, OrderBy: smspb.ListNodesRequest_ORDER_MEMORY}, "924013"},
			{&smspb.ListNodesRequest{PageSize: 1, OrderBy: smspb.ListNodesRequest_ORDER_STATUS}, "024913"},
			{&smspb.ListNodesRequest{PageSize: 1, OrderBy: smspb.ListNodesRequest_ORDER_CPU, StatusFilter: "inactive"}, "13"},
			{&smspb.ListNodesRequest{PageSize: 3, OrderBy: smspb.ListNodesRequest_ORDER_LAST_HEARTBEAT, Descending: true}, "943210"},
			{&smspb.ListNodesRequest{PageSize: 2, Search: "000000000004 10.0"}, "4"},
			{&smspb.ListNodesRequest{OrderBy: smspb.ListNodesRequest_ORDER_CPU, Descending: true}, "240319"}, // page_size 0: all
		} {
			if got := pages(c.req); got != c.want {
				t.Errorf("ListNodes(%v) = %s, want %s", c.req, got, c.want)
			}
		}

		for field, req := range map[string]*smspb.ListNodesRequest{
			"order_by":   {OrderBy: 99},
			"search":     {Search: strings.Repeat("x", 257)},
			"page_token": {OrderBy: smspb.ListNodesRequest_ORDER_MEMORY, PageToken: must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{PageSize: 1, OrderBy: smspb.ListNodesRequest_ORDER_CPU}))(t).GetNextPageToken()},
		} {
			_, err := e.client.ListNodes(t.Context(), req)
			wantCode(t, err, connect.CodeInvalidArgument)
			if !strings.Contains(err.Error(), field) {
				t.Errorf("ListNodes(%v) error %q does not name %s", req, err, field)
			}
		}
	})
}

// lastDigits follows the pages of req (20 at most) and returns the last
// digit of each node's uuid, in the order the pages gave them.
func lastDigits(t *testing.T, e *env, req *smspb.ListNodesRequest) string {
	t.Helper()
	var got []string
	for range 20 {
		resp := must(e.client.ListNodes(t.Context(), req))(t)
		for _, n := range resp.GetNodes() {
			got = append(got, n.GetUuid()[len(n.GetUuid())-1:])
		}
		if resp.GetNextPageToken() == "" {
			break
		}
		req.PageToken = resp.GetNextPageToken()
	}
	return strings.Join(got, "")
}
