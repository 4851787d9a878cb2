package service

import (
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/spear-next/sms/service/registry"
)

// The node and resource routes of the SPEAR HTTP gateway. The JSON types
// below are SPEAR's shapes, field for field and in its order.

// nodeJSON is SPEAR's node object.
type nodeJSON struct {
	UUID          string            `json:"uuid"`
	IPAddress     string            `json:"ip_address"`
	Port          int32             `json:"port"`
	HTTPPort      int32             `json:"http_port"`
	Status        string            `json:"status"`
	LastHeartbeat int64             `json:"last_heartbeat"`
	RegisteredAt  int64             `json:"registered_at"`
	Metadata      map[string]string `json:"metadata"`
}

func toNodeJSON(n registry.Node) nodeJSON {
	return nodeJSON{
		UUID:          n.UUID,
		IPAddress:     n.IPAddress,
		Port:          n.Port,
		HTTPPort:      n.HTTPPort,
		Status:        string(n.Status),
		LastHeartbeat: unixSeconds(n.LastHeartbeat),
		RegisteredAt:  unixSeconds(n.RegisteredAt),
		Metadata:      nonNil(n.Metadata),
	}
}

// resourceFields are SPEAR's flat resource object without its node_uuid
// (GetNodeWithResource nests it so).
type resourceFields struct {
	CPUUsagePercent      float64           `json:"cpu_usage_percent"`
	MemoryUsagePercent   float64           `json:"memory_usage_percent"`
	TotalMemoryBytes     int64             `json:"total_memory_bytes"`
	UsedMemoryBytes      int64             `json:"used_memory_bytes"`
	AvailableMemoryBytes int64             `json:"available_memory_bytes"`
	DiskUsagePercent     float64           `json:"disk_usage_percent"`
	TotalDiskBytes       int64             `json:"total_disk_bytes"`
	UsedDiskBytes        int64             `json:"used_disk_bytes"`
	NetworkRxBytesPerSec int64             `json:"network_rx_bytes_per_sec"`
	NetworkTxBytesPerSec int64             `json:"network_tx_bytes_per_sec"`
	LoadAverage1m        float64           `json:"load_average_1m"`
	LoadAverage5m        float64           `json:"load_average_5m"`
	LoadAverage15m       float64           `json:"load_average_15m"`
	UpdatedAt            int64             `json:"updated_at"`
	ResourceMetadata     map[string]string `json:"resource_metadata"`
}

// resourceJSON is SPEAR's flat resource object.
type resourceJSON struct {
	NodeUUID string `json:"node_uuid"`
	resourceFields
}

func toResourceFields(r registry.Resource) resourceFields {
	return resourceFields{
		CPUUsagePercent:      r.CPUUsagePercent,
		MemoryUsagePercent:   r.MemoryUsagePercent,
		TotalMemoryBytes:     r.TotalMemoryBytes,
		UsedMemoryBytes:      r.UsedMemoryBytes,
		AvailableMemoryBytes: r.AvailableMemoryBytes,
		DiskUsagePercent:     r.DiskUsagePercent,
		TotalDiskBytes:       r.TotalDiskBytes,
		UsedDiskBytes:        r.UsedDiskBytes,
		NetworkRxBytesPerSec: r.NetworkRxBytesPerSec,
		NetworkTxBytesPerSec: r.NetworkTxBytesPerSec,
		LoadAverage1m:        r.LoadAverage1m,
		LoadAverage5m:        r.LoadAverage5m,
		LoadAverage15m:       r.LoadAverage15m,
		UpdatedAt:            unixSeconds(r.UpdatedAt),
		ResourceMetadata:     nonNil(r.Metadata),
	}
}

func toResourceJSON(r registry.Resource) resourceJSON {
	return resourceJSON{NodeUUID: r.NodeUUID, resourceFields: toResourceFields(r)}
}

// nodeWithResourceJSON is SPEAR's GET .../with-resource answer (SMS adds
// http_port).
type nodeWithResourceJSON struct {
	UUID          string            `json:"uuid"`
	IPAddress     string            `json:"ip_address"`
	Port          int32             `json:"port"`
	HTTPPort      int32             `json:"http_port"`
	Status        string            `json:"status"`
	Metadata      map[string]string `json:"metadata"`
	RegisteredAt  int64             `json:"registered_at"`
	LastHeartbeat int64             `json:"last_heartbeat"`
	Resource      *resourceFields   `json:"resource,omitempty"`
}

// okJSON is SPEAR's answer to a successful write.
type okJSON struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

func ok(msg string) okJSON { return okJSON{Success: true, Message: msg} }

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// nodeBody is the body of POST /api/v1/nodes and PUT /api/v1/nodes/{uuid};
// absent fields are nil. Integers are decoded as int64 and range-checked,
// so that no value is truncated on the way to the registry.
type nodeBody struct {
	IPAddress *string            `json:"ip_address"`
	Port      *int64             `json:"port"`
	HTTPPort  *int64             `json:"http_port"`
	Status    *string            `json:"status"`
	Metadata  *map[string]string `json:"metadata"`
}

// port32 converts a port that must fit in an int32 on its way to the
// registry, which checks the real range and names the field.
func port32(field string, v int64, lowest int64) (int32, error) {
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, &registry.ValidationError{Field: field, Reason: fmt.Sprintf("must be %d..65535, got %d", lowest, v)}
	}
	return int32(v), nil
}

func (g *gateway) registerNode(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	var b nodeBody
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	switch {
	case b.IPAddress == nil:
		return 0, nil, missing("ip_address")
	case b.Port == nil:
		return 0, nil, missing("port")
	}
	n := registry.Node{IPAddress: *b.IPAddress}
	var err error
	if n.Port, err = port32("node.port", *b.Port, 1); err != nil {
		return 0, nil, err
	}
	if b.HTTPPort != nil {
		if n.HTTPPort, err = port32("node.http_port", *b.HTTPPort, 0); err != nil {
			return 0, nil, err
		}
	}
	if b.Metadata != nil {
		n.Metadata = *b.Metadata
	}
	// SPEAR's register takes no status: a registered node is active.
	n, err = g.nodes.Register(r.Context(), n)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, struct {
		Success  bool   `json:"success"`
		Message  string `json:"message"`
		NodeUUID string `json:"node_uuid"`
	}{true, "Node registered successfully", n.UUID}, nil
}

func (g *gateway) listNodes(r *http.Request) (int, any, error) {
	q, err := query(r, "status")
	if err != nil {
		return 0, nil, err
	}
	status := q.Get("status")
	if status != "" {
		if _, err := registry.ParseStatus(status); err != nil {
			return 0, nil, badRequest("query parameter \"status\": unknown status %q; want active, inactive, unhealthy, decommissioning, online or offline", clip(status))
		}
	}
	nodes, err := g.nodes.List(r.Context(), registry.ListOptions{Status: status})
	if err != nil {
		return 0, nil, err
	}
	out := make([]nodeJSON, len(nodes))
	for i, n := range nodes {
		out[i] = toNodeJSON(n)
	}
	return http.StatusOK, struct {
		Success bool       `json:"success"`
		Nodes   []nodeJSON `json:"nodes"`
	}{true, out}, nil
}

func (g *gateway) getNode(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	n, err := g.nodes.Get(r.Context(), r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		Success bool     `json:"success"`
		Node    nodeJSON `json:"node"`
	}{true, toNodeJSON(n)}, nil
}

func (g *gateway) updateNode(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	id, err := registry.CanonicalUUID(r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	var b nodeBody
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	p := registry.NodePatch{IPAddress: b.IPAddress, Metadata: b.Metadata}
	if b.Port != nil {
		port, err := port32("node.port", *b.Port, 1)
		if err != nil {
			return 0, nil, err
		}
		p.Port = &port
	}
	if b.HTTPPort != nil {
		port, err := port32("node.http_port", *b.HTTPPort, 0)
		if err != nil {
			return 0, nil, err
		}
		p.HTTPPort = &port
	}
	if b.Status != nil {
		s := registry.Status(*b.Status)
		p.Status = &s
	}
	if _, err := g.nodes.Patch(r.Context(), id, p); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok("Node updated successfully"), nil
}

func (g *gateway) deleteNode(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	if err := g.nodes.Delete(r.Context(), r.PathValue("uuid")); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok("Node deleted successfully"), nil
}

func (g *gateway) heartbeat(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	id, err := registry.CanonicalUUID(r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	var b struct {
		HealthInfo map[string]string `json:"health_info"`
	}
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	if _, err := g.nodes.Heartbeat(r.Context(), id, b.HealthInfo); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok("Heartbeat received"), nil
}

// resourceBody is the body of PUT /api/v1/nodes/{uuid}/resource; absent
// fields are 0. Counters are decoded as uint64 (SPEAR's type: a negative one
// is 422) and must fit in an int64 (400), rather than wrap around as
// SPEAR's cast does.
type resourceBody struct {
	CPUUsagePercent      float64           `json:"cpu_usage_percent"`
	MemoryUsagePercent   float64           `json:"memory_usage_percent"`
	DiskUsagePercent     float64           `json:"disk_usage_percent"`
	LoadAverage1m        float64           `json:"load_average_1m"`
	LoadAverage5m        float64           `json:"load_average_5m"`
	LoadAverage15m       float64           `json:"load_average_15m"`
	TotalMemoryBytes     uint64            `json:"total_memory_bytes"`
	UsedMemoryBytes      uint64            `json:"used_memory_bytes"`
	AvailableMemoryBytes uint64            `json:"available_memory_bytes"`
	TotalDiskBytes       uint64            `json:"total_disk_bytes"`
	UsedDiskBytes        uint64            `json:"used_disk_bytes"`
	NetworkRxBytesPerSec uint64            `json:"network_rx_bytes_per_sec"`
	NetworkTxBytesPerSec uint64            `json:"network_tx_bytes_per_sec"`
	ResourceMetadata     map[string]string `json:"resource_metadata"`
}

func (b resourceBody) resource(id string) (registry.Resource, error) {
	res := registry.Resource{
		NodeUUID:           id,
		CPUUsagePercent:    b.CPUUsagePercent,
		MemoryUsagePercent: b.MemoryUsagePercent,
		DiskUsagePercent:   b.DiskUsagePercent,
		LoadAverage1m:      b.LoadAverage1m,
		LoadAverage5m:      b.LoadAverage5m,
		LoadAverage15m:     b.LoadAverage15m,
		Metadata:           b.ResourceMetadata,
	}
	for _, c := range []struct {
		field string
		v     uint64
		dst   *int64
	}{
		{"total_memory_bytes", b.TotalMemoryBytes, &res.TotalMemoryBytes},
		{"used_memory_bytes", b.UsedMemoryBytes, &res.UsedMemoryBytes},
		{"available_memory_bytes", b.AvailableMemoryBytes, &res.AvailableMemoryBytes},
		{"total_disk_bytes", b.TotalDiskBytes, &res.TotalDiskBytes},
		{"used_disk_bytes", b.UsedDiskBytes, &res.UsedDiskBytes},
		{"network_rx_bytes_per_sec", b.NetworkRxBytesPerSec, &res.NetworkRxBytesPerSec},
		{"network_tx_bytes_per_sec", b.NetworkTxBytesPerSec, &res.NetworkTxBytesPerSec},
	} {
		if c.v > math.MaxInt64 {
			return registry.Resource{}, &registry.ValidationError{Field: "resource." + c.field,
				Reason: fmt.Sprintf("must be at most %d, got %d", int64(math.MaxInt64), c.v)}
		}
		*c.dst = int64(c.v)
	}
	return res, nil
}

func (g *gateway) putResource(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	id, err := registry.CanonicalUUID(r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	var b resourceBody
	if err := g.decodeBody(r, &b); err != nil {
		return 0, nil, err
	}
	res, err := b.resource(id)
	if err != nil {
		return 0, nil, err
	}
	if _, err := g.resources.Update(r.Context(), res); err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ok("Resource updated successfully"), nil
}

// errNoResource answers GET .../resource of a node without a report.
var errNoResource = &requestError{status: http.StatusNotFound, msg: "Resource not found"}

func (g *gateway) getResource(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	res, found, err := g.resources.Get(r.Context(), r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	if !found {
		return 0, nil, errNoResource
	}
	return http.StatusOK, toResourceJSON(res), nil
}

func (g *gateway) listResources(r *http.Request) (int, any, error) {
	q, err := query(r, "node_uuids")
	if err != nil {
		return 0, nil, err
	}
	var ids []string
	if list := q.Get("node_uuids"); list != "" {
		for i, s := range strings.Split(list, ",") {
			s = strings.TrimSpace(s)
			id, err := registry.CanonicalUUID(s)
			if err != nil {
				return 0, nil, badRequest("query parameter \"node_uuids\": entry %d: not a UUID: %q", i, clip(s))
			}
			ids = append(ids, id)
		}
	}
	rs, err := g.resources.List(r.Context(), ids)
	if err != nil {
		return 0, nil, err
	}
	out := make([]resourceJSON, len(rs))
	for i, res := range rs {
		out[i] = toResourceJSON(res)
	}
	return http.StatusOK, struct {
		Resources []resourceJSON `json:"resources"`
	}{out}, nil
}

func (g *gateway) getNodeWithResource(r *http.Request) (int, any, error) {
	if _, err := query(r); err != nil {
		return 0, nil, err
	}
	n, res, found, err := g.nodes.GetWithResource(r.Context(), r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	out := nodeWithResourceJSON{
		UUID:          n.UUID,
		IPAddress:     n.IPAddress,
		Port:          n.Port,
		HTTPPort:      n.HTTPPort,
		Status:        string(n.Status),
		Metadata:      nonNil(n.Metadata),
		RegisteredAt:  unixSeconds(n.RegisteredAt),
		LastHeartbeat: unixSeconds(n.LastHeartbeat),
	}
	if found {
		f := toResourceFields(res)
		out.Resource = &f
	}
	return http.StatusOK, out, nil
}
