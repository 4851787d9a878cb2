package registry

import (
	"context"
	"errors"
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
	_, err = r.store.Apply(ctx,
		sqlkv.Check(nodeKey(id), sqlkv.IfExists()),
		sqlkv.Put(resourceKey(id), encode(rr)),
	)
	if errors.Is(err, sqlkv.ErrConflict) {
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
// or saying that more than MaxRequestUUIDs are listed, before anything is
// read; store errors, wrapped.
func (r *NodeResourceRegistry) List(ctx context.Context, nodeUUIDs []string) ([]Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUUIDCount("node_uuids", len(nodeUUIDs)); err != nil {
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

// ListPage returns one page of every resource report, in ascending node
// uuid order, and the token of the next page (empty on the last page).
// pageSize 0 returns every report and no token; above MaxPageSize it is
// MaxPageSize. See NodeRegistry.ListPage for how tokens behave.
//
// Errors: a *ValidationError (ErrInvalid) for a negative page size or a
// malformed token; store errors, wrapped.
func (r *NodeResourceRegistry) ListPage(ctx context.Context, pageSize int, token string) ([]Resource, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if pageSize < 0 {
		return nil, "", invalid("page_size", fmt.Sprintf("must not be negative, got %d", pageSize))
	}
	// Resource tokens carry no filters; the hash only tells them apart from
	// node tokens.
	const resourceTokenHash = 0x7265736f // "reso"
	after, err := parsePageToken("page_token", token, resourceTokenHash)
	if err != nil {
		return nil, "", err
	}
	if pageSize == 0 && after == "" {
		rs, err := r.List(ctx, nil)
		return rs, "", err
	}
	size := min(pageSize, MaxPageSize)
	if size == 0 {
		size = MaxPageSize
	}
	start := []byte(resourcePrefix)
	if after != "" {
		start = append(resourceKey(after), 0)
	}
	entries, err := r.store.Range(ctx, sqlkv.RangeOptions{
		Start: start,
		End:   sqlkv.PrefixEnd([]byte(resourcePrefix)),
		Limit: size + 1,
	})
	if err != nil {
		return nil, "", fmt.Errorf("list resources: %w", err)
	}
	more := len(entries) > size
	entries = entries[:min(len(entries), size)]
	out := make([]Resource, 0, len(entries))
	for _, e := range entries {
		rr, err := decode[resourceRecord](e.Key, e.Value)
		if err != nil {
			return nil, "", fmt.Errorf("list resources: %w", err)
		}
		out = append(out, rr.resource(uuidOf(e.Key, resourcePrefix)))
	}
	if !more {
		return out, "", nil
	}
	return out, pageToken(resourceTokenHash, out[len(out)-1].NodeUUID), nil
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
		st.TotalMemoryBytes = addSaturating(st.TotalMemoryBytes, res.TotalMemoryBytes)
		st.UsedMemoryBytes = addSaturating(st.UsedMemoryBytes, res.UsedMemoryBytes)
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
