package registry

import (
	"context"
	"fmt"

	"github.com/spear-next/sms/sqlkv"
)

// NodeResourceRegistry keeps each node's latest resource report. It shares
// its store with the NodeRegistry. It is safe for concurrent use.
type NodeResourceRegistry struct {
	store sqlkv.Store
	opts  options
}

// NewNodeResourceRegistry returns a NodeResourceRegistry keeping its records
// in store, the NodeRegistry's store.
func NewNodeResourceRegistry(store sqlkv.Store, opts ...Option) *NodeResourceRegistry {
	return &NodeResourceRegistry{store: store, opts: newOptions(opts)}
}

// Update stores res as the latest report of node res.NodeUUID, with
// UpdatedAt set to the server time, and returns it as stored. It does not
// count as a heartbeat.
//
// Errors: ErrNotFound if the node does not exist; a *ValidationError
// (ErrInvalid) for bad input; store errors, wrapped.
func (r *NodeResourceRegistry) Update(ctx context.Context, res Resource) (Resource, error) {
	if err := ctx.Err(); err != nil {
		return Resource{}, err
	}
	id, err := canonicalUUID("resource.node_uuid", res.NodeUUID)
	if err != nil {
		return Resource{}, err
	}
	if err := validateResource(res); err != nil {
		return Resource{}, err
	}
	res.NodeUUID = id
	res.UpdatedAt = fromUnixNano(unixNano(r.opts.now()))
	rr := resourceToRecord(res)
	_, err = apply(ctx, r.store,
		sqlkv.Check(nodeKey(id), sqlkv.IfExists()),
		sqlkv.Put(resourceKey(id), encode(rr)),
	)
	if conditionFailed(err) {
		err = ErrNotFound
	}
	if err != nil {
		return Resource{}, fmt.Errorf("update resource %s: %w", id, err)
	}
	return rr.resource(id), nil
}

// Get returns the latest report of node nodeUUID; found is false when there
// is none (whether or not the node exists).
//
// Errors: a *ValidationError (ErrInvalid) for a malformed uuid; store errors,
// wrapped.
func (r *NodeResourceRegistry) Get(ctx context.Context, nodeUUID string) (Resource, bool, error) {
	if err := ctx.Err(); err != nil {
		return Resource{}, false, err
	}
	id, err := canonicalUUID("node_uuid", nodeUUID)
	if err != nil {
		return Resource{}, false, err
	}
	rr, _, found, err := getRecord[resourceRecord](ctx, r.store, resourceKey(id))
	if err != nil {
		return Resource{}, false, fmt.Errorf("get resource %s: %w", id, err)
	}
	if !found {
		return Resource{}, false, nil
	}
	return rr.resource(id), true, nil
}

// List returns resource reports. With no uuids it returns every report, in
// ascending uuid order, with one range read. Otherwise it returns the reports
// of the listed nodes that have one, in request order (a uuid listed twice is
// returned twice).
//
// Errors: a *ValidationError (ErrInvalid) naming the first malformed uuid,
// before anything is read; store errors, wrapped.
func (r *NodeResourceRegistry) List(ctx context.Context, nodeUUIDs []string) ([]Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(nodeUUIDs) == 0 {
		all, order, err := scanRecords[resourceRecord](ctx, r.store, resourcePrefix)
		if err != nil {
			return nil, fmt.Errorf("list resources: %w", err)
		}
		out := make([]Resource, 0, len(order))
		for _, id := range order {
			out = append(out, all[id].rec.resource(id))
		}
		return out, nil
	}
	ids := make([]string, len(nodeUUIDs))
	for i, s := range nodeUUIDs {
		id, err := canonicalUUID(fmt.Sprintf("node_uuids[%d]", i), s)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	out := make([]Resource, 0, len(ids))
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rr, _, found, err := getRecord[resourceRecord](ctx, r.store, resourceKey(id))
		if err != nil {
			return nil, fmt.Errorf("list resources: %s: %w", id, err)
		}
		if found {
			out = append(out, rr.resource(id))
		}
	}
	return out, nil
}

// IsHighLoad reports whether res exceeds the registry's thresholds (see
// WithThresholds): CPU or memory usage, or the 1-minute load average,
// strictly above its limit.
func (r *NodeResourceRegistry) IsHighLoad(res Resource) bool {
	t := r.opts.thresholds
	return res.CPUUsagePercent > t.CPUPercent ||
		res.MemoryUsagePercent > t.MemoryPercent ||
		res.LoadAverage1m > t.LoadAverage1m
}

// ClusterStats summarises every node and resource report, with three range
// reads. NodesByStatus has an entry for each of the four statuses. Averages,
// sums and the high-load count are over the nodes that have a report.
//
// Errors: store errors, wrapped.
func (r *NodeResourceRegistry) ClusterStats(ctx context.Context) (ClusterStats, error) {
	if err := ctx.Err(); err != nil {
		return ClusterStats{}, err
	}
	s, err := readNodes(ctx, r.store)
	if err != nil {
		return ClusterStats{}, fmt.Errorf("cluster stats: %w", err)
	}
	resources, resOrder, err := scanRecords[resourceRecord](ctx, r.store, resourcePrefix)
	if err != nil {
		return ClusterStats{}, fmt.Errorf("cluster stats: %w", err)
	}
	st := ClusterStats{
		TotalNodes: int64(len(s.order)),
		NodesByStatus: map[Status]int64{
			StatusActive:          0,
			StatusInactive:        0,
			StatusUnhealthy:       0,
			StatusDecommissioning: 0,
		},
	}
	for _, id := range s.order {
		hb, _ := s.heartbeat(id)
		st.NodesByStatus[effectiveStatus(s.nodes[id].rec.Status, hb)]++
	}
	var cpu, mem float64
	for _, id := range resOrder {
		// The two reads are not one snapshot: skip a report whose node
		// was deleted in between.
		if _, ok := s.nodes[id]; !ok {
			continue
		}
		res := resources[id].rec.resource(id)
		st.NodesWithResources++
		cpu += res.CPUUsagePercent
		mem += res.MemoryUsagePercent
		st.TotalMemoryBytes += res.TotalMemoryBytes
		st.UsedMemoryBytes += res.UsedMemoryBytes
		if r.IsHighLoad(res) {
			st.HighLoadNodes++
		}
	}
	if st.NodesWithResources > 0 {
		st.AverageCPUPercent = cpu / float64(st.NodesWithResources)
		st.AverageMemoryPercent = mem / float64(st.NodesWithResources)
	}
	return st, nil
}
