package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/spear-next/sms/sqlkv"
)

// NodeRegistry registers nodes, records their heartbeats and lists them. It
// is safe for concurrent use, also by several processes sharing one store.
// Get it from a View (View.Nodes): it reads the view and writes the store.
type NodeRegistry struct {
	store sqlkv.Store
	opts  options
	view  *View
}

// View returns the view the registry reads.
func (r *NodeRegistry) View() *View { return r.view }

func (r *NodeRegistry) now() time.Time { return r.opts.now() }

// Register creates the node n, or replaces the registration of an existing
// node with the same UUID (agents re-register after restarts): address,
// ports, status and metadata are replaced, registered_at is kept, the
// heartbeat is refreshed and health_info kept. An empty n.UUID makes the
// registry generate one. It returns the node as stored.
//
// Concurrent writers of the same node never make it fail: it reads again
// and retries until its context is done (see retryConflicts).
//
// Errors: a *ValidationError (ErrInvalid) for bad input; the context's error
// if it ends first; store errors, wrapped.
func (r *NodeRegistry) Register(ctx context.Context, n Node) (Node, error) {
	if err := ctx.Err(); err != nil {
		return Node{}, err
	}
	id := uuid.NewString()
	if n.UUID != "" {
		var err error
		if id, err = canonicalUUID("node.uuid", n.UUID); err != nil {
			return Node{}, err
		}
	}
	status, err := validateNode(n)
	if err != nil {
		return Node{}, err
	}
	status, expired := storedStatus(status)
	now := unixNano(r.now())

	var out Node
	err = retryConflicts(ctx, func() error {
		old, nv, found, err := getRecord[nodeRecord](ctx, r.store, nodeKey(id))
		if err != nil {
			return err
		}
		oldHB, hv, _, err := getRecord[heartbeatRecord](ctx, r.store, heartbeatKey(id))
		if err != nil {
			return err
		}
		nr := nodeRecord{
			IP:           n.IPAddress,
			Port:         n.Port,
			HTTPPort:     n.HTTPPort,
			Status:       status,
			RegisteredAt: now,
			Metadata:     n.Metadata,
		}
		hb := heartbeatRecord{LastHeartbeat: now, Expired: expired}
		if found {
			nr.RegisteredAt = old.RegisteredAt
			hb.HealthInfo = oldHB.HealthInfo
		}
		// Both conditions: the node one detects a concurrent register or
		// delete (registered_at must come from the record we replace), the
		// heartbeat one keeps us from overwriting the health_info of a
		// heartbeat that landed after our read.
		if _, err := r.store.Apply(ctx,
			sqlkv.Put(nodeKey(id), encode(nr)).If(sqlkv.IfVersion(nv)),
			sqlkv.Put(heartbeatKey(id), encode(hb)).If(sqlkv.IfVersion(hv)),
		); err != nil {
			return err
		}
		out = assembleNode(id, nr, &hb)
		return nil
	})
	if err != nil {
		return Node{}, fmt.Errorf("register node %s: %w", id, err)
	}
	return out, nil
}

// Update replaces the address, ports, status (empty = active) and metadata
// (wholesale) of the node uuid, keeping registered_at, last_heartbeat and
// health_info, and returns the node as stored. n.UUID may be empty or name
// the same node in any accepted spelling.
//
// Concurrent Updates of one node are last-writer-wins; a concurrent
// Heartbeat is never lost (Update rewrites the heartbeat record only to
// change its expired flag, and then only if no heartbeat landed in between).
//
// Errors: ErrNotFound if the node does not exist; a *ValidationError
// (ErrInvalid) for bad input or an n.UUID naming another node; the
// context's error if it ends before the concurrent writers of the node let
// it through; store errors, wrapped.
func (r *NodeRegistry) Update(ctx context.Context, id string, n Node) (Node, error) {
	if err := ctx.Err(); err != nil {
		return Node{}, err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return Node{}, err
	}
	if n.UUID != "" {
		body, err := canonicalUUID("node.uuid", n.UUID)
		if err != nil {
			return Node{}, err
		}
		if body != id {
			return Node{}, invalid("node.uuid", fmt.Sprintf("%s does not match the request uuid %s", body, id))
		}
	}
	if _, err := validateNode(n); err != nil {
		return Node{}, err
	}
	out, err := r.rewrite(ctx, id, func(Node) Node { return n })
	if err != nil {
		return Node{}, fmt.Errorf("update node %s: %w", id, err)
	}
	return out, nil
}

// NodePatch holds the fields Patch changes; nil fields are kept.
type NodePatch struct {
	IPAddress *string
	Port      *int32
	HTTPPort  *int32
	Status    *Status            // any spelling ParseStatus accepts
	Metadata  *map[string]string // replaces the whole map
}

// Patch changes the fields of node uuid that p sets and keeps the others
// (SPEAR's PUT /api/v1/nodes/{uuid}): unlike Update, an absent field is not
// reset. The merge happens inside the same optimistic read-then-write loop as
// Update, so a concurrent write is never half-merged. It returns the node as
// stored. A node that is unhealthy and whose status p does not set stays
// unhealthy.
//
// Errors: ErrNotFound if the node does not exist; a *ValidationError
// (ErrInvalid) for a malformed uuid or a merged node that fails validation;
// ctx's error if concurrent writers kept changing the node until its
// deadline; store errors, wrapped.
func (r *NodeRegistry) Patch(ctx context.Context, id string, p NodePatch) (Node, error) {
	if err := ctx.Err(); err != nil {
		return Node{}, err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return Node{}, err
	}
	out, err := r.rewrite(ctx, id, func(n Node) Node {
		if p.IPAddress != nil {
			n.IPAddress = *p.IPAddress
		}
		if p.Port != nil {
			n.Port = *p.Port
		}
		if p.HTTPPort != nil {
			n.HTTPPort = *p.HTTPPort
		}
		if p.Status != nil {
			n.Status = *p.Status
		}
		if p.Metadata != nil {
			n.Metadata = *p.Metadata
		}
		return n
	})
	if err != nil {
		return Node{}, fmt.Errorf("patch node %s: %w", id, err)
	}
	return out, nil
}

// rewrite replaces the registration of the existing node id (canonical) with
// build(the node as read), keeping registered_at, last_heartbeat and
// health_info. build runs once per attempt, inside retryConflicts; its
// result is validated.
//
// Concurrent rewrites of one node are last-writer-wins; a concurrent
// Heartbeat is never lost (the heartbeat record is rewritten only to change
// its expired flag, and then only if no heartbeat landed in between).
func (r *NodeRegistry) rewrite(ctx context.Context, id string, build func(Node) Node) (Node, error) {
	var out Node
	err := retryConflicts(ctx, func() error {
		old, nv, found, err := getRecord[nodeRecord](ctx, r.store, nodeKey(id))
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		// The version condition guards registered_at, the one field kept
		// from the record we read, against a delete and re-register in
		// between. It also makes concurrent Updates of one node conflict,
		// although each replaces the other wholesale; every conflict means
		// one of them landed, so they all get through, in turn, well
		// within a deadline (see retryConflicts). A Patch merges the
		// fields it read, so it needs the condition anyway.
		cond := sqlkv.IfVersion(nv)
		hb, hv, hbFound, err := getRecord[heartbeatRecord](ctx, r.store, heartbeatKey(id))
		if err != nil {
			return err
		}
		if !hbFound {
			hb.LastHeartbeat = old.RegisteredAt
		}
		n := build(assembleNode(id, old, &hb))
		status, err := validateNode(n)
		if err != nil {
			return err
		}
		status, expired := storedStatus(status)
		nr := nodeRecord{
			IP:           n.IPAddress,
			Port:         n.Port,
			HTTPPort:     n.HTTPPort,
			Status:       status,
			RegisteredAt: old.RegisteredAt,
			Metadata:     n.Metadata,
		}
		ops := []sqlkv.Op{sqlkv.Put(nodeKey(id), encode(nr)).If(cond)}
		// The heartbeat record is rewritten only when the expired flag must
		// change, and then only if no heartbeat landed since our read, so
		// a rewrite never loses a heartbeat and, on the common path, does
		// not even contend with one.
		if hb.Expired != expired {
			hb.Expired = expired
			ops = append(ops, sqlkv.Put(heartbeatKey(id), encode(hb)).If(sqlkv.IfVersion(hv)))
		}
		if _, err := r.store.Apply(ctx, ops...); err != nil {
			return err
		}
		out = assembleNode(id, nr, &hb)
		return nil
	})
	return out, err
}

// Delete removes the node uuid with its heartbeat and resource records, in
// one transaction.
//
// Errors: ErrNotFound if the node does not exist; a *ValidationError
// (ErrInvalid) for a malformed uuid; store errors, wrapped.
func (r *NodeRegistry) Delete(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return err
	}
	_, err = r.store.Apply(ctx,
		sqlkv.Delete(nodeKey(id)).If(sqlkv.IfExists()),
		sqlkv.Delete(heartbeatKey(id)),
		sqlkv.Delete(resourceKey(id)),
	)
	if errors.Is(err, sqlkv.ErrConflict) { // the only condition failed
		err = ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("delete node %s: %w", id, err)
	}
	return nil
}

// Heartbeat records that the node uuid is alive: last_heartbeat becomes the
// server time, which it returns, health_info is replaced by health, and an
// unhealthy node becomes active again.
//
// It is one transaction and reads nothing: the heartbeat record holds only
// liveness, and a node record never stores status unhealthy (unhealthy is
// "active with an expired heartbeat", see storedStatus), so a blind write of
// a fresh, unexpired record is the whole state change. A node registered as
// inactive or decommissioning keeps that status.
//
// Errors: ErrNotFound if the node does not exist; a *ValidationError
// (ErrInvalid) for a malformed uuid; store errors, wrapped.
func (r *NodeRegistry) Heartbeat(ctx context.Context, id string, health map[string]string) (time.Time, error) {
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return time.Time{}, err
	}
	if err := validateMap("health_info", health); err != nil {
		return time.Time{}, err
	}
	now := unixNano(r.now())
	hb := heartbeatRecord{LastHeartbeat: now, HealthInfo: health}
	_, err = r.store.Apply(ctx,
		sqlkv.Check(nodeKey(id), sqlkv.IfExists()),
		sqlkv.Put(heartbeatKey(id), encode(hb)),
	)
	if errors.Is(err, sqlkv.ErrConflict) { // the only condition failed
		err = ErrNotFound
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("heartbeat %s: %w", id, err)
	}
	return fromUnixNano(now), nil
}

// Get returns the node uuid, from the view (see View: the read reflects
// every write acknowledged before it began).
//
// Errors: ErrNotFound if it does not exist; a *ValidationError (ErrInvalid)
// for a malformed uuid; the view's errors (store errors, wrapped).
func (r *NodeRegistry) Get(ctx context.Context, id string) (Node, error) {
	ref, err := r.GetRef(ctx, id)
	if err != nil {
		return Node{}, err
	}
	return ref.Node(), nil
}

// GetRef is Get returning the node as a NodeRef, for a sender that encodes
// it straight into its wire form: no Node or maps are built.
func (r *NodeRegistry) GetRef(ctx context.Context, id string) (NodeRef, error) {
	if err := ctx.Err(); err != nil {
		return NodeRef{}, err
	}
	id, err := canonicalUUID("uuid", id)
	if err != nil {
		return NodeRef{}, err
	}
	if err := r.view.sync(ctx); err != nil {
		return NodeRef{}, fmt.Errorf("get node %s: %w", id, err)
	}
	e := r.view.get(id)
	if e == nil || e.node == nil {
		return NodeRef{}, fmt.Errorf("get node %s: %w", id, ErrNotFound)
	}
	return NodeRef{e}, nil
}

// List returns every node in ascending uuid order, only those with status
// opts.Status if it is set (any spelling ParseStatus accepts; the filter
// applies to the status readers see, so "unhealthy" finds nodes the sweeper
// marked), with the metadata pairs of opts.Metadata and matching
// opts.Search. It ignores opts.PageSize, PageToken, OrderBy and Descending;
// see ListPage. It reads a snapshot of
// the view.
//
// Errors: a *ValidationError (ErrInvalid) for an unknown status or a search
// too long; the view's errors (store errors, wrapped).
func (r *NodeRegistry) List(ctx context.Context, opts ListOptions) ([]Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	q, err := newListQuery(ListOptions{Status: opts.Status, Metadata: opts.Metadata, Search: opts.Search})
	if err != nil {
		return nil, err
	}
	if err := r.view.sync(ctx); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	tree, _ := r.view.snapshot()
	out := make([]Node, 0, tree.Len())
	tree.Ascend(func(e *entry) bool {
		if e.node != nil && q.match(e) {
			out = append(out, e.toNode())
		}
		return true
	})
	return out, nil
}
