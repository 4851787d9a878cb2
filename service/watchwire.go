package service

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
)

// The field numbers of sms.Node and of WatchNodesResponse.snapshot_nodes
// (proto/sms/node.proto) that appendNode and wireBatch write;
// TestWatchNodesBatchSnapshot holds what they write to proto.Marshal's.
const (
	nodeUUID          protowire.Number = 1
	nodeIPAddress     protowire.Number = 2
	nodePort          protowire.Number = 3
	nodeStatus        protowire.Number = 4
	nodeLastHeartbeat protowire.Number = 5
	nodeRegisteredAt  protowire.Number = 6
	nodeMetadata      protowire.Number = 7
	nodeHTTPPort      protowire.Number = 8
	nodeHealthInfo    protowire.Number = 100

	responseSnapshotNodes protowire.Number = 6
	getNodeResponseNode   protowire.Number = 2
)

// appendNode appends n encoded as an sms.Node message: what proto.Marshal
// of nodeToProto(n.Node()) decodes to, written from the view's entry
// without building the Node, its two maps or the message.
func appendNode(b []byte, n registry.NodeRef) []byte {
	b = appendString(b, nodeUUID, n.UUID())
	b = appendString(b, nodeIPAddress, n.IPAddress())
	b = appendVarint(b, nodePort, uint64(n.Port()))
	b = appendString(b, nodeStatus, string(n.Status()))
	b = appendVarint(b, nodeLastHeartbeat, uint64(unixSeconds(n.LastHeartbeat())))
	b = appendVarint(b, nodeRegisteredAt, uint64(unixSeconds(n.RegisteredAt())))
	n.Metadata(func(k, v string) bool {
		b = appendMapEntry(b, nodeMetadata, k, v)
		return true
	})
	b = appendVarint(b, nodeHTTPPort, uint64(n.HTTPPort()))
	n.HealthInfo(func(k, v string) bool {
		b = appendMapEntry(b, nodeHealthInfo, k, v)
		return true
	})
	return b
}

// appendString appends a string field, omitted when empty (proto3).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), s)
}

// appendVarint appends an int32 or int64 field (int32 values sign-extended,
// as protobuf encodes them), omitted when zero (proto3).
func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

// appendMapEntry appends one entry of a map<string, string> field.
func appendMapEntry(b []byte, num protowire.Number, k, v string) []byte {
	size := protowire.SizeTag(1) + protowire.SizeBytes(len(k)) + protowire.SizeTag(2) + protowire.SizeBytes(len(v))
	b = protowire.AppendVarint(protowire.AppendTag(b, num, protowire.BytesType), uint64(size))
	b = protowire.AppendString(protowire.AppendTag(b, 1, protowire.BytesType), k)
	return protowire.AppendString(protowire.AppendTag(b, 2, protowire.BytesType), v)
}

// wireBatch is a batch of snapshot nodes already in wire form: each an
// encoded snapshot_nodes field (tag, length, sms.Node bytes), in order.
type wireBatch struct {
	buf     []byte
	scratch []byte
	nodes   int
}

// add appends n to the batch.
func (w *wireBatch) add(n registry.NodeRef) {
	w.scratch = appendNode(w.scratch[:0], n)
	w.buf = protowire.AppendBytes(protowire.AppendTag(w.buf, responseSnapshotNodes, protowire.BytesType), w.scratch)
	w.nodes++
}

// into makes the batch resp's snapshot_nodes and empties the batch. The
// bytes ride as resp's unknown fields, which protobuf writes out verbatim:
// on the wire they are snapshot_nodes, and a client decodes them as such.
// resp must be marshalled (sent) before the batch is filled again, which
// reuses the buffer: both server stacks marshal in Send.
func (w *wireBatch) into(resp *smspb.WatchNodesResponse) {
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(w.buf))
	w.buf, w.nodes = w.buf[:0], 0
}

// wireGetNode returns GetNode's response for n with the node written
// straight from the view's entry (appendNode): found is a field of the
// message, the node's bytes (an encoded node field) ride as its unknown
// fields, which protobuf writes out verbatim and a client decodes as node.
// Only for a binary protobuf client: JSON drops unknown fields.
func wireGetNode(n registry.NodeRef) *smspb.GetNodeResponse {
	node := appendNode(make([]byte, 0, 192), n)
	raw := make([]byte, 0, protowire.SizeTag(getNodeResponseNode)+protowire.SizeBytes(len(node)))
	raw = protowire.AppendBytes(protowire.AppendTag(raw, getNodeResponseNode, protowire.BytesType), node)
	resp := &smspb.GetNodeResponse{Found: true}
	resp.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
	return resp
}
