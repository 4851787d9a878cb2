package records_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/records"
)

// The benchmarks compare, for the node and resource records, in one run:
// json (the format before records v2, encoding/json into the same struct),
// proto (this package: protowire by hand, straight into the struct) and
// generated (the same fields as a generated protobuf message, sms.Node and
// sms.NodeResource, through proto.Marshal/Unmarshal: what generated private
// messages would cost, before copying into the registry's struct).
//
//	go test -run '^$' -bench . -benchmem ./internal/records/

func BenchmarkDecode(b *testing.B) {
	genNode, _ := proto.Marshal(&sms.Node{IpAddress: node.IP, Port: node.Port, HttpPort: node.HTTPPort, Status: node.Status, LastHeartbeat: heartbeat.LastHeartbeat, RegisteredAt: node.RegisteredAt, Metadata: node.Metadata})
	genRes, _ := proto.Marshal(&sms.NodeResource{
		CpuUsagePercent: resource.CPU, MemoryUsagePercent: resource.Mem, TotalMemoryBytes: resource.MemTotal,
		UsedMemoryBytes: resource.MemUsed, AvailableMemoryBytes: resource.MemAvailable, DiskUsagePercent: resource.Disk,
		TotalDiskBytes: resource.DiskTotal, UsedDiskBytes: resource.DiskUsed, NetworkRxBytesPerSec: resource.NetRx,
		NetworkTxBytesPerSec: resource.NetTx, LoadAverage_1M: resource.Load1, LoadAverage_5M: resource.Load5,
		LoadAverage_15M: resource.Load15, UpdatedAt: resource.UpdatedAt, ResourceMetadata: resource.Metadata,
	})
	cases := []struct {
		name string
		size int
		fn   func() error
	}{
		{"node/json", len(node.AppendJSON(nil)), decodeWith(node.AppendJSON(nil), records.DecodeNode)},
		{"node/proto", len(node.AppendProto(nil)), decodeWith(node.AppendProto(nil), records.DecodeNode)},
		{"node/generated", len(genNode), func() error { return proto.Unmarshal(genNode, new(sms.Node)) }},
		{"heartbeat/json", len(heartbeat.AppendJSON(nil)), decodeWith(heartbeat.AppendJSON(nil), records.DecodeHeartbeat)},
		{"heartbeat/proto", len(heartbeat.AppendProto(nil)), decodeWith(heartbeat.AppendProto(nil), records.DecodeHeartbeat)},
		{"resource/json", len(resource.AppendJSON(nil)), decodeWith(resource.AppendJSON(nil), records.DecodeResource)},
		{"resource/proto", len(resource.AppendProto(nil)), decodeWith(resource.AppendProto(nil), records.DecodeResource)},
		{"resource/generated", len(genRes), func() error { return proto.Unmarshal(genRes, new(sms.NodeResource)) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if err := c.fn(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(c.size), "bytes/record")
		})
	}
}

func decodeWith[T any](v []byte, decode func([]byte) (T, error)) func() error {
	return func() error {
		_, err := decode(v)
		return err
	}
}

func BenchmarkEncode(b *testing.B) {
	buf := make([]byte, 0, 256)
	genNode := &sms.Node{IpAddress: node.IP, Port: node.Port, HttpPort: node.HTTPPort, Status: node.Status, RegisteredAt: node.RegisteredAt, Metadata: node.Metadata}
	cases := []struct {
		name string
		fn   func() []byte
	}{
		{"node/json", func() []byte { return node.AppendJSON(nil) }},
		{"node/proto", func() []byte { return node.AppendProto(make([]byte, 0, 64)) }},
		{"node/proto-reused", func() []byte { return node.AppendProto(buf[:0]) }},
		{"node/generated", func() []byte { out, _ := proto.Marshal(genNode); return out }},
		{"heartbeat/json", func() []byte { return heartbeat.AppendJSON(nil) }},
		{"heartbeat/proto", func() []byte { return heartbeat.AppendProto(make([]byte, 0, 48)) }},
		{"resource/json", func() []byte { return resource.AppendJSON(nil) }},
		{"resource/proto", func() []byte { return resource.AppendProto(make([]byte, 0, 128)) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if len(c.fn()) == 0 {
					b.Fatal("empty")
				}
			}
		})
	}
}
