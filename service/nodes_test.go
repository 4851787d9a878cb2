package service_test

import (
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	smspb "github.com/spear-next/sms/gen/sms"
)

const nodeA = "6f1c1b8e-3f4a-4c2e-9b7d-0a1b2c3d4e5f"

// register registers a node with the given uuid and status on port 8080.
func (e *env) register(t *testing.T, id, status string) string {
	t.Helper()
	resp := must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{
		Node: &smspb.Node{Uuid: id, IpAddress: "10.0.0.1", Port: 8080, Status: status},
	}))(t)
	return resp.GetNodeUuid()
}

func TestRegisterNode(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		t.Run("generates a canonical uuid", func(t *testing.T) {
			before := time.Now().Unix()
			resp := must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
				IpAddress: "10.0.0.5", Port: 8080, HttpPort: 8081,
				Metadata: map[string]string{"zone": "eu-1"},
			}}))(t)
			if !resp.GetSuccess() || resp.GetMessage() == "" {
				t.Errorf("response = %v, want success with a message", resp)
			}
			id, err := uuid.Parse(resp.GetNodeUuid())
			if err != nil || id.String() != resp.GetNodeUuid() {
				t.Fatalf("node_uuid = %q, want a canonical uuid", resp.GetNodeUuid())
			}

			n := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: resp.GetNodeUuid()}))(t).GetNode()
			if n.GetIpAddress() != "10.0.0.5" || n.GetPort() != 8080 || n.GetHttpPort() != 8081 ||
				n.GetStatus() != "active" || n.GetMetadata()["zone"] != "eu-1" {
				t.Errorf("GetNode = %v, want the registered node, status active", n)
			}
			if n.GetRegisteredAt() < before || n.GetLastHeartbeat() < before {
				t.Errorf("registered_at = %d, last_heartbeat = %d, want >= %d (Unix seconds)",
					n.GetRegisteredAt(), n.GetLastHeartbeat(), before)
			}
		})

		t.Run("canonicalizes uuid and status", func(t *testing.T) {
			id := e.register(t, "{"+strings.ToUpper(nodeA)+"}", "ONLINE")
			if id != nodeA {
				t.Errorf("node_uuid = %q, want %q", id, nodeA)
			}
			n := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA}))(t).GetNode()
			if got, want := n.GetStatus(), "active"; got != want {
				t.Errorf("status = %q, want %q", got, want)
			}
		})

		invalid := map[string]*smspb.RegisterNodeRequest{
			"missing node":   {},
			"bad uuid":       {Node: &smspb.Node{Uuid: "not-a-uuid", IpAddress: "10.0.0.1", Port: 1}},
			"port 0":         {Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 0}},
			"port 65536":     {Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 65536}},
			"http port -1":   {Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1, HttpPort: -1}},
			"no address":     {Node: &smspb.Node{Port: 1}},
			"unknown status": {Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1, Status: "sleeping"}},
		}
		for name, req := range invalid {
			t.Run("rejects "+name, func(t *testing.T) {
				_, err := e.client.RegisterNode(t.Context(), req)
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
	})
}

func TestUpdateNode(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")
		before := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA}))(t).GetNode()

		t.Run("replaces address, ports, status and metadata", func(t *testing.T) {
			resp := must(e.client.UpdateNode(t.Context(), &smspb.UpdateNodeRequest{Uuid: nodeA, Node: &smspb.Node{
				IpAddress: "node-a.example", Port: 9090, HttpPort: 9091, Status: "Decommissioning",
				Metadata: map[string]string{"rack": "7"},
			}}))(t)
			if !resp.GetSuccess() || resp.GetMessage() == "" {
				t.Errorf("response = %v, want success with a message", resp)
			}
			n := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA}))(t).GetNode()
			if n.GetIpAddress() != "node-a.example" || n.GetPort() != 9090 || n.GetHttpPort() != 9091 ||
				n.GetStatus() != "decommissioning" || len(n.GetMetadata()) != 1 || n.GetMetadata()["rack"] != "7" {
				t.Errorf("GetNode = %v, want the update applied", n)
			}
			if n.GetRegisteredAt() != before.GetRegisteredAt() {
				t.Errorf("registered_at = %d, want it kept (%d)", n.GetRegisteredAt(), before.GetRegisteredAt())
			}
		})

		t.Run("absent node is not found", func(t *testing.T) {
			_, err := e.client.UpdateNode(t.Context(), &smspb.UpdateNodeRequest{
				Uuid: uuid.NewString(), Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
			wantCode(t, err, connect.CodeNotFound)
		})

		invalid := map[string]*smspb.UpdateNodeRequest{
			"missing node":   {Uuid: nodeA},
			"bad uuid":       {Uuid: "nope", Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}},
			"other uuid":     {Uuid: nodeA, Node: &smspb.Node{Uuid: uuid.NewString(), IpAddress: "10.0.0.1", Port: 1}},
			"port 0":         {Uuid: nodeA, Node: &smspb.Node{IpAddress: "10.0.0.1"}},
			"unknown status": {Uuid: nodeA, Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1, Status: "gone"}},
		}
		for name, req := range invalid {
			t.Run("rejects "+name, func(t *testing.T) {
				_, err := e.client.UpdateNode(t.Context(), req)
				wantCode(t, err, connect.CodeInvalidArgument)
			})
		}
	})
}

func TestDeleteNode(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")
		must(e.client.UpdateNodeResource(t.Context(), &smspb.UpdateNodeResourceRequest{
			Resource: &smspb.NodeResource{NodeUuid: nodeA, CpuUsagePercent: 10}}))(t)

		resp := must(e.client.DeleteNode(t.Context(), &smspb.DeleteNodeRequest{Uuid: strings.ToUpper(nodeA)}))(t)
		if !resp.GetSuccess() || resp.GetMessage() == "" {
			t.Errorf("response = %v, want success with a message", resp)
		}
		_, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA})
		wantCode(t, err, connect.CodeNotFound)
		res := must(e.client.GetNodeResource(t.Context(), &smspb.GetNodeResourceRequest{NodeUuid: nodeA}))(t)
		if res.GetFound() {
			t.Errorf("GetNodeResource after delete: found = true, want the resource deleted with the node")
		}

		_, err = e.client.DeleteNode(t.Context(), &smspb.DeleteNodeRequest{Uuid: nodeA})
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.client.DeleteNode(t.Context(), &smspb.DeleteNodeRequest{Uuid: "x"})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "unhealthy")

		before := time.Now().Unix()
		resp := must(e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{
			Uuid: nodeA, Timestamp: 42, HealthInfo: map[string]string{"disk": "ok"}}))(t)
		after := time.Now().Unix()
		if !resp.GetSuccess() || resp.GetMessage() == "" {
			t.Errorf("response = %v, want success with a message", resp)
		}
		if ts := resp.GetServerTimestamp(); ts < before || ts > after {
			t.Errorf("server_timestamp = %d, want the server's time in Unix seconds, in [%d, %d]", ts, before, after)
		}
		n := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA}))(t).GetNode()
		if got, want := n.GetStatus(), "active"; got != want {
			t.Errorf("status after heartbeat = %q, want %q", got, want)
		}
		if got, want := n.GetLastHeartbeat(), resp.GetServerTimestamp(); got != want {
			t.Errorf("last_heartbeat = %d, want server_timestamp %d", got, want)
		}

		_, err := e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{Uuid: uuid.NewString()})
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.client.Heartbeat(t.Context(), &smspb.HeartbeatRequest{Uuid: ""})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestListNodes(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		ids := []string{
			"00000000-0000-4000-8000-000000000003",
			"00000000-0000-4000-8000-000000000001",
			"00000000-0000-4000-8000-000000000002",
		}
		e.register(t, ids[0], "active")
		e.register(t, ids[1], "offline")
		e.register(t, ids[2], "inactive")

		uuids := func(ns []*smspb.Node) string {
			var s []string
			for _, n := range ns {
				s = append(s, n.GetUuid())
			}
			return strings.Join(s, ",")
		}
		all := must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{}))(t)
		if got, want := uuids(all.GetNodes()), ids[1]+","+ids[2]+","+ids[0]; got != want {
			t.Errorf("ListNodes = %s, want all in ascending uuid order %s", got, want)
		}
		inactive := must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{StatusFilter: "Offline"}))(t)
		if got, want := uuids(inactive.GetNodes()), ids[1]+","+ids[2]; got != want {
			t.Errorf("ListNodes(offline) = %s, want %s", got, want)
		}
		none := must(e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{StatusFilter: "unhealthy"}))(t)
		if got := len(none.GetNodes()); got != 0 {
			t.Errorf("ListNodes(unhealthy) returned %d nodes, want 0", got)
		}

		_, err := e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{StatusFilter: "asleep"})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}

func TestGetNode(t *testing.T) {
	t.Parallel()
	eachWire(t, func(t *testing.T, e *env) {
		e.register(t, nodeA, "")
		resp := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: strings.ReplaceAll(nodeA, "-", "")}))(t)
		if !resp.GetFound() || resp.GetNode().GetUuid() != nodeA {
			t.Errorf("GetNode = %v, want found node %s", resp, nodeA)
		}

		_, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: uuid.NewString()})
		wantCode(t, err, connect.CodeNotFound)
		_, err = e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: "1234"})
		wantCode(t, err, connect.CodeInvalidArgument)
	})
}
