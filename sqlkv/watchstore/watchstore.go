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
package watchstore

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/spear-next/sms/sqlkv"
)

// Store is a sqlkv.Store that reports its writes; see the package doc. Its
// methods are those of the wrapped store, plus Watch and Fence.
type Store struct {
	sqlkv.Store
	feed   sqlkv.Feed
	writes inflight
	closed atomic.Bool
}

var (
	_ sqlkv.Store     = (*Store)(nil)
	_ sqlkv.Watchable = (*Store)(nil)
	_ sqlkv.Fencer    = (*Store)(nil)
)

// New returns store wrapped so that its writes are reported to Watch. Every
// write must go through the returned Store to be reported, and every read
// of the data through it to be linearizable with what the subscriptions
// report.
func New(store sqlkv.Store) *Store { return &Store{Store: store} }

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
func (s *Store) write(ctx context.Context, keys [][]byte, prefix []byte, wide bool, do func() (publish func(), err error)) error {
	p := s.writes.begin(keys, prefix, wide)
	send, err := do()
	if err != nil {
		send = nil
	}
	s.writes.publish(p, send)
	if wide {
		return errors2(err, s.writes.waitMatching(ctx, func(q *pending) bool { return q != p }))
	}
	return errors2(err, s.writes.waitKeys(ctx, p, keys))
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

// Put is sqlkv.Store.Put, reported.
func (s *Store) Put(ctx context.Context, key, value []byte) (int64, error) {
	var v int64
	err := s.write(ctx, [][]byte{key}, nil, false, func() (func(), error) {
		var err error
		v, err = s.Store.Put(ctx, key, value)
		return func() {
			s.feed.Publish(sqlkv.Change{Key: key, Version: v, Value: bytes.Clone(value), HasValue: true})
		}, err
	})
	return v, err
}

// Delete is sqlkv.Store.Delete, reported when the key existed.
func (s *Store) Delete(ctx context.Context, key []byte) (bool, error) {
	var existed bool
	err := s.write(ctx, [][]byte{key}, nil, false, func() (func(), error) {
		var err error
		existed, err = s.Store.Delete(ctx, key)
		if !existed {
			return nil, err
		}
		return func() { s.feed.Publish(sqlkv.Change{Key: key, Deleted: true}) }, err
	})
	return existed, err
}

// DeletePrefix is sqlkv.Store.DeletePrefix. The keys it removed are not
// known, so subscribers are told to resync.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	var n int64
	err := s.write(ctx, nil, prefix, true, func() (func(), error) {
		var err error
		n, err = s.Store.DeletePrefix(ctx, prefix)
		if n == 0 {
			return nil, err
		}
		return s.feed.Resync, err
	})
	return n, err
}

// BatchPut is sqlkv.Store.BatchPut, reported without versions.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	keys := make([][]byte, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return s.write(ctx, keys, nil, false, func() (func(), error) {
		err := s.Store.BatchPut(ctx, entries)
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

// BatchDelete is sqlkv.Store.BatchDelete, reported. Which of the keys
// existed is not known, so each is reported as deleted.
func (s *Store) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	var n int64
	err := s.write(ctx, keys, nil, false, func() (func(), error) {
		var err error
		n, err = s.Store.BatchDelete(ctx, keys)
		if n == 0 {
			return nil, err
		}
		return s.publishKeys(keys, true), err
	})
	return n, err
}

// Apply is sqlkv.Store.Apply, with its puts and its deletes of existing keys
// reported. A failed condition waits like a read: it may be what another
// write in flight did.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	keys := make([][]byte, len(ops))
	for i, op := range ops {
		keys[i] = op.Key
	}
	var results []sqlkv.OpResult
	err := s.write(ctx, keys, nil, false, func() (func(), error) {
		var err error
		results, err = s.Store.Apply(ctx, ops...)
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
	return results, err
}

// Get is sqlkv.Store.Get; it answers once the writes of key in flight that
// it may have seen are published.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	e, err := s.Store.Get(ctx, key)
	return e, s.read(ctx, err, key)
}

// Exists is sqlkv.Store.Exists; see Get.
func (s *Store) Exists(ctx context.Context, key []byte) (bool, error) {
	ok, err := s.Store.Exists(ctx, key)
	return ok, s.read(ctx, err, key)
}

// GetMany reads through to the wrapped store, with one query where it can
// (see sqlkv.GetMany); see Get.
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	entries, err := sqlkv.GetMany(ctx, s.Store, keys...)
	if len(keys) == 0 {
		return entries, err
	}
	return entries, s.read(ctx, err, keys...)
}

// Keys is sqlkv.Store.Keys; it answers once every write in flight it may
// have seen is published (ranges wait for all of them: they serve loads,
// not requests).
func (s *Store) Keys(ctx context.Context, prefix []byte) ([][]byte, error) {
	keys, err := s.Store.Keys(ctx, prefix)
	return keys, s.read(ctx, err)
}

// Scan is sqlkv.Store.Scan; see Keys.
func (s *Store) Scan(ctx context.Context, prefix []byte) ([]sqlkv.Entry, error) {
	entries, err := s.Store.Scan(ctx, prefix)
	return entries, s.read(ctx, err)
}

// Range is sqlkv.Store.Range; see Keys.
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	entries, err := s.Store.Range(ctx, opts)
	return entries, s.read(ctx, err)
}

// Count is sqlkv.Store.Count; see Keys.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	n, err := s.Store.Count(ctx, prefix)
	return n, s.read(ctx, err)
}

// Degraded forwards the wrapped store's; see sqlkv.Degrader.
func (s *Store) Degraded() error { return sqlkv.Degraded(s.Store) }

// Close ends every subscription and closes the wrapped store.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.feed.Close()
	return s.Store.Close()
}
