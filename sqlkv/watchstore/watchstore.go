// Package watchstore makes any sqlkv.Store watchable within one process: it
// wraps the store and, after each successful write, publishes the written
// keys and versions to an in-process sqlkv.Feed. It is how the memory and
// SQLite backends, whose writers all live in one SMS process, serve watches;
// the Postgres store is watchable on its own, across processes.
//
// It touches no backend's write path: a write is published after the
// wrapped store returned, so a subscriber never hears of a write before it
// can read it. Puts are published with their value (a copy), so a
// subscriber keeping a copy of the data need not read it back. A write is
// visible in the wrapped store before it is published; no call through the
// Store answers from such a write before it has been published (see
// inflight.go), which is what makes Fence cheap.
//
// Every write is published because every write goes through one of the
// write methods below: the Store holds the wrapped store in an unexported
// field (nothing of it is promoted), and the write operations of package
// sqlkv that it has no method for (PutValue, DeleteKey, BatchDelete, and
// any added later) are derived from its Apply. A fast path it forwards
// (BatchPut, DeletePrefix) publishes what it wrote.
package watchstore

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// Store is a sqlkv.Store that reports its writes; see the package doc. Its
// methods are the sqlkv.Store core, Watch and Fence, Degraded, and the fast
// paths GetMany, Count, BatchPut, DeletePrefix and RangeFunc.
type Store struct {
	next   sqlkv.Store
	feed   sqlkv.Feed
	writes inflight
	closed atomic.Bool
}

var (
	_ sqlkv.Store         = (*Store)(nil)
	_ sqlkv.Watchable     = (*Store)(nil)
	_ sqlkv.Fencer        = (*Store)(nil)
	_ sqlkv.Degrader      = (*Store)(nil)
	_ sqlkv.MultiGetter   = (*Store)(nil)
	_ sqlkv.Counter       = (*Store)(nil)
	_ sqlkv.BatchPutter   = (*Store)(nil)
	_ sqlkv.PrefixDeleter = (*Store)(nil)
	_ sqlkv.RangeStreamer = (*Store)(nil)
)

// New returns store wrapped so that its writes are reported to Watch. Every
// write must go through the returned Store to be reported, and every read
// of the data through it to be linearizable with what the subscriptions
// report.
func New(store sqlkv.Store) *Store { return &Store{next: store} }

// Watch subscribes to the writes made through s from now on; see
// sqlkv.Watchable. It returns an error wrapping sqlkv.ErrClosed after Close.
func (s *Store) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.feed.Subscribe(prefix)
}

// Fence returns once every write committed before it was called has been
// handed to every subscription; see sqlkv.Fencer. A write that returned
// was handed over before it returned, and no call through s answered from
// a write that had not been: what is left are the writes being handed over
// at that moment, one subscription after the other, which Fence waits for
// (at once when there are none). It returns an error wrapping
// sqlkv.ErrClosed after Close, and the context's error.
func (s *Store) Fence(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("fence: %w", sqlkv.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.writes.waitPublishing(ctx); err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	return nil
}

// write runs one write of keys (wide: of every key under prefix) through do,
// which calls the wrapped store and returns what publishes it; then, once
// published, it waits for the other writes of those keys in flight (see
// inflight.go). Errors: do's; the context's while waiting, after do
// succeeded (the write is then done).
//
// A store may commit a write after its caller gave up: SQLite's group
// commit runs a group to the end once it took it, while each caller stops
// waiting at its own deadline. Such a write must still be published, or the
// views would miss a committed change until the key changes again (a
// deleted node would stay listed). So when ctx can end, do runs on its own
// goroutine with ctx's values but not its cancellation (bounded by ctx's
// deadline plus settleGrace), and publishes when the write settles;
// the caller is answered with ctx's error if it ends first (the write's
// outcome is then unknown to it, as with any store), and readers of the keys
// wait for the publish as for any write in flight. A ctx that has already
// ended writes nothing. Callers must not read what do sets unless write
// returned nil.
func (s *Store) write(ctx context.Context, keys [][]byte, prefix []byte, wide bool, do func(ctx context.Context) (publish func(), err error)) error {
	if err := ctx.Err(); err != nil {
		return err // a caller that already gave up writes nothing
	}
	p := s.writes.begin(keys, prefix, wide)
	var err error
	if ctx.Done() == nil {
		err = s.settle(ctx, p, do)
	} else {
		done := make(chan error, 1)
		go func() {
			wctx, cancel := detach(ctx)
			defer cancel()
			done <- s.settle(wctx, p, do)
		}()
		select {
		case err = <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if wide {
		return errors2(err, s.writes.waitMatching(ctx, func(q *pending) bool { return q != p }))
	}
	return errors2(err, s.writes.waitKeys(ctx, p, keys))
}

// settle runs do and publishes what it wrote (nothing if it failed).
func (s *Store) settle(ctx context.Context, p *pending, do func(context.Context) (func(), error)) error {
	send, err := do(ctx)
	if err != nil {
		send = nil
	}
	s.writes.publish(p, send)
	return err
}

// settleGrace is how long a write may run on after its caller's deadline
// (see write): long enough for a commit already under way, short enough
// that a database which stopped answering does not keep writers forever.
const settleGrace = 30 * time.Second

// detach returns ctx without its cancellation, ending settleGrace after
// ctx's deadline if it has one.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(wctx, d.Add(settleGrace))
	}
	return wctx, func() {}
}

// read waits, after a read of keys (nil: of a range) answered, for the
// writes in flight it may have seen.
func (s *Store) read(ctx context.Context, err error, keys ...[]byte) error {
	if keys == nil {
		return errors2(err, s.writes.waitMatching(ctx, func(*pending) bool { return true }))
	}
	return errors2(err, s.writes.waitKeys(ctx, nil, keys))
}

// errors2 returns the first of a call's error and its wait's.
func errors2(call, wait error) error {
	if call != nil {
		return call
	}
	return wait
}

// Get is the wrapped store's; it answers once the writes of key in flight
// that it may have seen are published.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	e, err := s.next.Get(ctx, key)
	return e, s.read(ctx, err, key)
}

// Range is the wrapped store's; it answers once every write in flight it
// may have seen is published (ranges wait for all of them: they serve
// loads, not requests).
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	entries, err := s.next.Range(ctx, opts)
	return entries, s.read(ctx, err)
}

// RangeFunc is sqlkv.RangeFunc on the wrapped store, which streams where
// it can; it returns once every write in flight it may have seen is
// published, like Range (fn may have been given such a write's entry
// before: a load that subscribed first applies it again, harmlessly).
func (s *Store) RangeFunc(ctx context.Context, opts sqlkv.RangeOptions, fn func(sqlkv.Entry) error) error {
	return s.read(ctx, sqlkv.RangeFunc(ctx, s.next, opts, fn))
}

// Apply is the wrapped store's, with its puts and its deletes of existing
// keys reported. It is also how PutValue, DeleteKey and BatchDelete write.
// A failed condition waits like a read: it may be what another write in
// flight did.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	keys := make([][]byte, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	var results []sqlkv.OpResult
	err := s.write(ctx, keys, nil, false, func(ctx context.Context) (func(), error) {
		var err error
		results, err = s.next.Apply(ctx, ops...)
		if err != nil {
			return nil, err
		}
		changes := make([]sqlkv.Change, 0, len(ops))
		for i, op := range ops {
			switch {
			case op.Kind == sqlkv.OpPut:
				changes = append(changes, sqlkv.Change{Key: op.Key, Version: results[i].Version, Value: bytes.Clone(op.Value), HasValue: true})
			case op.Kind == sqlkv.OpDelete && results[i].Existed:
				changes = append(changes, sqlkv.Change{Key: op.Key, Deleted: true})
			}
		}
		if len(changes) == 0 {
			return nil, nil
		}
		return func() { s.feed.Publish(changes...) }, nil
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// BatchPut is sqlkv.BatchPut on the wrapped store (its bulk statement where
// it has one), reported without versions.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	keys := make([][]byte, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return s.write(ctx, keys, nil, false, func(ctx context.Context) (func(), error) {
		err := sqlkv.BatchPut(ctx, s.next, entries)
		if len(entries) == 0 {
			return nil, err
		}
		return s.publishKeys(keys, false), err
	})
}

// publishKeys returns what publishes a change without value or version of
// each of keys, deletes if deleted.
func (s *Store) publishKeys(keys [][]byte, deleted bool) func() {
	return func() {
		changes := make([]sqlkv.Change, len(keys))
		for i, k := range keys {
			changes[i] = sqlkv.Change{Key: k, Deleted: deleted}
		}
		s.feed.Publish(changes...)
	}
}

// DeletePrefix is sqlkv.DeletePrefix on the wrapped store, atomic where it
// is. The keys it removed are not known, so subscribers are told to resync.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	var n int64
	err := s.write(ctx, nil, prefix, true, func(ctx context.Context) (func(), error) {
		var err error
		n, err = sqlkv.DeletePrefix(ctx, s.next, prefix)
		if n == 0 {
			return nil, err
		}
		return s.feed.Resync, err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// GetMany reads through to the wrapped store, with one query where it can
// (see sqlkv.GetMany); see Get.
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	entries, err := sqlkv.GetMany(ctx, s.next, keys...)
	if len(keys) == 0 {
		return entries, err
	}
	return entries, s.read(ctx, err, keys...)
}

// Count is sqlkv.Count on the wrapped store, which counts without reading
// where it can; see Range.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	n, err := sqlkv.Count(ctx, s.next, prefix)
	return n, s.read(ctx, err)
}

// Ping is the wrapped store's.
func (s *Store) Ping(ctx context.Context) error { return s.next.Ping(ctx) }

// Degraded forwards the wrapped store's; see sqlkv.Degrader.
func (s *Store) Degraded() error { return sqlkv.Degraded(s.next) }

// Close ends every subscription and closes the wrapped store.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.feed.Close()
	return s.next.Close()
}
