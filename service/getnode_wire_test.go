package service

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// wireGetNode writes the bytes proto.Marshal (deterministic: maps in key
// order, as the view keeps them) writes for the response built the usual
// way, for nodes without maps, with metadata, with health info, with both,
// and after updates; and a client decodes them as that response.
func TestWireGetNodeMatchesMarshal(t *testing.T) {
	ctx := t.Context()
	v := registry.NewView(watchstore.New(memory.New()), registry.WithClock(func() time.Time { return time.Unix(1_700_000_000, 5) }))
	defer v.Close()
	nodes := v.Nodes()
	const (
		bare     = "00000000-0000-4000-8000-000000000001"
		withMeta = "00000000-0000-4000-8000-000000000002"
		withBoth = "00000000-0000-4000-8000-000000000003"
		minimal  = "00000000-0000-4000-8000-000000000004"
	)
	for _, n := range []registry.Node{
		{UUID: bare, IPAddress: "10.0.0.1", Port: 8080, HTTPPort: 8081},
		{UUID: withMeta, IPAddress: "10.0.0.2", Port: 1, Status: registry.StatusInactive, Metadata: map[string]string{"zone": "a", "rack": "r1", "": "empty key", "e": ""}},
		{UUID: withBoth, IPAddress: "2001:db8::1", Port: 65535, HTTPPort: 1, Metadata: map[string]string{"k": "v"}},
		{UUID: minimal, IPAddress: "h", Port: 1},
	} {
		if _, err := nodes.Register(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	check := func(step, id string) {
		t.Helper()
		ref, err := nodes.GetRef(ctx, id)
		if err != nil {
			t.Fatalf("%s: GetRef(%s): %v", step, id, err)
		}
		built := &smspb.GetNodeResponse{Found: true, Node: nodeToProto(ref.Node())}
		want, err := proto.MarshalOptions{Deterministic: true}.Marshal(built)
		if err != nil {
			t.Fatal(err)
		}
		got, err := proto.Marshal(wireGetNode(ref))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: %s: wire bytes\n%x\nwant proto.Marshal's\n%x", step, id, got, want)
		}
		var decoded smspb.GetNodeResponse
		if err := proto.Unmarshal(got, &decoded); err != nil || !proto.Equal(&decoded, built) || len(decoded.ProtoReflect().GetUnknown()) != 0 {
			t.Errorf("%s: %s: decoded %v (%v), want %v", step, id, &decoded, err, built)
		}
	}
	ids := []string{bare, withMeta, withBoth, minimal}
	for _, id := range ids {
		check("registered", id)
	}
	if _, err := nodes.Heartbeat(ctx, withBoth, map[string]string{"disk": "ok", "temp": "40"}); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Heartbeat(ctx, bare, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes.Patch(ctx, withMeta, registry.NodePatch{IPAddress: ptr("10.9.9.9"), Metadata: ptr(map[string]string{"zone": "b"})}); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		check("after updates", id)
	}
}

func ptr[T any](v T) *T { return &v }

// BenchmarkGetNodeResponse is GetNode's work after the view's lookup, the
// response built and marshalled as grpc-go's codec does: the built message
// (NodeService.GetNode: Node, its two maps, the message) against
// wireGetNode's bytes, for a node with two metadata pairs and one of health
// info.
//
//	go test -run '^$' -bench GetNodeResponse -benchmem ./service/
func BenchmarkGetNodeResponse(b *testing.B) {
	v := registry.NewView(watchstore.New(memory.New()))
	defer v.Close()
	const id = "00000000-0000-4000-8000-000000000001"
	if _, err := v.Nodes().Register(b.Context(), registry.Node{UUID: id, IPAddress: "10.0.0.1", Port: 8080, HTTPPort: 8081,
		Metadata: map[string]string{"zone": "a", "rack": "r1"}}); err != nil {
		b.Fatal(err)
	}
	if _, err := v.Nodes().Heartbeat(b.Context(), id, map[string]string{"disk": "ok"}); err != nil {
		b.Fatal(err)
	}
	ref, err := v.Nodes().GetRef(b.Context(), id)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		build func() *smspb.GetNodeResponse
	}{
		{"built", func() *smspb.GetNodeResponse {
			return &smspb.GetNodeResponse{Found: true, Node: nodeToProto(ref.Node())}
		}},
		{"wire", func() *smspb.GetNodeResponse { return wireGetNode(ref) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := proto.Marshal(c.build()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
