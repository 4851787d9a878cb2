// Package registry is SMS's domain: the node registry and the node resource
// registry, sharing one sqlkv.Store. It validates input, owns the key layout
// and the liveness rules, and speaks plain Go types; it knows nothing of
// protobuf, Connect or SQL.
//
// Key layout (each namespace has its own prefix, so a prefix scan of one
// never returns another's keys):
//
//	node:<uuid>       the node's registration: address, ports, status, metadata
//	heartbeat:<uuid>  the node's liveness: last heartbeat, health info
//	resource:<uuid>   the node's latest resource report
//	expired:<uuid>    left for watchers by the sweeper when it deletes a node
//	                  after its TTL; removed by a later sweep
//
// UUIDs are stored in canonical lower-case hyphenated form.
package registry

import (
	"errors"
	"time"
)

// Errors returned by the registries, wrapped with context; test with
// errors.Is. Store errors (sqlkv.ErrUnavailable, ...) pass through wrapped.
var (
	// ErrNotFound means the node does not exist.
	ErrNotFound = errors.New("registry: node not found")

	// ErrInvalid means the input failed validation. The error is a
	// *ValidationError naming the field.
	ErrInvalid = errors.New("registry: invalid argument")
)

// ValidationError says which field of the input is invalid and why.
// errors.Is(err, ErrInvalid) holds for it.
type ValidationError struct {
	Field  string // e.g. "node.port"
	Reason string // e.g. "must be between 1 and 65535, got 0"
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// Is makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, reason string) error { return &ValidationError{Field: field, Reason: reason} }

// Status is a node's lifecycle state; the set is closed.
type Status string

// The node statuses, in their canonical lower-case form.
const (
	StatusActive          Status = "active"
	StatusInactive        Status = "inactive"
	StatusUnhealthy       Status = "unhealthy"
	StatusDecommissioning Status = "decommissioning"
)

// Node is a registered cluster node.
type Node struct {
	UUID          string // canonical form
	IPAddress     string // an IP address or host name
	Port          int32  // 1..65535
	HTTPPort      int32  // 0..65535, 0 = none
	Status        Status
	LastHeartbeat time.Time // server clock, set by Register and Heartbeat only
	RegisteredAt  time.Time // server clock, set by the first Register
	Metadata      map[string]string
	HealthInfo    map[string]string // from the latest heartbeat
}

// Resource is a node's latest resource report.
type Resource struct {
	NodeUUID             string
	CPUUsagePercent      float64 // [0, 100]
	MemoryUsagePercent   float64 // [0, 100]
	TotalMemoryBytes     int64
	UsedMemoryBytes      int64
	AvailableMemoryBytes int64
	DiskUsagePercent     float64 // [0, 100]
	TotalDiskBytes       int64
	UsedDiskBytes        int64
	NetworkRxBytesPerSec int64
	NetworkTxBytesPerSec int64
	LoadAverage1m        float64
	LoadAverage5m        float64
	LoadAverage15m       float64
	UpdatedAt            time.Time // server clock
	Metadata             map[string]string
}

// Thresholds decide when a node counts as under high load: above CPUPercent
// or MemoryPercent, or with a 1-minute load average above LoadAverage1m.
type Thresholds struct {
	CPUPercent    float64
	MemoryPercent float64
	LoadAverage1m float64
}

// DefaultThresholds are the original SPEAR values.
var DefaultThresholds = Thresholds{CPUPercent: 80, MemoryPercent: 85, LoadAverage1m: 4.0}

// ClusterStats summarises the cluster.
type ClusterStats struct {
	TotalNodes           int64
	NodesByStatus        map[Status]int64
	NodesWithResources   int64
	AverageCPUPercent    float64 // over nodes with resources; 0 when none
	AverageMemoryPercent float64
	TotalMemoryBytes     int64
	UsedMemoryBytes      int64
	HighLoadNodes        int64
}

// ListOptions filter NodeRegistry.List and NodeRegistry.ListPage.
type ListOptions struct {
	// Status, if not empty, keeps only nodes with this status (any accepted
	// spelling, see ParseStatus); an unknown status is ErrInvalid.
	Status string
	// Metadata keeps only nodes whose metadata has every one of these
	// key/value pairs.
	Metadata map[string]string
	// PageSize is the most nodes ListPage returns; 0 means all, more than
	// MaxPageSize means MaxPageSize, negative is ErrInvalid. List ignores it.
	PageSize int
	// PageToken is the token ListPage returned for the previous page, with
	// the same Status, Metadata, Search, OrderBy and Descending; empty starts
	// at the first node. List ignores it.
	PageToken string
	// Search, if not empty, keeps only nodes matching each of its
	// whitespace-separated words, case-insensitively: a word matches when it
	// is part of the uuid, the IP address, a metadata key or value, or, with
	// an "=", of a metadata pair ("zone=eu" matches zone=eu-west). At most
	// MaxSearchLength bytes. It is not indexed: see ListPage.
	Search string
	// OrderBy is the order of ListPage (List is always by uuid); Descending
	// reverses it, uuid tie-break included.
	OrderBy    Order
	Descending bool
}

// SweepResult counts what one liveness sweep changed.
type SweepResult struct {
	MarkedUnhealthy  int // active nodes whose heartbeat expired
	DeletedNodes     int // nodes silent for longer than the node TTL
	DeletedResources int // resource records older than the heartbeat timeout or deleted with their node
}

// Liveness configures the sweeper.
type Liveness struct {
	// HeartbeatTimeout: an active node silent for longer becomes unhealthy,
	// and resource records older than this are removed. Default 90s.
	HeartbeatTimeout time.Duration
	// NodeTTL, if positive, deletes nodes of any status silent for longer,
	// with their resource records. Zero means never.
	NodeTTL time.Duration
}
