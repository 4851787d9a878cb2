package registry

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// DefaultHeartbeatTimeout is Liveness.HeartbeatTimeout when it is zero.
const DefaultHeartbeatTimeout = 90 * time.Second

// Sweep applies the liveness rules once, at the registry clock's now:
//
//   - an active node whose last heartbeat is older than l.HeartbeatTimeout
//     becomes unhealthy (inactive and decommissioning nodes are left alone);
//   - if l.NodeTTL > 0, a node of any status whose last heartbeat is older
//     than l.NodeTTL is deleted with its heartbeat and resource records;
//   - a resource record older than l.HeartbeatTimeout is deleted.
//
// Every change is conditional on the versions this sweep read, so a
// heartbeat, update or delete that lands in between wins and the change is
// skipped. That also makes concurrent sweeps by several replicas safe: each
// transition is made, and counted, by exactly one of them, and so reaches
// watchers exactly once.
//
// Why conditional writes rather than a leader elected with a Postgres
// advisory lock: they work the same on every backend (one code path, tested
// on memory and SQLite too); there is no lock to lose silently when a
// leader's connection drops mid-sweep, and no failover delay; and they are
// needed anyway, because a heartbeat can land between a sweep's read and its
// write even with a single sweeper. The price is that every replica reads
// all nodes on each sweep, and replicas racing for one transition waste an
// Apply each; both are small next to the heartbeats themselves.
//
// Deadlines are computed from the stored heartbeat and report times, never
// from in-memory timers, so a restart neither extends nor shortens them.
// A node deleted after its TTL leaves an expired:<uuid> record for watchers
// (see Watch), which a sweep one heartbeat timeout later removes.
//
// Errors: the context's error; store errors other than conflicts, wrapped.
// The result counts what was changed before an error.
func (r *NodeRegistry) Sweep(ctx context.Context, l Liveness) (SweepResult, error) {
	var res SweepResult
	if err := ctx.Err(); err != nil {
		return res, err
	}
	timeout := l.HeartbeatTimeout
	if timeout <= 0 {
		timeout = DefaultHeartbeatTimeout
	}
	now := r.now()
	staleBefore := unixNano(now.Add(-timeout))
	var deadBefore int64
	if l.NodeTTL > 0 {
		deadBefore = unixNano(now.Add(-l.NodeTTL))
	}

	s, err := readNodes(ctx, r.store)
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	resources, resOrder, err := scanRecords[resourceRecord](ctx, r.store, resourcePrefix)
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}

	for _, id := range s.order {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		nv := s.nodes[id].version
		hb, hv := s.heartbeat(id)
		switch {
		case l.NodeTTL > 0 && hb.LastHeartbeat < deadBefore:
			results, err := r.store.Apply(ctx,
				sqlkv.Delete(nodeKey(id)).If(sqlkv.IfVersion(nv)),
				sqlkv.Delete(heartbeatKey(id)).If(sqlkv.IfVersion(hv)),
				sqlkv.Delete(resourceKey(id)),
				// Tells watchers this deletion is an expiry.
				sqlkv.Put(expiredKey(id), encode(expiredRecord{At: unixNano(now)})),
			)
			if errors.Is(err, sqlkv.ErrConflict) {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("sweep: delete node %s: %w", id, err)
			}
			res.DeletedNodes++
			if results[2].Existed {
				res.DeletedResources++
			}
			delete(resources, id)

		case effectiveStatus(s.nodes[id].rec.Status, hb) == StatusActive && hb.LastHeartbeat < staleBefore:
			hb.Expired = true
			_, err := r.store.Apply(ctx,
				// The decision rests on both records as read.
				sqlkv.Check(nodeKey(id), sqlkv.IfVersion(nv)),
				sqlkv.Put(heartbeatKey(id), encode(hb)).If(sqlkv.IfVersion(hv)),
			)
			if errors.Is(err, sqlkv.ErrConflict) {
				continue
			}
			if err != nil {
				return res, fmt.Errorf("sweep: expire node %s: %w", id, err)
			}
			res.MarkedUnhealthy++
		}
	}

	for _, id := range resOrder {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		rr, ok := resources[id]
		if !ok || rr.rec.UpdatedAt >= staleBefore {
			continue
		}
		_, err := r.store.Apply(ctx, sqlkv.Delete(resourceKey(id)).If(sqlkv.IfVersion(rr.version)))
		if errors.Is(err, sqlkv.ErrConflict) {
			continue
		}
		if err != nil {
			return res, fmt.Errorf("sweep: delete resource %s: %w", id, err)
		}
		res.DeletedResources++
	}

	// Expiry records only need to outlive the watchers' re-read of the
	// deletion, which takes milliseconds; a heartbeat timeout is ample.
	expired, expOrder, err := scanRecords[expiredRecord](ctx, r.store, expiredPrefix)
	if err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	for _, id := range expOrder {
		if expired[id].rec.At >= staleBefore {
			continue
		}
		_, err := r.store.Apply(ctx, sqlkv.Delete(expiredKey(id)).If(sqlkv.IfVersion(expired[id].version)))
		if err != nil && !errors.Is(err, sqlkv.ErrConflict) {
			return res, fmt.Errorf("sweep: delete expiry record %s: %w", id, err)
		}
	}
	return res, nil
}
