package registry

import (
	"context"
	"errors"
	"fmt"

	"github.com/spear-next/sms/sqlkv"
)

// NodeResourceRegistry keeps each node's latest resource report. It shares
// its store and view with the NodeRegistry; get it from the View
// (View.Resources). It is safe for concurrent use.
type NodeResourceRegistry struct {
	store sqlkv.Store
	opts  options
	view  *View
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

// Get returns the latest report of node nodeUUID, from the view; found is
// false when there is none (whether or not the node exists).
//
// Errors: a *ValidationError (ErrInvalid) for a malformed uuid; the view's
// errors (store errors, wrapped).
func (r *NodeResourceRegistry) Get(ctx context.Context, nodeUUID string) (Resource, bool, error) {
	if err := ctx.Err(); err != nil {
		return Resource{}, false, err
	}
	id, err := canonicalUUID("node_uuid", nodeUUID)
	if err != nil {
		return Resource{}, false, err
	}
	if err := r.view.sync(ctx); err != nil {
		return Resource{}, false, fmt.Errorf("get resource %s: %w", id, err)
	}
	e := r.view.get(id)
	if e == nil || e.res == nil {
		return Resource{}, false, nil
	}
	return e.resource(), true, nil
}

// List returns resource reports. With no uuids it returns every report, in
// ascending uuid order. Otherwise it returns the reports of the listed
// nodes that have one, in request order (a uuid listed twice is returned
// twice). It reads the view.
//
// Errors: a *ValidationError (ErrInvalid) naming the first malformed uuid,
// or saying that more than MaxRequestUUIDs are listed, before anything is
// read; the view's errors (store errors, wrapped).
func (r *NodeResourceRegistry) List(ctx context.Context, nodeUUIDs []string) ([]Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := checkUUIDCount("node_uuids", len(nodeUUIDs)); err != nil {
		return nil, err
	}
	ids := make([]string, len(nodeUUIDs))
	for i, s := range nodeUUIDs {
		id, err := canonicalUUID(fmt.Sprintf("node_uuids[%d]", i), s)
		if err != nil {
			return nil, err
		}
		ids[i] = id
	}
	if err := r.view.sync(ctx); err != nil {
		return nil, fmt.Errorf("list resources: %w", err)
	}
	if len(ids) == 0 {
		tree, _ := r.view.snapshot()
		out := make([]Resource, 0)
		tree.Ascend(func(e *entry) bool {
			if e.res != nil {
				out = append(out, e.resource())
			}
			return true
		})
		return out, nil
	}
	out := make([]Resource, 0, len(ids))
	r.view.mu.RLock()
	defer r.view.mu.RUnlock()
	for _, id := range ids {
		if e := r.view.entryOf(id); e != nil && e.res != nil {
			out = append(out, e.resource())
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
// malformed token; the view's errors (store errors, wrapped).
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
	if err := r.view.sync(ctx); err != nil {
		return nil, "", fmt.Errorf("list resources: %w", err)
	}
	out := make([]Resource, 0, size)
	more := false
	tree, _ := r.view.snapshot()
	tree.AscendGreaterOrEqual(&entry{uuid: after}, func(e *entry) bool {
		if e.uuid == after || e.res == nil {
			return true
		}
		if len(out) == size {
			more = true
			return false
		}
		out = append(out, e.resource())
		return true
	})
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

// ClusterStats summarises every node and resource report, from counters
// the view keeps (O(1), after the read fence). NodesByStatus has an entry
// for each of the four statuses. Averages, sums and the high-load count
// are over the nodes that have a report; the sums saturate at the int64
// range, and the averages are exact to 1e-6 percentage points.
//
// Errors: the view's errors (store errors, wrapped).
func (r *NodeResourceRegistry) ClusterStats(ctx context.Context) (ClusterStats, error) {
	if err := ctx.Err(); err != nil {
		return ClusterStats{}, err
	}
	if err := r.view.sync(ctx); err != nil {
		return ClusterStats{}, fmt.Errorf("cluster stats: %w", err)
	}
	r.view.mu.RLock()
	defer r.view.mu.RUnlock()
	return r.view.stats.clusterStats(), nil
}
