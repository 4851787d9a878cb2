package registry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// Errors of NodeRegistry.Watch.
var (
	// ErrWatchLagged means the watcher consumed its events too slowly and
	// its watch was ended so that it would hold up nobody; watch again.
	ErrWatchLagged = errors.New("registry: watcher fell behind; watch again")

	// ErrWatchUnsupported means the registry's store does not implement
	// sqlkv.Watchable.
	ErrWatchUnsupported = errors.New("registry: the store cannot watch")
)

// DefaultWatchBuffer is how many undelivered change batches a watcher may
// have before its watch ends with ErrWatchLagged (see WithWatchBuffer).
const DefaultWatchBuffer = 1024

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

// Event is one message of a watch. Its Node's maps are shared with other
// watchers: do not modify them.
type Event struct {
	Kind           EventKind
	Node           Node
	PreviousStatus Status // for EventStatusChanged
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
}

// Watch calls send with one EventSnapshot per node matching opts (ascending
// uuid order), then EventSnapshotEnd, then an event for every later change
// of a node that matches opts before or after the change, until ctx is done
// or send fails. Changes made by any process sharing the store are reported
// (for Postgres, through LISTEN/NOTIFY), the sweeper's included.
//
// How it works: one watch hub per registry subscribes to the store's change
// feed, re-reads each changed node once, and fans the states out to its
// watchers through bounded buffers; it never waits for a watcher. A
// watcher's snapshot is read by the hub itself, in between change batches,
// so every state the watcher gets afterwards was read after its snapshot:
// with the node and heartbeat versions each watcher keeps, that leaves
// neither a gap nor a duplicate. Changes of one node in quick succession may
// be reported as one event with the latest state. When the feed reports
// that changes were lost (Postgres reconnected, a subscription overflowed),
// the hub re-reads every node and watchers get the differences.
//
// A node deleted by the sweeper is reported as EventExpired: the sweeper
// leaves an expired:<uuid> record, removed by a later sweep.
//
// Errors: a *ValidationError (ErrInvalid) for a bad uuid or status, or more
// than MaxRequestUUIDs uuids;
// ErrWatchUnsupported; ErrWatchLagged when the watcher fell behind; send's
// error; the context's error; store errors, wrapped.
func (r *NodeRegistry) Watch(ctx context.Context, opts WatchOptions, send func(Event) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := newNodeFilter(opts.UUIDs, opts.Status, opts.Metadata)
	if err != nil {
		return err
	}
	ws, ok := r.store.(sqlkv.Watchable)
	if !ok {
		return ErrWatchUnsupported
	}
	h, err := r.acquireHub(ctx, ws)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	w := &watcher{ch: make(chan hubMsg, r.opts.watchBuffer), ended: make(chan struct{})}
	defer r.releaseHub(h, w)

	snapshot, err := h.snapshot(ctx, w)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	known := make(map[string]knownNode, len(snapshot))
	for _, s := range snapshot {
		if f.uuids != nil && !f.uuids[s.uuid] {
			continue
		}
		k := knownNode{state: s, matched: f.match(s.node)}
		known[s.uuid] = k
		if k.matched {
			if err := send(Event{Kind: EventSnapshot, Node: s.node}); err != nil {
				return err
			}
		}
	}
	if err := send(Event{Kind: EventSnapshotEnd}); err != nil {
		return err
	}

	for {
		var m hubMsg
		select {
		case <-ctx.Done():
			return ctx.Err()
		case msg, ok := <-w.ch:
			if !ok {
				return w.err
			}
			m = msg
		}
		if m.full {
			// Every node absent from a full read is gone.
			present := make(map[string]bool, len(m.states))
			for _, s := range m.states {
				present[s.uuid] = true
			}
			for id := range known {
				if !present[id] {
					m.states = append(m.states, &nodeState{uuid: id})
				}
			}
		}
		for _, s := range m.states {
			if f.uuids != nil && !f.uuids[s.uuid] {
				continue
			}
			select {
			case <-w.ended:
				// Ended while sending: do not deliver the backlog.
				return w.err
			default:
			}
			ev, ok := diff(known, s, f, opts.Heartbeats)
			if !ok {
				continue
			}
			if err := send(ev); err != nil {
				return err
			}
		}
	}
}

// knownNode is what a watcher last knew of a node.
type knownNode struct {
	state   *nodeState
	matched bool // the node matched the watcher's filters
}

// diff updates known with s and returns the event it makes, if any.
func diff(known map[string]knownNode, s *nodeState, f nodeFilter, heartbeats bool) (Event, bool) {
	k, wasKnown := known[s.uuid]
	if !s.exists {
		if !wasKnown {
			return Event{}, false
		}
		delete(known, s.uuid)
		if !k.matched {
			return Event{}, false
		}
		kind := EventDeleted
		if s.expiredVersion > k.state.nv {
			kind = EventExpired
		}
		return Event{Kind: kind, Node: k.state.node}, true
	}
	matched := f.match(s.node)
	if !wasKnown {
		known[s.uuid] = knownNode{state: s, matched: matched}
		return Event{Kind: EventRegistered, Node: s.node}, matched
	}
	if s.nv <= k.state.nv && s.hv <= k.state.hv {
		return Event{}, false // already known: read before, or covered by the snapshot
	}
	known[s.uuid] = knownNode{state: s, matched: matched}
	if !matched && !k.matched {
		return Event{}, false
	}
	prev := k.state.node
	switch {
	case !s.node.RegisteredAt.Equal(prev.RegisteredAt):
		// Deleted and registered again in between.
		return Event{Kind: EventRegistered, Node: s.node}, true
	case s.node.Status != prev.Status:
		return Event{Kind: EventStatusChanged, Node: s.node, PreviousStatus: prev.Status}, true
	case s.nv != k.state.nv:
		return Event{Kind: EventUpdated, Node: s.node}, true
	}
	return Event{Kind: EventHeartbeat, Node: s.node}, heartbeats
}

// nodeState is a node as the hub read it, shared by every watcher;
// immutable.
type nodeState struct {
	uuid           string
	exists         bool
	node           Node
	nv, hv         int64 // versions of node:<uuid> and heartbeat:<uuid>
	expiredVersion int64 // of expired:<uuid>, for a node that does not exist
}

// hubMsg is what the hub sends a watcher: states read after its snapshot,
// or (full) the state of every node.
type hubMsg struct {
	states []*nodeState
	full   bool
}

type watcher struct {
	ch    chan hubMsg   // buffered states; closed by the hub, after setting err
	ended chan struct{} // closed with ch, so a watcher stops before its backlog
	err   error
}

func (w *watcher) end(err error) {
	w.err = err
	close(w.ch)
	close(w.ended)
}

type snapshotReq struct {
	w     *watcher
	reply chan snapshotReply
}

type snapshotReply struct {
	states []*nodeState
	err    error
}

// hub is the one subscriber to the store's change feed of a NodeRegistry;
// see Watch. It runs while it has watchers.
type hub struct {
	r        *NodeRegistry
	sub      *sqlkv.Subscription
	requests chan snapshotReq
	cancel   context.CancelFunc
	done     chan struct{}
	refs     int // guarded by r.watchMu

	mu       sync.Mutex
	watchers map[*watcher]struct{}
	err      error // set when the hub stopped on its own
}

func (r *NodeRegistry) acquireHub(ctx context.Context, ws sqlkv.Watchable) (*hub, error) {
	r.watchMu.Lock()
	defer r.watchMu.Unlock()
	if r.hub != nil {
		r.hub.refs++
		return r.hub, nil
	}
	sub, err := ws.Watch(ctx, nil)
	if err != nil {
		return nil, err
	}
	hctx, cancel := context.WithCancel(context.Background())
	h := &hub{
		r:        r,
		sub:      sub,
		requests: make(chan snapshotReq),
		cancel:   cancel,
		done:     make(chan struct{}),
		refs:     1,
		watchers: make(map[*watcher]struct{}),
	}
	go h.run(hctx)
	r.hub = h
	return h, nil
}

func (r *NodeRegistry) releaseHub(h *hub, w *watcher) {
	h.mu.Lock()
	delete(h.watchers, w)
	h.mu.Unlock()
	r.watchMu.Lock()
	h.refs--
	last := h.refs == 0
	if last && r.hub == h {
		r.hub = nil
	}
	r.watchMu.Unlock()
	if last {
		h.cancel()
		<-h.done
	}
}

// snapshot asks the hub to read every node and register w for the states
// it reads afterwards.
func (h *hub) snapshot(ctx context.Context, w *watcher) ([]*nodeState, error) {
	req := snapshotReq{w: w, reply: make(chan snapshotReply, 1)}
	select {
	case h.requests <- req:
	case <-h.done:
		return nil, h.stoppedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case rep := <-req.reply:
		return rep.states, rep.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (h *hub) stoppedErr() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return h.err
	}
	return fmt.Errorf("watch hub stopped: %w", sqlkv.ErrClosed)
}

// readRetryMax bounds the wait between attempts to re-read nodes after a
// store error.
const readRetryMax = 2 * time.Second

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	defer h.sub.Close()
	needFull := false
	delay := 50 * time.Millisecond
	var retry <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-h.requests:
			states, err := h.readAll(ctx)
			if err == nil {
				h.mu.Lock()
				h.watchers[req.w] = struct{}{}
				h.mu.Unlock()
			}
			req.reply <- snapshotReply{states: states, err: err}
			continue
		case <-retry:
			retry = nil
		case <-h.sub.Ready():
		}
		b, err := h.sub.Take()
		if err != nil {
			h.stop(err)
			return
		}
		if b.Resync {
			needFull = true
		}
		if needFull {
			states, err := h.readAll(ctx)
			if err != nil {
				retry = time.After(delay)
				delay = min(2*delay, readRetryMax)
				continue
			}
			needFull, delay = false, 50*time.Millisecond
			h.fanOut(hubMsg{states: states, full: true})
			continue
		}
		states, err := h.readChanged(ctx, b.Changes)
		if err != nil {
			// What changed is lost with this batch: re-read everything.
			needFull = true
			retry = time.After(delay)
			continue
		}
		if len(states) > 0 {
			h.fanOut(hubMsg{states: states})
		}
	}
}

// stop ends every watcher with err, after the feed ended.
func (h *hub) stop(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.err = err
	for w := range h.watchers {
		w.end(err)
		delete(h.watchers, w)
	}
}

// fanOut hands m to every watcher without waiting; a watcher whose buffer is
// full is ended with ErrWatchLagged.
func (h *hub) fanOut(m hubMsg) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for w := range h.watchers {
		select {
		case w.ch <- m:
		default:
			w.end(ErrWatchLagged)
			delete(h.watchers, w)
		}
	}
}

func (h *hub) readAll(ctx context.Context) ([]*nodeState, error) {
	s, err := readNodes(ctx, h.r.store)
	if err != nil {
		return nil, err
	}
	out := make([]*nodeState, len(s.order))
	for i, id := range s.order {
		_, hv := s.heartbeat(id)
		out[i] = &nodeState{uuid: id, exists: true, node: s.node(id), nv: s.nodes[id].version, hv: hv}
	}
	return out, nil
}

// readChanged reads the current state of each node a change in changes
// concerns, once per node.
func (h *hub) readChanged(ctx context.Context, changes []sqlkv.Change) ([]*nodeState, error) {
	seen := make(map[string]bool)
	var out []*nodeState
	for _, c := range changes {
		id, ok := watchedUUID(c.Key)
		if !ok || seen[id] {
			continue
		}
		seen[id] = true
		s, err := readState(ctx, h.r.store, id)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// watchedUUID returns the node a key belongs to, for the keys that make up
// a node's state.
func watchedUUID(key []byte) (string, bool) {
	k := string(key)
	for _, p := range []string{nodePrefix, heartbeatPrefix, expiredPrefix} {
		if id, ok := strings.CutPrefix(k, p); ok {
			return id, true
		}
	}
	return "", false
}

func readState(ctx context.Context, store sqlkv.Store, id string) (*nodeState, error) {
	nr, nv, found, err := getRecord[nodeRecord](ctx, store, nodeKey(id))
	if err != nil {
		return nil, err
	}
	if !found {
		_, ev, _, err := getRecord[expiredRecord](ctx, store, expiredKey(id))
		if err != nil {
			return nil, err
		}
		return &nodeState{uuid: id, expiredVersion: ev}, nil
	}
	hb, hv, hbFound, err := getRecord[heartbeatRecord](ctx, store, heartbeatKey(id))
	if err != nil {
		return nil, err
	}
	var hbp *heartbeatRecord
	if hbFound {
		hbp = &hb
	}
	return &nodeState{uuid: id, exists: true, node: assembleNode(id, nr, hbp), nv: nv, hv: hv}, nil
}
