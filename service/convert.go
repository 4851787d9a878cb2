package service

import (
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
)

// Conversions between wire messages and domain types. Timestamps travel as
// Unix seconds; the zero time is 0. Validation is the registry's job, so
// values are copied as they are (status spelling included).

func nodeFromProto(p *smspb.Node) registry.Node {
	return registry.Node{
		UUID:      p.GetUuid(),
		IPAddress: p.GetIpAddress(),
		Port:      p.GetPort(),
		HTTPPort:  p.GetHttpPort(),
		Status:    registry.Status(p.GetStatus()),
		Metadata:  p.GetMetadata(),
	}
}

func nodeToProto(n registry.Node) *smspb.Node {
	return &smspb.Node{
		Uuid:          n.UUID,
		IpAddress:     n.IPAddress,
		Port:          n.Port,
		HttpPort:      n.HTTPPort,
		Status:        string(n.Status),
		LastHeartbeat: unixSeconds(n.LastHeartbeat),
		RegisteredAt:  unixSeconds(n.RegisteredAt),
		Metadata:      n.Metadata,
		HealthInfo:    n.HealthInfo,
	}
}

func nodesToProto(ns []registry.Node) []*smspb.Node {
	out := make([]*smspb.Node, len(ns))
	for i, n := range ns {
		out[i] = nodeToProto(n)
	}
	return out
}

func resourceFromProto(p *smspb.NodeResource) registry.Resource {
	return registry.Resource{
		NodeUUID:             p.GetNodeUuid(),
		CPUUsagePercent:      p.GetCpuUsagePercent(),
		MemoryUsagePercent:   p.GetMemoryUsagePercent(),
		TotalMemoryBytes:     p.GetTotalMemoryBytes(),
		UsedMemoryBytes:      p.GetUsedMemoryBytes(),
		AvailableMemoryBytes: p.GetAvailableMemoryBytes(),
		DiskUsagePercent:     p.GetDiskUsagePercent(),
		TotalDiskBytes:       p.GetTotalDiskBytes(),
		UsedDiskBytes:        p.GetUsedDiskBytes(),
		NetworkRxBytesPerSec: p.GetNetworkRxBytesPerSec(),
		NetworkTxBytesPerSec: p.GetNetworkTxBytesPerSec(),
		LoadAverage1m:        p.GetLoadAverage_1M(),
		LoadAverage5m:        p.GetLoadAverage_5M(),
		LoadAverage15m:       p.GetLoadAverage_15M(),
		Metadata:             p.GetResourceMetadata(),
	}
}

func resourceToProto(r registry.Resource) *smspb.NodeResource {
	return &smspb.NodeResource{
		NodeUuid:             r.NodeUUID,
		CpuUsagePercent:      r.CPUUsagePercent,
		MemoryUsagePercent:   r.MemoryUsagePercent,
		TotalMemoryBytes:     r.TotalMemoryBytes,
		UsedMemoryBytes:      r.UsedMemoryBytes,
		AvailableMemoryBytes: r.AvailableMemoryBytes,
		DiskUsagePercent:     r.DiskUsagePercent,
		TotalDiskBytes:       r.TotalDiskBytes,
		UsedDiskBytes:        r.UsedDiskBytes,
		NetworkRxBytesPerSec: r.NetworkRxBytesPerSec,
		NetworkTxBytesPerSec: r.NetworkTxBytesPerSec,
		LoadAverage_1M:       r.LoadAverage1m,
		LoadAverage_5M:       r.LoadAverage5m,
		LoadAverage_15M:      r.LoadAverage15m,
		UpdatedAt:            unixSeconds(r.UpdatedAt),
		ResourceMetadata:     r.Metadata,
	}
}

func resourcesToProto(rs []registry.Resource) []*smspb.NodeResource {
	out := make([]*smspb.NodeResource, len(rs))
	for i, r := range rs {
		out[i] = resourceToProto(r)
	}
	return out
}

// unixSeconds is t in Unix seconds, with the zero time (never set) as 0
// rather than year 1's large negative number.
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}
