package registry

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/btree"
	"golang.org/x/sync/errgroup"

	"github.com/spear-next/sms/internal/backoff"
	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The registry view.
//
// A View is the one in-memory, versioned copy of every node, heartbeat,
// resource and expiry record of a store, per process. It is loaded once
// (one ordered range read per prefix, merged by uuid) and kept current by
// the store's change feed (sqlkv.Watchable): every read of the registries
// (Get, List, ListPage, resource Get/List/ListPage, ClusterStats, watch
// snapshots and the sweeper's decisions) is served from it, in time
// proportional to what it returns. Writes still go to the store, with the
// same conditional-write rules as before; the view learns of them through
// the feed like of any other process's writes. The design follows
// Kubernetes' client-go informer and the apiserver's watch cache with
// consistent reads from cache (KEP-2340).
//
// Reads are linearizable, across replicas too: before answering, a read
// fences (sqlkv.Fencer): it learns the subscription's position that covers
// every write acknowledged, by any process, before the read began, and
// waits until the view has applied the feed up to it. "Acknowledged"
// includes what a reader of the store could have seen: a write commits
// before it is in the feed, and a registry's read-then-write (a Delete
// answering not_found) or a re-read below can see it in between, so the
// fence covers those writes too. On memory and SQLite (sqlkv/watchstore,
// in process) no call through the store answers from a write before the
// write is in the feed, so the fence is a counter read (plus a wait for a
// write being handed over at that instant); on Postgres it is one NOTIFY
// round trip through the database, shared by every read that arrives while
// it is sent (see sqlkv/postgres Store.Fence). Applying a change re-reads
// the changed keys (one query per batch) unless the feed carried the value
// of a put newer than the view's copy, so "applied" means the view holds
// the committed state, not just that it heard of it.
//
// The view keeps, besides the records ordered by uuid: the active,
// unexpired nodes ordered by last heartbeat, every node ordered by last
// heartbeat, the resource reports ordered by age and the expiry records
// ordered by age, so that a sweep visits only what expires; counters for
// ClusterStats, updated with every change; and a ring of the most recent
// node events, numbered, from which watchers are served and resume.
//
// Entries are immutable: a change replaces an entry, so a copy-on-write
// clone of the uuid tree (btree.Clone, O(1)) is a consistent snapshot that
// readers iterate without holding the view's lock.
type View struct {
	store sqlkv.Store // watchable; the registries write through it
	watch sqlkv.Watchable
	fence sqlkv.Fencer
	opts  options
	epoch uint64 // random, in the top bits of watch versions

	nodes     *NodeRegistry
	resources *NodeResourceRegistry

	startOnce sync.Once
	cancel    context.CancelFunc
	done      chan struct{} // closed when run returns
	loaded    chan struct{} // closed once the first load completed

	sub *sqlkv.Subscription // set before loaded is closed

	mu          sync.RWMutex
	byUUID      *btree.BTreeG[*entry]
	byID        *uuidIndex              // byUUID's entries by uuid, for point reads (entryOf)
	byHeartbeat *btree.BTreeG[deadline] // active, unexpired nodes: when they become unhealthy
	byLastSeen  *btree.BTreeG[deadline] // every node: when its TTL runs out
	byReport    *btree.BTreeG[deadline] // resource reports, by UpdatedAt
	byExpiry    *btree.BTreeG[deadline] // expiry records, by At
	sorted      sortIndex               // the nodes in ListPage's orders (order.go)
	stats       counters
	applied     uint64        // subscription position applied
	changed     chan struct{} // closed and replaced whenever applied or seq moves
	failure     error         // why the view is behind, while it is; nil when current
	ring        []event       // the last len(ring) events; ring[seq%len] is event seq
	seq         uint64        // the last event's number; 0 before any
	head        atomic.Uint64 // seq, for watchers checking whether they lag without the lock
	examined    atomic.Int64  // candidates the last sweep looked at, for tests
}

// entry is what the view holds of one uuid: each record with its version
// (a nil record is absent). The records' maps are packed (see packedMap):
// node.Metadata, hb.HealthInfo and res.Metadata are nil, their contents in
// meta, health and resMeta. Immutable once in the tree.
type entry struct {
	uuid      string
	node      *nodeRecord
	nv        int64
	hb        *heartbeatRecord
	hv        int64
	res       *resourceRecord
	rv        int64
	expiredAt int64 // expired:<uuid>'s At; 0 without one
	ev        int64
	meta      packedMap
	health    packedMap
	resMeta   packedMap
}

func (e *entry) empty() bool { return e.node == nil && e.hb == nil && e.res == nil && e.ev == 0 }

// lastSeen is when the node was last heard of: its last heartbeat, or its
// registration without a heartbeat record.
func (e *entry) lastSeen() int64 {
	if e.hb != nil {
		return e.hb.LastHeartbeat
	}
	return e.node.RegisteredAt
}

// status is the status readers see; e.node must not be nil.
func (e *entry) status() Status {
	if e.hb != nil {
		return effectiveStatus(e.node.Status, *e.hb)
	}
	return e.node.Status
}

// heartbeat returns the heartbeat record a writer conditions on: the stored
// one, or (version 0) one counting from registration.
func (e *entry) heartbeat() (heartbeatRecord, int64) {
	if e.hb != nil {
		hb := *e.hb
		if e.health != "" {
			hb.HealthInfo = e.health.unpack()
		}
		return hb, e.hv
	}
	return heartbeatRecord{LastHeartbeat: e.node.RegisteredAt}, 0
}

// toNode assembles the Node readers see, with maps of its own; e.node must
// not be nil.
func (e *entry) toNode() Node {
	return Node{
		UUID:          e.uuid,
		IPAddress:     e.node.IP,
		Port:          e.node.Port,
		HTTPPort:      e.node.HTTPPort,
		Status:        e.status(),
		LastHeartbeat: fromUnixNano(e.lastSeen()),
		RegisteredAt:  fromUnixNano(e.node.RegisteredAt),
		Metadata:      e.meta.unpack(),
		HealthInfo:    e.health.unpack(),
	}
}

// resource assembles the report readers see; e.res must not be nil.
func (e *entry) resource() Resource {
	r := e.res.resource(e.uuid)
	r.Metadata = e.resMeta.unpack()
	return r
}

func lessEntry(a, b *entry) bool { return a.uuid < b.uuid }

// deadline orders uuids by a time, for the sweeper.
type deadline struct {
	at   int64
	uuid string
}

func lessDeadline(a, b deadline) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.uuid < b.uuid
}

// btreeDegree: nodes of 32 items keep lookups a few cache lines per level.
const btreeDegree = 32

// NewView returns the view of store, not yet loaded: it loads in the
// background from the first read, Start or Loaded on. A store that is not
// sqlkv.Watchable is wrapped with sqlkv/watchstore, and every write must
// then go through this view's registries (Nodes, Resources) to be seen.
// Options apply to both registries. Close stops it.
func NewView(store sqlkv.Store, opts ...Option) *View {
	if _, ok := store.(sqlkv.Watchable); !ok {
		store = watchstore.New(store)
	}
	v := &View{
		store:   store,
		watch:   store.(sqlkv.Watchable),
		opts:    newOptions(opts),
		done:    make(chan struct{}),
		loaded:  make(chan struct{}),
		changed: make(chan struct{}),
	}
	if f, ok := store.(sqlkv.Fencer); ok {
		v.fence = f
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	v.epoch = binary.LittleEndian.Uint64(b[:])&(1<<versionEpochBits-1) | 1
	v.ring = make([]event, v.opts.watchBuffer)
	v.reset()
	v.nodes = &NodeRegistry{store: store, opts: v.opts, view: v}
	v.resources = &NodeResourceRegistry{store: store, opts: v.opts, view: v}
	return v
}

// Nodes returns the node registry reading this view.
func (v *View) Nodes() *NodeRegistry { return v.nodes }

// Resources returns the node resource registry reading this view.
func (v *View) Resources() *NodeResourceRegistry { return v.resources }

// Start begins loading the view in the background, if it has not begun.
func (v *View) Start() {
	v.startOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		v.cancel = cancel
		go v.run(ctx)
	})
}

// Loaded reports whether the view has been loaded (and starts loading it).
// Until then readiness probes should answer "not serving".
func (v *View) Loaded() bool {
	v.Start()
	select {
	case <-v.loaded:
		return true
	default:
		return false
	}
}

// WaitLoaded waits until the view is loaded. Errors: the store's error of
// the last failed attempt to load (the view keeps retrying in the
// background), sqlkv.ErrClosed after Close, the context's error.
func (v *View) WaitLoaded(ctx context.Context) error {
	v.Start()
	for {
		select {
		case <-v.loaded:
			return nil
		default:
		}
		v.mu.RLock()
		why, ch := v.failure, v.changed
		v.mu.RUnlock()
		if why != nil {
			// Say why now rather than make every read wait for a store
			// that is failing; the view keeps trying.
			return fmt.Errorf("view not loaded: %w", why)
		}
		select {
		case <-v.loaded:
			return nil
		case <-ch:
		case <-v.done:
			return v.stoppedErr()
		case <-ctx.Done():
			return fmt.Errorf("view not loaded: %w", ctx.Err())
		}
	}
}

// Close stops keeping the view current; reads fail with an error wrapping
// sqlkv.ErrClosed afterwards. It does not close the store.
func (v *View) Close() {
	v.startOnce.Do(func() { close(v.done) }) // never started
	if v.cancel != nil {
		v.cancel()
	}
	<-v.done
}

func (v *View) stoppedErr() error {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.failure != nil && errors.Is(v.failure, sqlkv.ErrClosed) {
		return fmt.Errorf("view: %w", v.failure)
	}
	return fmt.Errorf("view stopped: %w", sqlkv.ErrClosed)
}

// sync waits until the view reflects every write acknowledged before it was
// called: see the View doc. Errors: the fence's (sqlkv.ErrUnavailable), the
// store's while the view cannot apply changes, sqlkv.ErrClosed, the
// context's.
func (v *View) sync(ctx context.Context) error {
	if err := v.WaitLoaded(ctx); err != nil {
		return err
	}
	if v.fence != nil {
		if err := v.fence.Fence(ctx); err != nil {
			return fmt.Errorf("read fence: %w", err)
		}
	}
	target := v.sub.Position()
	for {
		v.mu.RLock()
		applied, ch, failure := v.applied, v.changed, v.failure
		v.mu.RUnlock()
		if applied >= target {
			return nil
		}
		if failure != nil {
			return fmt.Errorf("view behind the store: %w", failure)
		}
		select {
		case <-ch:
		case <-v.done:
			return v.stoppedErr()
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// retryable is whether the view tries a failed subscribe or load again:
// every store error but a closed store, which is the end. It records the
// failure for Loaded's callers (setFailure) on the way.
func (v *View) retryable(err error) bool {
	if errors.Is(err, sqlkv.ErrClosed) {
		return false
	}
	v.setFailure(err)
	return true
}

// run subscribes, loads, then applies the feed until ctx ends or the store
// closes.
func (v *View) run(ctx context.Context) {
	defer close(v.done)
	// Subscribe before reading, so that nothing written during the load is
	// missed; what the load already saw is re-applied harmlessly.
	err := backoff.Do(ctx, backoff.Reconnect(), v.retryable, func(ctx context.Context) error {
		sub, err := v.watch.Watch(ctx, nil)
		if err != nil {
			return err
		}
		v.sub = sub
		return nil
	})
	if err != nil {
		v.setFailure(err)
		return
	}
	defer v.sub.Close()
	if err := v.reloadRetrying(ctx, v.sub.Position()); err != nil {
		return
	}
	close(v.loaded)

	for {
		select {
		case <-ctx.Done():
			return
		case <-v.sub.Ready():
		}
		b, err := v.sub.Take()
		if err != nil {
			v.setFailure(err)
			return
		}
		if b.Resync {
			if err := v.reloadRetrying(ctx, b.Position); err != nil {
				return
			}
			continue
		}
		if len(b.Changes) == 0 {
			continue
		}
		err = v.applyChanges(ctx, b.Changes, b.Position)
		if err != nil {
			// What changed is in this batch only: read everything again.
			v.setFailure(err)
			if err := v.reloadRetrying(ctx, b.Position); err != nil {
				return
			}
		}
	}
}

func (v *View) setFailure(err error) {
	v.mu.Lock()
	v.failure = err
	v.broadcast()
	v.mu.Unlock()
}

// broadcast wakes readers and watchers waiting for the view to move; v.mu
// must be held.
func (v *View) broadcast() {
	close(v.changed)
	v.changed = make(chan struct{})
}

// reloadRetrying reads everything again until it succeeds, ctx ends or the
// store closes; position is what the read covers.
func (v *View) reloadRetrying(ctx context.Context, position uint64) error {
	return backoff.Do(ctx, backoff.Reconnect(), v.retryable, v.reloadAt(position))
}

// reloadAt is one attempt of reloadRetrying.
func (v *View) reloadAt(position uint64) func(context.Context) error {
	return func(ctx context.Context) error { return v.reload(ctx, position) }
}

// reset empties the view; v.mu must be held, or v not yet shared.
func (v *View) reset() {
	v.byUUID = btree.NewG(btreeDegree, lessEntry)
	v.byID = newUUIDIndex(0)
	v.byHeartbeat = btree.NewG(btreeDegree, lessDeadline)
	v.byLastSeen = btree.NewG(btreeDegree, lessDeadline)
	v.byReport = btree.NewG(btreeDegree, lessDeadline)
	v.byExpiry = btree.NewG(btreeDegree, lessDeadline)
	v.sorted.reset()
	v.stats = counters{}
}

// reload reads every record (the load, and the resync after lost changes)
// and replaces the view's contents with them, reporting the differences to
// watchers as events.
func (v *View) reload(ctx context.Context, position uint64) error {
	fresh, err := loadEntries(ctx, v.store)
	if err != nil {
		return err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.byUUID
	v.reset()
	if !v.Loaded() {
		if v.sorted.onlyUUID() {
			v.build(fresh)
		} else {
			// In descending uuid order, so that the uuid trees are built
			// dense (see buildTrees).
			for _, e := range slices.Backward(fresh) {
				v.replace(nil, e)
			}
		}
		v.applied = max(v.applied, position)
		v.failure = nil
		v.broadcast()
		return nil
	}
	// Walk old and fresh in uuid order together: each uuid present in
	// either is one replace.
	var gone []*entry
	i := 0
	old.Ascend(func(o *entry) bool {
		for i < len(fresh) && fresh[i].uuid < o.uuid {
			v.replace(nil, fresh[i])
			i++
		}
		if i < len(fresh) && fresh[i].uuid == o.uuid {
			v.replace(o, fresh[i])
			i++
		} else {
			gone = append(gone, o)
		}
		return true
	})
	for ; i < len(fresh); i++ {
		v.replace(nil, fresh[i])
	}
	for _, o := range gone {
		v.replace(o, nil)
	}
	v.applied = max(v.applied, position)
	v.failure = nil
	v.broadcast()
	return nil
}

// loadChunk is how many keys one re-read of a batch of changes asks for at
// most (applyChanges).
const loadChunk = 10000

// loadEntries reads every record and returns one entry per uuid, in uuid
// order. Each prefix is read by a goroutine of its own, all at once, from
// one cursor each (sqlkv.RangeFunc: no slice of the rows, no copy of a row
// but the decoded record), decoding every record as it comes. The node
// records make the entries: their goroutine publishes them (nodeFeed) as it
// goes. The heartbeat, resource and expiry records are decoded straight
// into the entries of their uuids, which each prefix finds by walking the
// published entries in step with its keys (both are in uuid order),
// waiting for the node reader when it gets ahead of it; the four write
// different fields of an entry. The other prefixes start reading only once
// the node reader has its first record (or is done): it then holds the
// store connection it reads on, so readers waiting for it while holding
// theirs cannot starve it of one.
func loadEntries(ctx context.Context, store sqlkv.Store) ([]*entry, error) {
	feed := newNodeFeed()
	var orphans [3][]*entry // records of uuids without a node record, by prefix
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer feed.finish()
		return readNodes(gctx, store, feed)
	})
	for p, prefix := range []string{heartbeatPrefix, resourcePrefix, expiredPrefix} {
		g.Go(func() error {
			var err error
			orphans[p], err = readInto(gctx, store, prefix, feed)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out, _, _ := feed.published()
	for p, prefix := range []string{heartbeatPrefix, resourcePrefix, expiredPrefix} {
		out = mergeOrphans(out, orphans[p], prefix)
	}
	return out, nil
}

// nodeFeed is the entries the node reader of a load has made so far, in
// uuid order, for the readers of the other prefixes.
type nodeFeed struct {
	started   chan struct{} // closed at the node reader's first record, or when it is done
	startOnce sync.Once

	mu      sync.Mutex
	entries []*entry      // appended to only: a reader's copy of the slice stays valid
	done    bool          // entries are all there are
	more    chan struct{} // closed and replaced when entries grow or done is set
}

func newNodeFeed() *nodeFeed {
	return &nodeFeed{started: make(chan struct{}), more: make(chan struct{})}
}

func (f *nodeFeed) start() { f.startOnce.Do(func() { close(f.started) }) }

// publish adds batch, in uuid order after every entry published before.
func (f *nodeFeed) publish(batch []*entry) {
	f.mu.Lock()
	f.entries = append(f.entries, batch...)
	close(f.more)
	f.more = make(chan struct{})
	f.mu.Unlock()
}

// finish marks the entries complete (or the node reader failed: its error
// ends the load).
func (f *nodeFeed) finish() {
	f.start()
	f.mu.Lock()
	f.done = true
	close(f.more)
	f.more = make(chan struct{})
	f.mu.Unlock()
}

// published returns the entries published so far, whether they are all,
// and a channel closed when that changes.
func (f *nodeFeed) published() ([]*entry, bool, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entries, f.done, f.more
}

// publishEvery is how many entries the node reader makes between publishes.
const publishEvery = 1024

// readNodes reads the node records into entries and publishes them to feed.
func readNodes(ctx context.Context, store sqlkv.Store, feed *nodeFeed) error {
	batch := make([]*entry, 0, publishEvery)
	var d decoder
	err := sqlkv.RangeFunc(ctx, store, sqlkv.PrefixRange([]byte(nodePrefix)), func(kv sqlkv.Entry) error {
		feed.start()
		e := &entry{uuid: uuidOf(kv.Key, nodePrefix)}
		if err := d.set(e, nodePrefix, kv.Key, kv.Value, kv.Version); err != nil {
			return err
		}
		if batch = append(batch, e); len(batch) == publishEvery {
			feed.publish(batch)
			batch = batch[:0]
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("load %s: %w", nodePrefix, err)
	}
	feed.publish(batch)
	return nil
}

// readInto reads the records under prefix (heartbeat, resource or expiry)
// into the entries of feed, and returns the entries it made for records
// without a node record (a report left by a crashed delete, an expiry
// record), in uuid order, to be merged in.
func readInto(ctx context.Context, store sqlkv.Store, prefix string, feed *nodeFeed) ([]*entry, error) {
	select {
	case <-feed.started:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var orphans []*entry
	var d decoder
	nodes, all, more := feed.published()
	next := 0 // nodes[:next] are before every key read so far
	err := sqlkv.RangeFunc(ctx, store, sqlkv.PrefixRange([]byte(prefix)), func(kv sqlkv.Entry) error {
		id := kv.Key[len(prefix):]
		for {
			for next < len(nodes) && nodes[next].uuid < string(id) {
				next++
			}
			if next < len(nodes) || all {
				break
			}
			// Past the node records published: wait for more.
			select {
			case <-more:
			case <-ctx.Done():
				return ctx.Err()
			}
			nodes, all, more = feed.published()
		}
		e := (*entry)(nil)
		if next < len(nodes) && nodes[next].uuid == string(id) {
			e = nodes[next]
		} else {
			e = &entry{uuid: string(id)}
			orphans = append(orphans, e)
		}
		return d.set(e, prefix, kv.Key, kv.Value, kv.Version)
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", prefix, err)
	}
	return orphans, nil
}

// mergeOrphans merges the entries of orphans (made for records under
// prefix without a node record, in uuid order) into entries (in uuid
// order): an orphan whose uuid is in entries, because an orphan of another
// prefix made it, gives it its record.
func mergeOrphans(entries, orphans []*entry, prefix string) []*entry {
	if len(orphans) == 0 {
		return entries
	}
	out := make([]*entry, 0, len(entries)+len(orphans))
	i := 0
	for _, o := range orphans {
		for i < len(entries) && entries[i].uuid < o.uuid {
			out = append(out, entries[i])
			i++
		}
		if i < len(entries) && entries[i].uuid == o.uuid {
			copyRecord(entries[i], o, prefix)
			continue
		}
		out = append(out, o)
	}
	return append(out, entries[i:]...)
}

// copyRecord copies src's record under prefix into dst.
func copyRecord(dst, src *entry, prefix string) {
	switch prefix {
	case nodePrefix:
		dst.node, dst.nv, dst.meta = src.node, src.nv, src.meta
	case heartbeatPrefix:
		dst.hb, dst.hv, dst.health = src.hb, src.hv, src.health
	case resourcePrefix:
		dst.res, dst.rv, dst.resMeta = src.res, src.rv, src.resMeta
	case expiredPrefix:
		dst.expiredAt, dst.ev = src.expiredAt, src.ev
	}
}

// setRecord decodes value as the record of e under prefix. The maps go
// straight into their packed form (packer), never made.
func setRecord(e *entry, prefix string, key, value []byte, version int64) error {
	var d decoder
	return d.set(e, prefix, key, value, version)
}

// decoder is setRecord with a buffer for the packed maps that it reuses
// from one record to the next (a packed map is copied out of it into a
// string of its exact size); one per goroutine.
type decoder struct{ buf []byte }

func (d *decoder) set(e *entry, prefix string, key, value []byte, version int64) error {
	p := packer{b: d.buf[:0]}
	defer func() { d.buf = p.b }()
	var err error
	switch prefix {
	case nodePrefix:
		var n records.Node
		if n, err = records.DecodeNodeTo(value, p.add); err == nil {
			e.node, e.nv, e.meta = &nodeRecord{IP: n.IP, Port: n.Port, HTTPPort: n.HTTPPort, Status: Status(n.Status), RegisteredAt: n.RegisteredAt}, version, p.packed()
		}
	case heartbeatPrefix:
		h := new(heartbeatRecord)
		if err = records.DecodeHeartbeatInto(value, (*records.Heartbeat)(h), p.add); err == nil {
			e.hb, e.hv, e.health = h, version, p.packed()
		}
	case resourcePrefix:
		r := new(resourceRecord)
		if err = records.DecodeResourceInto(value, (*records.Resource)(r), p.add); err == nil {
			e.res, e.rv, e.resMeta = r, version, p.packed()
		}
	case expiredPrefix:
		var rec expiredRecord
		if rec, err = decode[expiredRecord](key, value); err == nil {
			e.expiredAt, e.ev = rec.At, version
		}
		return err
	}
	if err != nil {
		return fmt.Errorf("decode %q: %w", key, err)
	}
	return nil
}

// clearRecord removes e's record under prefix.
func clearRecord(e *entry, prefix string) {
	switch prefix {
	case nodePrefix:
		e.node, e.nv, e.meta = nil, 0, ""
	case heartbeatPrefix:
		e.hb, e.hv, e.health = nil, 0, ""
	case resourcePrefix:
		e.res, e.rv, e.resMeta = nil, 0, ""
	case expiredPrefix:
		e.expiredAt, e.ev = 0, 0
	}
}

// versionOf returns e's version of the record under prefix (0: absent).
func versionOf(e *entry, prefix string) int64 {
	switch prefix {
	case nodePrefix:
		return e.nv
	case heartbeatPrefix:
		return e.hv
	case resourcePrefix:
		return e.rv
	}
	return e.ev
}

var viewPrefixes = []string{nodePrefix, heartbeatPrefix, resourcePrefix, expiredPrefix}

// splitKey returns the prefix and uuid of a key the view holds.
func splitKey(key []byte) (prefix, id string, ok bool) {
	k := string(key)
	for _, p := range viewPrefixes {
		if id, ok := strings.CutPrefix(k, p); ok {
			return p, id, true
		}
	}
	return "", "", false
}

// applyChanges brings the view up to date with one batch of the feed.
//
// A put that carries its value (in-process feeds) and is newer than the
// view's copy of an existing record is applied as is: versions of one key
// grow with its writes, so it is the later state. Everything else (a
// delete, a record the view does not hold, a feed without values) is
// re-read from the store, with one query for the whole batch; a re-read
// is the current committed state whatever order the feed reported writes
// in. On Postgres, a change to any record of a node re-reads all four, so
// one transaction's writes (register: node and heartbeat; expiry: delete
// and expiry record) become one event even when their notifications land
// in two batches.
func (v *View) applyChanges(ctx context.Context, changes []sqlkv.Change, position uint64) error {
	type touched struct {
		reread map[string]bool // prefixes to read back
		values map[string]sqlkv.Change
	}
	byID := make(map[string]*touched)
	var order []string
	v.mu.RLock()
	for _, c := range changes {
		prefix, id, ok := splitKey(c.Key)
		if !ok {
			continue
		}
		t := byID[id]
		if t == nil {
			t = &touched{reread: map[string]bool{}, values: map[string]sqlkv.Change{}}
			byID[id] = t
			order = append(order, id)
		}
		cur := v.entryOf(id)
		switch {
		case c.HasValue && c.Version > 0 && !c.Deleted && cur != nil && versionOf(cur, prefix) != 0:
			if prev, ok := t.values[prefix]; !ok || c.Version > prev.Version {
				t.values[prefix] = c
			}
		case c.HasValue:
			t.reread[prefix] = true
		default:
			for _, p := range viewPrefixes {
				t.reread[p] = true
			}
		}
	}
	v.mu.RUnlock()

	var keys [][]byte
	for _, id := range order {
		for _, p := range viewPrefixes {
			if byID[id].reread[p] {
				keys = append(keys, []byte(p+id))
			}
		}
	}
	read := map[string]sqlkv.Entry{}
	for len(keys) > 0 {
		n := min(len(keys), loadChunk)
		got, err := sqlkv.GetMany(ctx, v.store, keys[:n]...)
		if err != nil {
			return fmt.Errorf("apply changes: %w", err)
		}
		for _, e := range got {
			read[string(e.Key)] = e
		}
		keys = keys[n:]
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	for _, id := range order {
		t := byID[id]
		cur := v.entryOf(id)
		next := &entry{uuid: id}
		if cur != nil {
			*next = *cur
		}
		for _, p := range viewPrefixes {
			if t.reread[p] {
				if e, ok := read[p+id]; ok {
					if err := setRecord(next, p, e.Key, e.Value, e.Version); err != nil {
						return err
					}
				} else {
					clearRecord(next, p)
				}
				continue
			}
			if c, ok := t.values[p]; ok && c.Version > versionOf(next, p) {
				if err := setRecord(next, p, c.Key, c.Value, c.Version); err != nil {
					return err
				}
			}
		}
		if next.empty() {
			next = nil
		}
		v.replace(cur, next)
	}
	v.applied = max(v.applied, position)
	v.failure = nil
	v.broadcast()
	return nil
}

// build fills the empty view with entries (in uuid order), as a replace
// of each in descending uuid order would, but each tree on a goroutine of
// its own: the first load, which no watcher sees (every watch starts after
// it), while no value order is built or being built (sortIndex.onlyUUID).
// v.mu must be held. Every tree is filled in descending order of its
// items, so that it is built dense (see buildTrees): the uuid trees from
// entries, the others after a sort.
func (v *View) build(entries []*entry) {
	var wg sync.WaitGroup
	wg.Go(func() { fillDesc(v.byUUID, entries) })
	wg.Go(func() {
		v.byID = newUUIDIndex(len(entries))
		for _, e := range entries {
			v.byID.put(e)
		}
	})
	wg.Go(func() {
		var byRank [rankCount][]*entry
		for _, e := range entries {
			if e.node != nil {
				r := rankOf(e.status())
				byRank[r] = append(byRank[r], e)
			}
		}
		for r, tree := range v.sorted.byUUID {
			fillDesc(tree, byRank[r])
		}
	})
	deadlines := func(tree *btree.BTreeG[deadline], at func(e *entry) (int64, bool)) {
		wg.Go(func() {
			n := 0
			for _, e := range entries {
				if _, ok := at(e); ok {
					n++
				}
			}
			items := make([]deadline, 0, n)
			for _, e := range entries {
				if t, ok := at(e); ok {
					items = append(items, deadline{t, e.uuid})
				}
			}
			slices.SortFunc(items, func(a, b deadline) int {
				if a.at != b.at {
					return cmp.Compare(a.at, b.at)
				}
				return strings.Compare(a.uuid, b.uuid)
			})
			fillDesc(tree, items)
		})
	}
	deadlines(v.byLastSeen, func(e *entry) (int64, bool) {
		if e.node == nil {
			return 0, false
		}
		return e.lastSeen(), true
	})
	deadlines(v.byHeartbeat, func(e *entry) (int64, bool) {
		if e.node == nil || e.status() != StatusActive {
			return 0, false
		}
		return e.lastSeen(), true
	})
	deadlines(v.byReport, func(e *entry) (int64, bool) {
		if e.res == nil {
			return 0, false
		}
		return e.res.UpdatedAt, true
	})
	deadlines(v.byExpiry, func(e *entry) (int64, bool) { return e.expiredAt, e.ev != 0 })
	// The counters and the events, as replace makes them.
	for _, e := range slices.Backward(entries) {
		v.stats.account(e, +1, v.opts.thresholds)
		if kind, ok := eventKind(nil, e); ok {
			v.seq++
			v.ring[v.seq%uint64(len(v.ring))] = event{seq: v.seq, kind: kind, cur: e}
		}
	}
	v.head.Store(v.seq)
	wg.Wait()
}

// fillDesc inserts items, in ascending order, into tree in descending order.
func fillDesc[T any](tree *btree.BTreeG[T], items []T) {
	for _, it := range slices.Backward(items) {
		tree.ReplaceOrInsert(it)
	}
}

// replace swaps old for next (either may be nil) in the trees, the counters
// and, if the node's visible state changed, the event ring. v.mu must be
// held.
func (v *View) replace(old, next *entry) {
	if old != nil {
		v.unindex(old)
		v.stats.account(old, -1, v.opts.thresholds)
	}
	if next != nil {
		v.byUUID.ReplaceOrInsert(next)
		v.byID.put(next)
		v.index(next)
		v.stats.account(next, +1, v.opts.thresholds)
	} else if old != nil {
		v.byUUID.Delete(old)
		v.byID.delete(old.uuid)
	}
	if kind, ok := eventKind(old, next); ok {
		v.seq++
		v.head.Store(v.seq)
		ev := event{seq: v.seq, kind: kind, cur: next}
		if kind != EventHeartbeat {
			ev.prev = old
		}
		v.ring[v.seq%uint64(len(v.ring))] = ev
	}
}

func (v *View) index(e *entry) {
	if e.node != nil {
		v.byLastSeen.ReplaceOrInsert(deadline{e.lastSeen(), e.uuid})
		if e.status() == StatusActive {
			v.byHeartbeat.ReplaceOrInsert(deadline{e.lastSeen(), e.uuid})
		}
	}
	if e.res != nil {
		v.byReport.ReplaceOrInsert(deadline{e.res.UpdatedAt, e.uuid})
	}
	if e.ev != 0 {
		v.byExpiry.ReplaceOrInsert(deadline{e.expiredAt, e.uuid})
	}
	v.sorted.index(e)
}

func (v *View) unindex(e *entry) {
	if e.node != nil {
		v.byLastSeen.Delete(deadline{e.lastSeen(), e.uuid})
		v.byHeartbeat.Delete(deadline{e.lastSeen(), e.uuid})
	}
	if e.res != nil {
		v.byReport.Delete(deadline{e.res.UpdatedAt, e.uuid})
	}
	if e.ev != 0 {
		v.byExpiry.Delete(deadline{e.expiredAt, e.uuid})
	}
	v.sorted.unindex(e)
}

// get returns the entry of uuid from the current view, nil if none; the
// caller has synced.
func (v *View) get(id string) *entry {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.entryOf(id)
}

// entryOf returns the entry of uuid id, or nil; v.mu must be held. It reads
// byID, the hash index beside the uuid tree (see uuidIndex), and allocates
// nothing (the tree's Get needs a probe entry).
func (v *View) entryOf(id string) *entry { return v.byID.get(id) }

// snapshot returns a copy-on-write clone of the uuid tree, which the caller
// may iterate without locks, and the number of the last event it includes.
func (v *View) snapshot() (*btree.BTreeG[*entry], uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byUUID.Clone(), v.seq
}
