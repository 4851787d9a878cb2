package watchstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// Writes between their commit and their publication.
//
// A write commits in the wrapped store before it is handed to the feed: in
// between, a reader of the store (a registry's read-then-write, a Delete
// answering not_found, a view re-reading a key) could see it and act on
// it, while a read fence, looking at the subscriptions' positions, would
// not cover it. So no call through a Store returns what the wrapped store
// told it until every write its answer could reflect has been published:
// once the wrapped store answered, a call waits for the other writes in
// flight on its keys (on any key, for a range), the ones that began before
// that answer (a write that began later cannot have committed before it).
// A write publishes before it waits, so waits never form a cycle. The cost
// is paid by calls that touch the keys of writes in flight, which is what
// writers of one key already contend on; reads served by a view, which
// only fence, do not wait for writes still running.
//
// Fence then only needs the writes that are being handed to the
// subscriptions, one after the other, at that moment (see Store.Fence).

// pending is one write through a Store, from before its call to the
// wrapped store until it has been published (or failed).
type pending struct {
	keys       [][]byte // the keys it writes; prefix instead, if wide
	prefix     []byte   // DeletePrefix: every key under it
	wide       bool
	publishing bool          // being handed to the subscriptions
	done       chan struct{} // closed once published, or failed
}

// touches reports whether p may write key.
func (p *pending) touches(key []byte) bool {
	if p.wide {
		return bytes.HasPrefix(key, p.prefix)
	}
	for _, k := range p.keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	return false
}

// inflight is the set of pending writes of a Store.
type inflight struct {
	mu         sync.Mutex
	all        map[*pending]struct{}
	byKey      map[string][]*pending // the writes of each key, wide ones apart
	wide       map[*pending]struct{}
	publishing atomic.Int64 // how many are publishing, for waitPublishing
}

// begin registers a write of keys, or of every key under prefix when wide,
// before it is sent to the wrapped store.
func (w *inflight) begin(keys [][]byte, prefix []byte, wide bool) *pending {
	p := &pending{keys: keys, prefix: prefix, wide: wide, done: make(chan struct{})}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.all == nil {
		w.all = make(map[*pending]struct{})
		w.byKey = make(map[string][]*pending)
		w.wide = make(map[*pending]struct{})
	}
	w.all[p] = struct{}{}
	if wide {
		w.wide[p] = struct{}{}
		return p
	}
	for _, k := range keys {
		w.byKey[string(k)] = append(w.byKey[string(k)], p)
	}
	return p
}

// publish hands p's changes to the subscriptions with send (nil: nothing to
// send) and ends p.
func (w *inflight) publish(p *pending, send func()) {
	if send != nil {
		w.mu.Lock()
		p.publishing = true
		w.publishing.Add(1)
		w.mu.Unlock()
		send()
	}
	w.mu.Lock()
	if p.publishing {
		w.publishing.Add(-1)
	}
	delete(w.all, p)
	delete(w.wide, p)
	for _, k := range p.keys {
		ps := w.byKey[string(k)]
		for i, q := range ps {
			if q == p {
				ps = append(ps[:i], ps[i+1:]...)
				break
			}
		}
		if len(ps) == 0 {
			delete(w.byKey, string(k))
		} else {
			w.byKey[string(k)] = ps
		}
	}
	w.mu.Unlock()
	close(p.done)
}

// waitKeys waits until every pending write of one of keys, other than
// self (nil for a read), has ended.
func (w *inflight) waitKeys(ctx context.Context, self *pending, keys [][]byte) error {
	w.mu.Lock()
	var wait []*pending
	for _, k := range keys {
		for _, p := range w.byKey[string(k)] {
			if p != self {
				wait = append(wait, p)
			}
		}
	}
	for p := range w.wide {
		if p == self {
			continue
		}
		for _, k := range keys {
			if p.touches(k) {
				wait = append(wait, p)
				break
			}
		}
	}
	w.mu.Unlock()
	return waitAll(ctx, wait)
}

// waitPublishing waits until every write being published when it was
// called has ended: at once, without the lock, when there is none.
func (w *inflight) waitPublishing(ctx context.Context) error {
	if w.publishing.Load() == 0 {
		return nil
	}
	return w.waitMatching(ctx, func(p *pending) bool { return p.publishing })
}

// waitMatching waits until every pending write for which match holds has
// ended.
func (w *inflight) waitMatching(ctx context.Context, match func(*pending) bool) error {
	w.mu.Lock()
	var wait []*pending
	for p := range w.all {
		if match(p) {
			wait = append(wait, p)
		}
	}
	w.mu.Unlock()
	return waitAll(ctx, wait)
}

func waitAll(ctx context.Context, ps []*pending) error {
	for _, p := range ps {
		select {
		case <-p.done:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a write in flight: %w", ctx.Err())
		}
	}
	return nil
}
