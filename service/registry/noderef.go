package registry

import "time"

// NodeRef reads one node of a watch snapshot without assembling a Node:
// its maps are walked in place, nothing is allocated. It is what a watch
// with WatchOptions.SnapshotRefs delivers in Event.Ref, for a sender that
// encodes each node straight into its wire form. The node it reads does
// not change (the view replaces entries, it never edits one), so a NodeRef
// stays valid after the send that got it.
type NodeRef struct{ e *entry }

// Node assembles the Node that n reads.
func (n NodeRef) Node() Node { return n.e.toNode() }

// UUID is Node.UUID.
func (n NodeRef) UUID() string { return n.e.uuid }

// IPAddress is Node.IPAddress.
func (n NodeRef) IPAddress() string { return n.e.node.IP }

// Port is Node.Port.
func (n NodeRef) Port() int32 { return n.e.node.Port }

// HTTPPort is Node.HTTPPort.
func (n NodeRef) HTTPPort() int32 { return n.e.node.HTTPPort }

// Status is Node.Status.
func (n NodeRef) Status() Status { return n.e.status() }

// LastHeartbeat is Node.LastHeartbeat.
func (n NodeRef) LastHeartbeat() time.Time { return fromUnixNano(n.e.lastSeen()) }

// RegisteredAt is Node.RegisteredAt.
func (n NodeRef) RegisteredAt() time.Time { return fromUnixNano(n.e.node.RegisteredAt) }

// Metadata calls fn with each pair of Node.Metadata, in key order, until fn
// returns false.
func (n NodeRef) Metadata(fn func(k, v string) bool) { n.e.meta.each(fn) }

// HealthInfo calls fn with each pair of Node.HealthInfo, in key order,
// until fn returns false.
func (n NodeRef) HealthInfo(fn func(k, v string) bool) { n.e.health.each(fn) }
