package client

import (
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
)

// Status is a node's status.
type Status string

// The statuses of a node. On input the server also accepts "online" and
// "offline" (as active and inactive) and any case; it answers these.
const (
	StatusActive          Status = "active"
	StatusInactive        Status = "inactive"
	StatusUnhealthy       Status = "unhealthy"
	StatusDecommissioning Status = "decommissioning"
)

// Node is a registered node.
type Node struct {
	// UUID identifies the node, in canonical lower-case form when read.
	UUID string
	// Address is the node's IP address or host name.
	Address string
	// Port is the node's service port, 1..65535; HTTPPort its HTTP port,
	// 0 for none.
	Port, HTTPPort int
	// Status is the node's status; empty means active on registration.
	Status Status
	// Metadata is free-form data about the node.
	Metadata map[string]string
	// LastHeartbeat and RegisteredAt are set by the server (second
	// precision); ignored on input.
	LastHeartbeat, RegisteredAt time.Time
}

// Resource is a node's resource report.
type Resource struct {
	// NodeUUID is the node the report is about.
	NodeUUID string
	// CPUPercent, MemoryPercent and DiskPercent are usages in percent,
	// 0..100.
	CPUPercent, MemoryPercent, DiskPercent float64
	// MemoryTotal, MemoryUsed and MemoryAvailable are in bytes.
	MemoryTotal, MemoryUsed, MemoryAvailable int64
	// DiskTotal and DiskUsed are in bytes.
	DiskTotal, DiskUsed int64
	// NetworkRxPerSec and NetworkTxPerSec are in bytes per second.
	NetworkRxPerSec, NetworkTxPerSec int64
	// Load1, Load5 and Load15 are the load averages.
	Load1, Load5, Load15 float64
	// Metadata is free-form data about the report.
	Metadata map[string]string
	// UpdatedAt is when the server stored the report; ignored on input.
	UpdatedAt time.Time
}

// ClusterStats summarises the cluster (see GetClusterStats in node.proto).
type ClusterStats struct {
	TotalNodes         int64
	NodesByStatus      map[Status]int64
	NodesWithResources int64
	// AverageCPUPercent and AverageMemoryPercent are over the nodes with a
	// report.
	AverageCPUPercent, AverageMemoryPercent float64
	// MemoryTotal and MemoryUsed are the reports' sums, in bytes.
	MemoryTotal, MemoryUsed int64
	HighLoadNodes           int64
}

func unixTime(s int64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(s, 0)
}

func (n Node) proto() *smspb.Node {
	return &smspb.Node{
		Uuid: n.UUID, IpAddress: n.Address, Port: int32(n.Port), HttpPort: int32(n.HTTPPort),
		Status: string(n.Status), Metadata: n.Metadata,
	}
}

func nodeFromProto(p *smspb.Node) Node {
	return Node{
		UUID: p.GetUuid(), Address: p.GetIpAddress(), Port: int(p.GetPort()), HTTPPort: int(p.GetHttpPort()),
		Status: Status(p.GetStatus()), Metadata: p.GetMetadata(),
		LastHeartbeat: unixTime(p.GetLastHeartbeat()), RegisteredAt: unixTime(p.GetRegisteredAt()),
	}
}

func (r Resource) proto() *smspb.NodeResource {
	return &smspb.NodeResource{
		NodeUuid:             r.NodeUUID,
		CpuUsagePercent:      r.CPUPercent,
		MemoryUsagePercent:   r.MemoryPercent,
		TotalMemoryBytes:     r.MemoryTotal,
		UsedMemoryBytes:      r.MemoryUsed,
		AvailableMemoryBytes: r.MemoryAvailable,
		DiskUsagePercent:     r.DiskPercent,
		TotalDiskBytes:       r.DiskTotal,
		UsedDiskBytes:        r.DiskUsed,
		NetworkRxBytesPerSec: r.NetworkRxPerSec,
		NetworkTxBytesPerSec: r.NetworkTxPerSec,
		LoadAverage_1M:       r.Load1,
		LoadAverage_5M:       r.Load5,
		LoadAverage_15M:      r.Load15,
		ResourceMetadata:     r.Metadata,
	}
}

func resourceFromProto(p *smspb.NodeResource) Resource {
	return Resource{
		NodeUUID:        p.GetNodeUuid(),
		CPUPercent:      p.GetCpuUsagePercent(),
		MemoryPercent:   p.GetMemoryUsagePercent(),
		MemoryTotal:     p.GetTotalMemoryBytes(),
		MemoryUsed:      p.GetUsedMemoryBytes(),
		MemoryAvailable: p.GetAvailableMemoryBytes(),
		DiskPercent:     p.GetDiskUsagePercent(),
		DiskTotal:       p.GetTotalDiskBytes(),
		DiskUsed:        p.GetUsedDiskBytes(),
		NetworkRxPerSec: p.GetNetworkRxBytesPerSec(),
		NetworkTxPerSec: p.GetNetworkTxBytesPerSec(),
		Load1:           p.GetLoadAverage_1M(),
		Load5:           p.GetLoadAverage_5M(),
		Load15:          p.GetLoadAverage_15M(),
		Metadata:        p.GetResourceMetadata(),
		UpdatedAt:       unixTime(p.GetUpdatedAt()),
	}
}
