package registry

import (
	"context"
	"fmt"
)

// GetWithResource returns node id and its latest report (found is false
// when it has none) from one entry of the view, after one read fence: the
// node and the report are one snapshot, and the read costs what Get costs
// (on Postgres, a Get followed by NodeResourceRegistry.Get pays the fence
// twice).
//
// Errors: as Get.
func (r *NodeRegistry) GetWithResource(ctx context.Context, id string) (Node, Resource, bool, error) {
	if err := ctx.Err(); err != nil {
		return Node{}, Resource{}, false, err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return Node{}, Resource{}, false, err
	}
	if err := r.view.sync(ctx); err != nil {
		return Node{}, Resource{}, false, fmt.Errorf("get node %s with resource: %w", id, err)
	}
	e := r.view.get(id)
	if e == nil || e.node == nil {
		return Node{}, Resource{}, false, fmt.Errorf("get node %s with resource: %w", id, ErrNotFound)
	}
	if e.res == nil {
		return e.toNode(), Resource{}, false, nil
	}
	return e.toNode(), e.resource(), true, nil
}
