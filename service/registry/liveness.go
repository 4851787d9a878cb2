package registry

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/btree"
	"golang.org/x/sync/errgroup"

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
// Its decisions read the view (after the read fence), which keeps the
// active nodes, all nodes, the resource reports and the expiry records
// ordered by their deadlines: a sweep visits only the ones whose deadline
// has passed, so its cost is proportional to the transitions it makes, not
// to the number of nodes. An idle sweep reads nothing from the store.
//
// Every change is conditional on the versions the view holds, so a
// heartbeat, update or delete that lands in between (or that the view has
// not applied yet) wins and the change is skipped. That also makes
// concurrent sweeps by several replicas safe: each transition is made, and
// counted, by exactly one of them, and so reaches watchers exactly once.
//
// Why conditional writes rather than a leader elected with a Postgres
// advisory lock: they work the same on every backend (one code path, tested
// on memory and SQLite too); there is no lock to lose silently when a
// leader's connection drops mid-sweep, and no failover delay; and they are
// needed anyway, because a heartbeat can land between a sweep's read and its
// write even with a single sweeper. The price is that replicas racing for
// one transition waste an Apply each.
//
// Deadlines are computed from the stored heartbeat and report times, never
// from in-memory timers, so a restart neither extends nor shortens them.
// A node deleted after its TTL leaves an expired:<uuid> record for watchers
// (see Watch), which a sweep one heartbeat timeout later removes.
//
// Transitions are issued from a pool of sweepWorkers goroutines, phase by
// phase (TTL deletions, then marks and stale reports, then expiry records).
// When ctx ends or a store error occurs, no more are issued; those in flight
// finish with ctx, so one whose context ended may have been made (a store
// can commit it anyway) without being counted.
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
	if err := r.view.sync(ctx); err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	due := r.view.due(staleBefore, deadBefore)

	// Each phase's transitions are independent conditional Applies, issued
	// from a pool so that a mass transition costs few commits (SQLite's
	// group commit batches concurrent writers) or runs on several
	// connections (Postgres) instead of one round trip after another. The
	// phases run in order: a node deleted by its TTL is not marked or
	// stripped of its report as well.
	var (
		mu      sync.Mutex
		deleted = make(map[string]bool)
	)
	err := forEachDue(ctx, due.dead, func(e *entry) error {
		_, hv := e.heartbeat()
		results, err := r.store.Apply(ctx,
			sqlkv.Delete(nodeKey(e.uuid)).If(sqlkv.IfVersion(e.nv)),
			sqlkv.Delete(heartbeatKey(e.uuid)).If(sqlkv.IfVersion(hv)),
			sqlkv.Delete(resourceKey(e.uuid)),
			// Tells watchers this deletion is an expiry.
			sqlkv.Put(expiredKey(e.uuid), encode(expiredRecord{At: unixNano(now)})),
		)
		if errors.Is(err, sqlkv.ErrConflict) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sweep: delete node %s: %w", e.uuid, err)
		}
		mu.Lock()
		defer mu.Unlock()
		res.DeletedNodes++
		if results[2].Existed {
			res.DeletedResources++
		}
		deleted[e.uuid] = true
		return nil
	})
	if err != nil {
		return res, err
	}

	var alive []*entry
	for _, e := range due.stale {
		if !deleted[e.uuid] {
			alive = append(alive, e)
		}
	}
	err = forEachDue(ctx, alive, func(e *entry) error {
		hb, hv := e.heartbeat()
		hb.Expired = true
		_, err := r.store.Apply(ctx,
			// The decision rests on both records as the view holds them.
			sqlkv.Check(nodeKey(e.uuid), sqlkv.IfVersion(e.nv)),
			sqlkv.Put(heartbeatKey(e.uuid), encode(hb)).If(sqlkv.IfVersion(hv)),
		)
		if errors.Is(err, sqlkv.ErrConflict) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sweep: expire node %s: %w", e.uuid, err)
		}
		mu.Lock()
		defer mu.Unlock()
		res.MarkedUnhealthy++
		return nil
	})
	if err != nil {
		return res, err
	}

	alive = alive[:0]
	for _, e := range due.reports {
		if !deleted[e.uuid] {
			alive = append(alive, e)
		}
	}
	err = forEachDue(ctx, alive, func(e *entry) error {
		_, err := r.store.Apply(ctx, sqlkv.Delete(resourceKey(e.uuid)).If(sqlkv.IfVersion(e.rv)))
		if errors.Is(err, sqlkv.ErrConflict) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("sweep: delete resource %s: %w", e.uuid, err)
		}
		mu.Lock()
		defer mu.Unlock()
		res.DeletedResources++
		return nil
	})
	if err != nil {
		return res, err
	}

	// Expiry records only need to outlive the watchers' view of the
	// deletion, which takes milliseconds; a heartbeat timeout is ample.
	err = forEachDue(ctx, due.expiries, func(e *entry) error {
		_, err := r.store.Apply(ctx, sqlkv.Delete(expiredKey(e.uuid)).If(sqlkv.IfVersion(e.ev)))
		if err != nil && !errors.Is(err, sqlkv.ErrConflict) {
			return fmt.Errorf("sweep: delete expiry record %s: %w", e.uuid, err)
		}
		return nil
	})
	return res, err
}

// sweepWorkers bounds the transitions a sweep has in flight at once.
// Measured with 10,000 due nodes (BenchmarkSweepTransitions), throughput
// still grows from 16 to 32 workers on SQLite (bigger commit batches) and on
// Postgres (its 16 pooled connections never wait for the next Apply). The
// serving path shares that pool: during a mass transition a request waits
// for a connection among the sweep's, each held for one short Apply, not
// for the sweep. A variable only so that the benchmark can compare with one
// worker (the sequential sweep).
var sweepWorkers = 32

// forEachDue calls apply for each entry from up to sweepWorkers goroutines
// and waits for them. It stops issuing calls when ctx ends or a call fails;
// calls in flight finish (their context is ctx, not canceled by a sibling's
// failure, so a transition that was made is counted). It returns the first
// call's error, or ctx's error if ctx ended before every entry was issued.
func forEachDue(ctx context.Context, entries []*entry, apply func(*entry) error) error {
	var (
		g       errgroup.Group
		stopped atomic.Bool
		cut     error
	)
	g.SetLimit(sweepWorkers)
	for _, e := range entries {
		if stopped.Load() {
			break
		}
		if err := ctx.Err(); err != nil {
			cut = err
			break
		}
		g.Go(func() error {
			// The slot may have come free after ctx ended or a call failed.
			if stopped.Load() {
				return nil
			}
			if err := ctx.Err(); err != nil {
				stopped.Store(true)
				return err
			}
			if err := apply(e); err != nil {
				stopped.Store(true)
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return cut
}

// dueEntries are what one sweep must look at, from the view's deadline
// indexes.
type dueEntries struct {
	dead     []*entry // nodes past their TTL
	stale    []*entry // active nodes past the heartbeat timeout
	reports  []*entry // resource reports older than the heartbeat timeout
	expiries []*entry // expiry records older than the heartbeat timeout
}

// due collects the entries whose deadlines passed: times before
// staleBefore (heartbeats, reports, expiry records) and, if deadBefore is
// not zero, before deadBefore (TTL). It walks each index from its oldest
// item and stops at the first that is not due.
func (v *View) due(staleBefore, deadBefore int64) dueEntries {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var d dueEntries
	collect := func(tree *btree.BTreeG[deadline], before int64, into *[]*entry) {
		tree.Ascend(func(dl deadline) bool {
			if dl.at >= before {
				return false
			}
			if e := v.entryOf(dl.uuid); e != nil {
				*into = append(*into, e)
			}
			return true
		})
	}
	if deadBefore != 0 {
		collect(v.byLastSeen, deadBefore, &d.dead)
	}
	collect(v.byHeartbeat, staleBefore, &d.stale)
	collect(v.byReport, staleBefore, &d.reports)
	collect(v.byExpiry, staleBefore, &d.expiries)
	v.examined.Store(int64(len(d.dead) + len(d.stale) + len(d.reports) + len(d.expiries)))
	return d
}
