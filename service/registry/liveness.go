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
// the same transitions waste Applies: a batch that loses (see applyDue) is
// tried again one transition at a time.
//
// Deadlines are computed from the stored heartbeat and report times, never
// from in-memory timers, so a restart neither extends nor shortens them.
// A node deleted after its TTL leaves an expired:<uuid> record for watchers
// (see Watch), which a sweep one heartbeat timeout later removes.
//
// Transitions are made in batches of up to sweepBatch per Apply, issued from
// a pool of sweepWorkers goroutines, phase by phase (TTL deletions, then
// marks and stale reports, then expiry records). When ctx ends or a store
// error occurs, no more are issued; those in flight finish with ctx, so one
// whose context ended may have been made (a store can commit it anyway)
// without being counted.
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

	// Each phase's transitions are conditional Applies, sweepBatch
	// transitions to one Apply (see applyDue), issued from a pool. The
	// phases run in order: a node deleted by its TTL is not marked or
	// stripped of its report as well.
	var (
		mu      sync.Mutex
		deleted = make(map[string]bool)
	)
	err := applyDue(ctx, r.store, due.dead, "delete node", func(e *entry) []sqlkv.Op {
		_, hv := e.heartbeat()
		return []sqlkv.Op{
			sqlkv.Delete(nodeKey(e.uuid)).If(sqlkv.IfVersion(e.nv)),
			sqlkv.Delete(heartbeatKey(e.uuid)).If(sqlkv.IfVersion(hv)),
			sqlkv.Delete(resourceKey(e.uuid)),
			// Tells watchers this deletion is an expiry.
			sqlkv.Put(expiredKey(e.uuid), encode(expiredRecord{At: unixNano(now)})),
		}
	}, func(made []*entry, results [][]sqlkv.OpResult) {
		mu.Lock()
		defer mu.Unlock()
		for i, e := range made {
			res.DeletedNodes++
			if results[i][2].Existed {
				res.DeletedResources++
			}
			deleted[e.uuid] = true
		}
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
	err = applyDue(ctx, r.store, alive, "expire node", func(e *entry) []sqlkv.Op {
		hb, hv := e.heartbeat()
		hb.Expired = true
		return []sqlkv.Op{
			// The decision rests on both records as the view holds them.
			sqlkv.Check(nodeKey(e.uuid), sqlkv.IfVersion(e.nv)),
			sqlkv.Put(heartbeatKey(e.uuid), encode(hb)).If(sqlkv.IfVersion(hv)),
		}
	}, func(made []*entry, _ [][]sqlkv.OpResult) {
		mu.Lock()
		defer mu.Unlock()
		res.MarkedUnhealthy += len(made)
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
	err = applyDue(ctx, r.store, alive, "delete resource", func(e *entry) []sqlkv.Op {
		return []sqlkv.Op{sqlkv.Delete(resourceKey(e.uuid)).If(sqlkv.IfVersion(e.rv))}
	}, func(made []*entry, _ [][]sqlkv.OpResult) {
		mu.Lock()
		defer mu.Unlock()
		res.DeletedResources += len(made)
	})
	if err != nil {
		return res, err
	}

	// Expiry records only need to outlive the watchers' view of the
	// deletion, which takes milliseconds; a heartbeat timeout is ample.
	return res, applyDue(ctx, r.store, due.expiries, "delete expiry record", func(e *entry) []sqlkv.Op {
		return []sqlkv.Op{sqlkv.Delete(expiredKey(e.uuid)).If(sqlkv.IfVersion(e.ev))}
	}, func([]*entry, [][]sqlkv.OpResult) {})
}

// sweepWorkers bounds the Applies a sweep has in flight at once, and
// sweepBatch the transitions in one Apply. Measured with 15,000 due
// transitions, with and without heartbeats at 2,000/s during the sweep
// (BenchmarkSweepTransitions, BenchmarkSweepHeartbeatLatency; BENCHMARKS.md,
// "Sweeps with many transitions"): big batches make the sweep faster (256
// per Apply: 2.4-2.7x on SQLite, 1.1-1.9x on Postgres against one per Apply
// from 32 workers) but hold the writer, or the group commit a heartbeat
// joins, for the whole batch, which multiplies the heartbeats' p99 during
// the sweep (3-30x). 16 per Apply from 2 workers keeps that p99 within the
// noise of the unbatched sweep's, is no slower, and leaves the store's
// connections and commit groups to requests instead of 32 workers.
// Variables only so that the benchmarks can compare settings.
var (
	sweepWorkers = 2
	sweepBatch   = 16
)

// applyDue makes the transitions of one sweep phase: the ops of up to
// sweepBatch entries in one Apply, the batches from up to sweepWorkers
// goroutines (forEachDue). Apply is atomic, so a batch whose conditions all
// hold makes every transition in it; if one fails (ErrConflict: a
// heartbeat, update or other sweeper got there first), nothing was written
// and the batch's entries are applied again one Apply each, so that
// exactly the transitions whose conditions still hold are made. made is
// called with the entries whose transitions were made and each one's
// results, once per successful Apply; every transition reaches the store,
// and so watchers, at most once.
func applyDue(ctx context.Context, store sqlkv.Store, entries []*entry, what string,
	opsOf func(*entry) []sqlkv.Op, made func([]*entry, [][]sqlkv.OpResult)) error {
	var batches [][]*entry
	for lo := 0; lo < len(entries); lo += sweepBatch {
		batches = append(batches, entries[lo:min(len(entries), lo+sweepBatch)])
	}
	return forEachDue(ctx, batches, func(batch []*entry) error {
		if len(batch) > 1 {
			var ops []sqlkv.Op
			ends := make([]int, len(batch))
			for i, e := range batch {
				ops = append(ops, opsOf(e)...)
				ends[i] = len(ops)
			}
			results, err := store.Apply(ctx, ops...)
			if err == nil {
				split := make([][]sqlkv.OpResult, len(batch))
				lo := 0
				for i, hi := range ends {
					split[i], lo = results[lo:hi], hi
				}
				made(batch, split)
				return nil
			}
			if !errors.Is(err, sqlkv.ErrConflict) {
				return fmt.Errorf("sweep: %s: %d from %s: %w", what, len(batch), batch[0].uuid, err)
			}
		}
		for _, e := range batch {
			if err := ctx.Err(); err != nil {
				return err
			}
			results, err := store.Apply(ctx, opsOf(e)...)
			if errors.Is(err, sqlkv.ErrConflict) {
				continue
			}
			if err != nil {
				return fmt.Errorf("sweep: %s %s: %w", what, e.uuid, err)
			}
			made([]*entry{e}, [][]sqlkv.OpResult{results})
		}
		return nil
	})
}

// forEachDue calls apply for each item from up to sweepWorkers goroutines
// and waits for them. It stops issuing calls when ctx ends or a call fails;
// calls in flight finish (their context is ctx, not canceled by a sibling's
// failure, so a transition that was made is counted). It returns the first
// call's error, or ctx's error if ctx ended before every item was issued.
func forEachDue[T any](ctx context.Context, items []T, apply func(T) error) error {
	var (
		g       errgroup.Group
		stopped atomic.Bool
		cut     error
	)
	g.SetLimit(sweepWorkers)
	for _, e := range items {
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
