package watchstore

import (
	"context"
	"fmt"
	"sync"
)

// inflight numbers the writes through a Store and lets Fence wait for the
// ones that began before it.
//
// A write is visible to readers of the wrapped store from its commit on,
// which is before it has been published: a reader that reads the store
// directly (a registry's read-then-write, a view re-reading a key) can see
// it, and act on it, while a fence that only looked at the subscriptions'
// positions would not cover it. Every write that committed before a Fence
// began before it, so waiting for those to be published is enough; it
// costs a read at most the writes already in flight, and nothing when there
// are none.
type inflight struct {
	mu    sync.Mutex
	begun uint64              // tickets handed out, 1, 2, ...
	low   uint64              // every ticket up to low has ended
	above map[uint64]struct{} // ended tickets above low+1
	moved chan struct{}       // closed when low moves, if someone waits
}

// begin hands out the ticket of a write about to start.
func (w *inflight) begin() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.begun++
	return w.begun
}

// end records that the write of ticket t has been published (or failed).
func (w *inflight) end(t uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t != w.low+1 {
		if w.above == nil {
			w.above = make(map[uint64]struct{})
		}
		w.above[t] = struct{}{}
		return
	}
	w.low = t
	for {
		if _, ok := w.above[w.low+1]; !ok {
			break
		}
		delete(w.above, w.low+1)
		w.low++
	}
	if w.moved != nil {
		close(w.moved)
		w.moved = nil
	}
}

// wait returns once every write that began before it was called has ended.
// Errors: the context's, wrapped.
func (w *inflight) wait(ctx context.Context) error {
	w.mu.Lock()
	target := w.begun
	for w.low < target {
		if w.moved == nil {
			w.moved = make(chan struct{})
		}
		ch := w.moved
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fence: waiting for writes in flight: %w", ctx.Err())
		}
		w.mu.Lock()
	}
	w.mu.Unlock()
	return nil
}
