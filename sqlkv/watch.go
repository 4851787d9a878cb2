package sqlkv

import (
	"bytes"
	"context"
	"fmt"
	"sync"
)

// Change is one write to a key, as a Watchable store reports it. It carries
// the key and version, never the value: a watcher re-reads what it tracks,
// so a change report stays small and cannot be stale.
type Change struct {
	Key []byte
	// Version is the key's version after the write; 0 for a delete, and for
	// writes whose version the store did not learn (BatchPut).
	Version int64
	// Deleted reports that the write removed the key.
	Deleted bool
	// Value is the value written, when HasValue: in-process feeds
	// (sqlkv/watchstore) carry it so a subscriber can skip re-reading a
	// put whose Version is newer than what it holds. Subscribers must not
	// modify it.
	Value    []byte
	HasValue bool
}

// Batch is what Subscription.Next returns: changes in the order the store
// learnt of them, or a request to resynchronise.
type Batch struct {
	Changes []Change
	// Resync means changes may have been missed (the subscriber fell behind,
	// or the store lost its notification connection): re-read everything
	// the subscriber tracks. Changes is then empty.
	Resync bool
	// Position is the subscription's Position just after this batch: a
	// subscriber that has applied it has applied every change and resync
	// handed to the subscription up to that Position.
	Position uint64
}

// Watchable is implemented by stores that report their writes: the memory
// and SQLite stores wrapped by sqlkv/watchstore (in-process), and the
// Postgres store (LISTEN/NOTIFY, so writes by every process sharing the
// database are reported).
type Watchable interface {
	// Watch subscribes to the writes to keys starting with prefix ("" for
	// all) committed after Watch returns, and maybe some committed shortly
	// before, which a subscriber recognises by version. Changes to one key
	// may be reported out of order and more than once; only the key's
	// current state, re-read, is authoritative. Writes never wait for
	// subscribers: one that falls behind gets a Resync batch.
	//
	// Errors: ErrUnavailable when the store cannot start listening,
	// ErrClosed after Close, the context's error.
	Watch(ctx context.Context, prefix []byte) (*Subscription, error)
}

// Fencer is implemented by Watchable stores that can prove a subscription
// is caught up with the store, which is what a reader serving from an
// in-memory copy kept by the feed needs to be linearizable (see
// service/registry's View).
type Fencer interface {
	// Fence returns once every write that anyone could know of before
	// Fence was called, in any process sharing the store, has been handed
	// to the store's subscriptions: their Position afterwards covers it.
	// Known, not just returned: a write is visible to readers of the store
	// from its commit on, before its writer hears back, and a reader (or a
	// write whose condition it failed) may have acted on it. In-process
	// feeds (sqlkv/watchstore) make every call through the store wait until
	// the writes it may have seen are published, so their Fence only waits
	// for a publication under way, if any. The Postgres store covers every
	// write committed before the call: it sends a NOTIFY through the
	// database and waits for it on its LISTEN connection (notifications
	// arrive in commit order); concurrent callers share one.
	//
	// Errors: ErrUnavailable when the database or the listening connection
	// fails, ErrClosed after Close, the context's error.
	Fence(ctx context.Context) error
}

// SubscriptionBuffer is how many changes a Subscription holds before it
// drops them and asks for a resync instead.
const SubscriptionBuffer = 8192

// Feed fans changes out to subscriptions, in process. Its zero value is
// ready to use; it is safe for concurrent use. Publishing never blocks.
type Feed struct {
	mu     sync.RWMutex
	subs   map[*Subscription]struct{}
	closed bool
}

// Subscribe returns a subscription to the changes of keys under prefix
// published from now on. It returns an error wrapping ErrClosed after Close.
func (f *Feed) Subscribe(prefix []byte) (*Subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("watch: %w", ErrClosed)
	}
	if f.subs == nil {
		f.subs = make(map[*Subscription]struct{})
	}
	s := &Subscription{feed: f, prefix: bytes.Clone(prefix), ready: make(chan struct{}, 1)}
	f.subs[s] = struct{}{}
	return s, nil
}

// Publish hands changes to every subscription whose prefix they match.
func (f *Feed) Publish(changes ...Change) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs {
		s.add(changes)
	}
}

// Resync tells every subscription to re-read what it tracks.
func (f *Feed) Resync() {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for s := range f.subs {
		s.resync()
	}
}

// Subscribers returns how many subscriptions are open.
func (f *Feed) Subscribers() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return len(f.subs)
}

// Close ends every subscription: their Next returns ErrClosed.
func (f *Feed) Close() {
	f.mu.Lock()
	subs := f.subs
	f.subs, f.closed = nil, true
	f.mu.Unlock()
	for s := range subs {
		s.end()
	}
}

// Subscription receives the changes a Feed publishes. Use it from one
// goroutine.
type Subscription struct {
	feed   *Feed
	prefix []byte
	ready  chan struct{} // holds a token while there is something to take

	mu       sync.Mutex
	pending  []Change
	resyncd  bool
	ended    bool
	position uint64 // changes and resyncs handed over so far
}

func (s *Subscription) add(changes []Change) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.resyncd {
		return
	}
	added := false
	for _, c := range changes {
		if !bytes.HasPrefix(c.Key, s.prefix) {
			continue
		}
		s.position++
		if len(s.pending) >= SubscriptionBuffer {
			s.pending, s.resyncd = nil, true
			break
		}
		s.pending = append(s.pending, c)
		added = true
	}
	if added || s.resyncd {
		s.signal()
	}
}

func (s *Subscription) resync() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.position++
	s.pending, s.resyncd = nil, true
	s.signal()
}

func (s *Subscription) end() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended = true
	s.signal()
}

func (s *Subscription) signal() {
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// Ready returns a channel that receives a value when Take has something to
// return, for use in a select.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Take returns what has arrived since the last Take without waiting: a
// batch, empty if nothing has. It returns an error wrapping ErrClosed once
// the feed or the subscription is closed.
func (s *Subscription) Take() (Batch, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return Batch{}, fmt.Errorf("watch: %w", ErrClosed)
	}
	b := Batch{Changes: s.pending, Resync: s.resyncd, Position: s.position}
	s.pending, s.resyncd = nil, false
	return b, nil
}

// Position counts the changes and resyncs handed to the subscription so
// far (taken or not). A subscriber that has applied the batch Take returned
// with this Position, or a later one, has seen them all; with Fencer.Fence
// before it, that is every write that returned before the Fence.
func (s *Subscription) Position() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.position
}

// Next waits for changes and returns them. Errors: the context's error, or
// one wrapping ErrClosed once the feed or the subscription is closed.
func (s *Subscription) Next(ctx context.Context) (Batch, error) {
	for {
		b, err := s.Take()
		if err != nil || b.Resync || len(b.Changes) > 0 {
			return b, err
		}
		select {
		case <-ctx.Done():
			return Batch{}, ctx.Err()
		case <-s.ready:
		}
	}
}

// Close ends the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	f := s.feed
	f.mu.Lock()
	delete(f.subs, s)
	f.mu.Unlock()
	s.end()
}
