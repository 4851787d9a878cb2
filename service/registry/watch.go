package registry

import (
	"context"
	"errors"
	"fmt"
)

// Errors of NodeRegistry.Watch.
var (
	// ErrWatchLagged means the watcher consumed its events too slowly and
	// its watch was ended so that it would hold up nobody; watch again.
	ErrWatchLagged = errors.New("registry: watcher fell behind; watch again")

	// ErrWatchUnsupported meant the registry's store did not implement
	// sqlkv.Watchable. It is no longer returned (NewView makes every store
	// watchable); it stays so that callers testing for it still compile.
	ErrWatchUnsupported = errors.New("registry: the store cannot watch")
)

// DefaultWatchBuffer is how many recent events the view keeps (see
// WithWatchBuffer): a watcher more than this many events behind ends with
// ErrWatchLagged, and a resume_version older than that gets a fresh
// snapshot. At 10,000 heartbeats a second it is about 6.5 s of history.
const DefaultWatchBuffer = 1 << 16

// EventKind says what a watch Event reports.
type EventKind uint8

// The kinds of Event.
const (
	EventSnapshot      EventKind = iota + 1 // a node that matched when the watch began
	EventSnapshotEnd                        // the snapshot is complete; Node is zero
	EventRegistered                         // a node registered since
	EventUpdated                            // address, ports or metadata changed (or a re-registration)
	EventStatusChanged                      // the status changed; PreviousStatus says from what
	EventDeleted                            // deleted by Delete; Node is its last known state
	EventExpired                            // deleted by the sweeper after the node TTL
	EventHeartbeat                          // only last_heartbeat / health_info changed
)

var eventKindNames = [...]string{"", "snapshot", "snapshot_end", "registered", "updated", "status_changed", "deleted", "expired", "heartbeat"}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && k != 0 {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Event is one message of a watch.
type Event struct {
	Kind           EventKind
	Node           Node
	PreviousStatus Status // for EventStatusChanged
	// Version identifies the view's state after this event (for snapshot
	// events, the snapshot's); pass the last one seen as
	// WatchOptions.ResumeVersion to continue after it. It is meaningful
	// only to the process that sent it.
	Version uint64
	// Resumed is set on the EventSnapshotEnd that starts a resumed watch:
	// no snapshot was sent, the changes since ResumeVersion follow.
	Resumed bool
	// Ref is set instead of Node on the EventSnapshot events of a watch
	// with WatchOptions.SnapshotRefs.
	Ref NodeRef
	// Resync is set on the EventSnapshot and EventSnapshotEnd events of a
	// fresh snapshot sent because the watcher fell behind (only with
	// WatchOptions.ResyncOnLag): at its EventSnapshotEnd, its nodes are all
	// the matching nodes, and any other the watcher held is gone.
	Resync bool
}

// WatchOptions filter NodeRegistry.Watch. A node is watched while it
// matches every filter that is set, before or after a change.
type WatchOptions struct {
	UUIDs    []string          // only these nodes (any accepted spelling)
	Status   string            // only nodes with this status
	Metadata map[string]string // only nodes with these metadata pairs
	// Heartbeats also reports heartbeats that change nothing but
	// last_heartbeat and health_info (EventHeartbeat).
	Heartbeats bool
	// ResumeVersion, if not zero, is the Version of the last event a
	// previous watch with the same filters received: if this process still
	// holds the events since, the watch sends no snapshot, only an
	// EventSnapshotEnd with Resumed set and then those events; otherwise
	// (too old, another replica's, or from before a restart) it starts
	// with a fresh snapshot as if ResumeVersion were zero.
	ResumeVersion uint64
	// ResyncOnLag, instead of ending with ErrWatchLagged a watch that fell
	// more than the view's watch buffer behind, sends it a fresh snapshot
	// (its events marked Resync) and carries on with the changes since.
	ResyncOnLag bool
	// SnapshotRefs delivers each EventSnapshot with Ref set and Node zero,
	// for a sender that encodes the node itself (Ref.Node assembles it).
	SnapshotRefs bool
}

// Watch calls send with one EventSnapshot per node matching opts (ascending
// uuid order), then EventSnapshotEnd, then an event for every later change
// of a node that matches opts before or after the change, until ctx is done
// or send fails. Changes made by any process sharing the store are reported
// (for Postgres, through LISTEN/NOTIFY), the sweeper's included. With
// opts.ResumeVersion the snapshot may be skipped; see WatchOptions.
//
// How it works: the snapshot is a copy-on-write clone of the view (see
// View), taken after the same fence as any read, together with the number
// of the last event it includes; the watcher then reads the view's ring of
// events from there on. Nothing is read from the store and nothing is kept
// per node, so an idle watcher costs its goroutine and a few words. Several
// writes to one node applied in one batch are one event. When the feed
// reports that changes were lost (Postgres reconnected, a subscription
// overflowed), the view re-reads everything and watchers get the
// differences as events.
//
// A node deleted by the sweeper is reported as EventExpired: the sweeper
// leaves an expired:<uuid> record, removed by a later sweep.
//
// Errors: a *ValidationError (ErrInvalid) for a bad uuid or status, or more
// than MaxRequestUUIDs uuids; ErrWatchLagged when the watcher fell more than
// the view's watch buffer behind (unless opts.ResyncOnLag); send's error;
// the context's error; store errors, wrapped.
func (r *NodeRegistry) Watch(ctx context.Context, opts WatchOptions, send func(Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := newNodeFilter(opts.UUIDs, opts.Status, opts.Metadata)
	if err != nil {
		return err
	}
	v := r.view
	if err := v.sync(ctx); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	next, ok := v.resumeFrom(opts.ResumeVersion)
	if ok {
		if err := send(Event{Kind: EventSnapshotEnd, Version: opts.ResumeVersion, Resumed: true}); err != nil {
			return err
		}
	} else if next, err = v.sendSnapshot(f, opts.SnapshotRefs, false, send); err != nil {
		return err
	}

	var batch []event
	for {
		var ch chan struct{}
		batch, ch, err = v.eventsFrom(next, batch[:0])
		if err == nil && len(batch) > 0 {
			if next, err = v.sendEvents(batch, f, opts.Heartbeats, send); err == nil {
				continue
			}
		}
		if errors.Is(err, ErrWatchLagged) && opts.ResyncOnLag {
			if next, err = v.sendSnapshot(f, opts.SnapshotRefs, true, send); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-v.done:
			return fmt.Errorf("watch: %w", v.stoppedErr())
		case <-ch:
		}
	}
}

// sendSnapshot sends an EventSnapshot for each node matching f in a
// copy-on-write clone of the view (ascending uuid order), then
// EventSnapshotEnd, all marked resync if set (with Ref instead of Node if
// refs), and returns the number of the first event after the snapshot.
func (v *View) sendSnapshot(f nodeFilter, refs, resync bool, send func(Event) error) (uint64, error) {
	tree, last := v.snapshot()
	version := v.version(last)
	emit := func(e *entry) error {
		if e.node == nil || !f.matchEntry(e) {
			return nil
		}
		ev := Event{Kind: EventSnapshot, Version: version, Resync: resync}
		if refs {
			ev.Ref = NodeRef{e}
		} else {
			ev.Node = e.toNode()
		}
		return send(ev)
	}
	if f.uuids != nil {
		for _, id := range f.sortedUUIDs() {
			if e, ok := tree.Get(&entry{uuid: id}); ok {
				if err := emit(e); err != nil {
					return 0, err
				}
			}
		}
	} else {
		var sendErr error
		tree.Ascend(func(e *entry) bool {
			sendErr = emit(e)
			return sendErr == nil
		})
		if sendErr != nil {
			return 0, sendErr
		}
	}
	if err := send(Event{Kind: EventSnapshotEnd, Version: version, Resync: resync}); err != nil {
		return 0, err
	}
	return last + 1, nil
}

// sendEvents sends the events of batch that a watcher with filter f gets,
// and returns the number of the event after the batch. Errors:
// ErrWatchLagged when the ring moved past an event before it was sent (a
// watcher that slow is ended, or resynced, now, not after delivering its
// stale copies); send's error.
func (v *View) sendEvents(batch []event, f nodeFilter, heartbeats bool, send func(Event) error) (uint64, error) {
	for _, ev := range batch {
		if v.head.Load()-ev.seq >= uint64(len(v.ring)) {
			return 0, ErrWatchLagged
		}
		if out, ok := ev.forWatcher(f, heartbeats); ok {
			out.Version = v.version(ev.seq)
			if err := send(out); err != nil {
				return 0, err
			}
		}
	}
	return batch[len(batch)-1].seq + 1, nil
}

// event is one change of a node's visible state, in the view's ring.
type event struct {
	seq  uint64
	kind EventKind
	prev *entry // the entry before (nil for a new node, and for heartbeats: unchanged but for the heartbeat)
	cur  *entry // the entry after; without a node record for deletions
}

// eventKind says what replacing old by next means to watchers, if anything.
func eventKind(old, next *entry) (EventKind, bool) {
	wasNode := old != nil && old.node != nil
	isNode := next != nil && next.node != nil
	switch {
	case !wasNode && !isNode:
		return 0, false
	case !wasNode:
		return EventRegistered, true
	case !isNode:
		if next != nil && next.ev > old.nv {
			return EventExpired, true
		}
		return EventDeleted, true
	case old.node.RegisteredAt != next.node.RegisteredAt:
		// Deleted and registered again in between.
		return EventRegistered, true
	case old.status() != next.status():
		return EventStatusChanged, true
	case old.nv != next.nv:
		return EventUpdated, true
	case old.hv != next.hv:
		return EventHeartbeat, true
	}
	return 0, false
}

// forWatcher returns the Event a watcher with filter f gets for ev, if any:
// a node is watched while it matches before or after the change.
func (ev event) forWatcher(f nodeFilter, heartbeats bool) (Event, bool) {
	id := ev.cur
	if id == nil {
		id = ev.prev
	}
	if f.uuids != nil && !f.uuids[id.uuid] {
		return Event{}, false
	}
	switch ev.kind {
	case EventDeleted, EventExpired:
		if !f.matchEntry(ev.prev) {
			return Event{}, false
		}
		return Event{Kind: ev.kind, Node: ev.prev.toNode()}, true
	case EventHeartbeat:
		if !heartbeats || !f.matchEntry(ev.cur) {
			return Event{}, false
		}
		return Event{Kind: ev.kind, Node: ev.cur.toNode()}, true
	}
	matched := f.matchEntry(ev.cur)
	out := Event{Kind: ev.kind}
	if ev.prev != nil && ev.prev.node != nil {
		matched = matched || f.matchEntry(ev.prev)
		if ev.kind == EventStatusChanged {
			out.PreviousStatus = ev.prev.status()
		}
	}
	if !matched {
		return Event{}, false
	}
	out.Node = ev.cur.toNode()
	return out, true
}

// versionEpochBits of a watch version are the view's random epoch, the
// rest the event number, so a version from another process or an earlier
// run of this one is recognised as foreign (but for a 1 in 2^20 chance,
// when it names an event number this view has not reached, or one long
// gone from the ring, and is answered with a snapshot all the same).
const (
	versionEpochBits = 20
	versionSeqBits   = 64 - versionEpochBits
)

func (v *View) version(seq uint64) uint64 { return v.epoch<<versionSeqBits | seq }

// resumeFrom returns the number of the first event a watch resuming after
// version gets, if the ring still holds every event since.
func (v *View) resumeFrom(version uint64) (uint64, bool) {
	if version == 0 || version>>versionSeqBits != v.epoch {
		return 0, false
	}
	seq := version & (1<<versionSeqBits - 1)
	v.mu.RLock()
	defer v.mu.RUnlock()
	if seq > v.seq || v.seq-seq > uint64(len(v.ring)) {
		return 0, false
	}
	return seq + 1, true
}

// eventsFrom appends to buf the events from number next on that the ring
// holds, at most a ring's length, and returns the channel that is closed
// when more arrive. Errors: ErrWatchLagged when event next is already gone.
func (v *View) eventsFrom(next uint64, buf []event) ([]event, chan struct{}, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if next > v.seq {
		return buf, v.changed, nil
	}
	size := uint64(len(v.ring))
	if v.seq-next >= size {
		return buf, nil, ErrWatchLagged
	}
	const maxBatch = 256
	for seq := next; seq <= v.seq && len(buf) < maxBatch; seq++ {
		buf = append(buf, v.ring[seq%size])
	}
	return buf, v.changed, nil
}
