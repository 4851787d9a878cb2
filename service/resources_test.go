package service_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
)

// fullResource is a report with every field set.
func fullResource(id string) *smspb.NodeResource {
	return &smspb.NodeResource{
		NodeUuid:             id,
		CpuUsagePercent:      42.5,
		MemoryUsagePercent:   61.25,
		TotalMemoryBytes:     16 << 30,
		UsedMemoryBytes:      10 << 30,
		AvailableMemoryBytes: 6 << 30,
		DiskUsagePercent:     70,
		TotalDiskBytes:       1 << 40,
		UsedDiskBytes:        700 << 30,
		NetworkRxBytesPerSec: 1_000_000,
		NetworkTxBytesPerSec: 2_000_000,
		LoadAverage_1M:       1.5,
		LoadAverage_5M:       1.25,
		LoadAverage_15M:      1,
		ResourceMetadata:     map[string]string{"gpu": "none"},
	}
}

func TestUpdateNodeResource(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")

		t.Run("stores the report with server time", func(t *testing.T) {
			before := time.Now().Unix()
			sent := fullResource(strings.ToUpper(nodeA))
			resp := must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: sent}))(t)
			if !resp.GetSuccess() || resp.GetMessage() == "" {
				t.Errorf("response = %v, want success with a message", resp)
			}
			got := must(e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: nodeA}))(t)
			if !got.GetFound() {
				t.Fatalf("GetNodeResource: found = false after UpdateNodeResource")
			}
			if at := got.GetResource().GetUpdatedAt(); at < before || at > time.Now().Unix() {
				t.Errorf("updated_at = %d, want the server's time in Unix seconds (>= %d)", at, before)
			}
			want := fullResource(nodeA)
			want.UpdatedAt = got.GetResource().GetUpdatedAt()
			if !proto.Equal(got.GetResource(), want) {
				t.Errorf("GetNodeResource = %v\nwant %v", got.GetResource(), want)
			}
		})

		t.Run("absent node is not found", func(t *testing.T) {
			_, err := e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{
				Resource: &smspb.NodeResource{NodeUuid: uuid.NewString()}})
			wantCode(t, err, connect.CodeNotFound)
		})

		invalid := map[string]*smspb.NodeResource{
			"missing resource":  nil,
			"bad uuid":          {NodeUuid: "zzz"},
			"cpu above 100":     {NodeUuid: nodeA, CpuUsagePercent: 100.5},
			"negative memory %": {NodeUuid: nodeA, MemoryUsagePercent: -1},
			"negative bytes":    {NodeUuid: nodeA, UsedDiskBytes: -1},
			"NaN load":          {NodeUuid: nodeA, LoadAverage_1M: math.NaN()},
			"infinite load":     {NodeUuid: nodeA, LoadAverage_15M: math.Inf(1)},
		}
		for name, res := range invalid {
			t.Run("rejects "+name, func(t *testing.T) {
				_, err := e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: res})
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
	})
}

func TestGetNodeResource(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")

		resp := must(e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: nodeA}))(t)
		if resp.GetFound() || resp.GetResource() != nil {
			t.Errorf("node without a report: %v, want found=false and no resource", resp)
		}
		resp = must(e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: uuid.NewString()}))(t)
		if resp.GetFound() {
			t.Errorf("absent node: found = true, want false")
		}
		_, err := e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: "bad"})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestListNodeResources(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		a := e.register(t, "00000000-0000-4000-8000-00000000000a", "")
		b := e.register(t, "00000000-0000-4000-8000-00000000000b", "")
		noReport := e.register(t, "00000000-0000-4000-8000-00000000000c", "")
		for _, id := range []string{b, a} {
			must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: fullResource(id)}))(t)
		}
		ids := func(rs []*smspb.NodeResource) string {
			var s []string
			for _, r := range rs {
				s = append(s, r.GetNodeUuid())
			}
			return strings.Join(s, ",")
		}

		all := must(e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{}))(t)
		if got, want := ids(all.GetResources()), a+","+b; got != want {
			t.Errorf("ListNodeResources() = %s, want %s", got, want)
		}
		some := must(e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{
			NodeUuids: []string{b, noReport, uuid.NewString(), strings.ToUpper(a)}}))(t)
		if got, want := ids(some.GetResources()), b+","+a; got != want {
			t.Errorf("ListNodeResources(b, none, absent, A) = %s, want %s (request order, missing left out)", got, want)
		}

		_, err := e.client.ListNodeResources(t.Context(), &smspb.ListNodeResourcesRequest{NodeUuids: []string{a, "bad"}})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestGetNodeWithResource(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")

		t.Run("absent node", func(t *testing.T) {
			resp := must(e.client.GetNodeWithResource(t.Context(), &smspb.GetNodeWithResourceRequest{Uuid: uuid.NewString()}))(t)
			if resp.GetFound() || resp.GetNode() != nil || resp.GetResource() != nil {
				t.Errorf("GetNodeWithResource = %v, want found=false and nothing else", resp)
			}
		})
		t.Run("node without a report", func(t *testing.T) {
			resp := must(e.client.GetNodeWithResource(t.Context(), &smspb.GetNodeWithResourceRequest{Uuid: nodeA}))(t)
			if !resp.GetFound() || resp.GetNode().GetUuid() != nodeA || resp.GetResource() != nil {
				t.Errorf("GetNodeWithResource = %v, want found=true, the node, resource unset", resp)
			}
		})
		t.Run("node with a report", func(t *testing.T) {
			must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{Resource: fullResource(nodeA)}))(t)
			resp := must(e.client.GetNodeWithResource(t.Context(), &smspb.GetNodeWithResourceRequest{Uuid: nodeA}))(t)
			if !resp.GetFound() || resp.GetNode().GetUuid() != nodeA ||
				resp.GetResource().GetNodeUuid() != nodeA || resp.GetResource().GetCpuUsagePercent() != 42.5 {
				t.Errorf("GetNodeWithResource = %v, want the node and its report", resp)
			}
		})
		t.Run("bad uuid", func(t *testing.T) {
			_, err := e.client.GetNodeWithResource(t.Context(), &smspb.GetNodeWithResourceRequest{Uuid: "x"})
			wantCode(t, err, connect.CodeInvalidArgument)
		})
	})
}
