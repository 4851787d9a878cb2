// Package watchstore makes any sqlkv.Store watchable within one process: it
// wraps the store and, after each successful write, publishes the written
// keys and versions to an in-process sqlkv.Feed. It is how the memory and
// SQLite backends, whose writers all live in one SMS process, serve watches;
// the Postgres store is watchable on its own, across processes.
//
// It touches no backend's write path: a write is published after the
// wrapped store returned, so a subscriber never hears of a write before it
// can read it. Puts are published with their value (a copy), so a
// subscriber keeping a copy of the data need not read it back. Between the
// wrapped store's commit and the publication, a write is visible to readers
// of the store but not yet in the feed; Fence waits for such writes (see
// Store.Fence).
package watchstore

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"

	"github.com/spear-next/sms/sqlkv"
)

// Store is a sqlkv.Store that reports its writes; see the package doc. Its
// methods are those of the wrapped store, plus Watch.
type Store struct {
	sqlkv.Store
	feed   sqlkv.Feed
	writes inflight // every write method: defer s.writes.end(s.writes.begin())
	closed atomic.Bool
}

var (
	_ sqlkv.Store     = (*Store)(nil)
	_ sqlkv.Watchable = (*Store)(nil)
	_ sqlkv.Fencer    = (*Store)(nil)
)

// New returns store wrapped so that its writes are reported to Watch. Every
// write must go through the returned Store to be reported.
func New(store sqlkv.Store) *Store { return &Store{Store: store} }

// Watch subscribes to the writes made through s from now on; see
// sqlkv.Watchable. It returns an error wrapping sqlkv.ErrClosed after Close.
func (s *Store) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.feed.Subscribe(prefix)
}

// Fence returns once every write through s that began before it was called
// has been handed to the subscriptions (or failed); see sqlkv.Fencer. A
// write that returned to its caller was handed over before it returned, but
// one still on its way may have committed already and been seen by a
// reader of the wrapped store, so Fence waits for the writes in flight: at
// once when there are none. It returns an error wrapping sqlkv.ErrClosed
// after Close, and the context's error.
func (s *Store) Fence(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("fence: %w", sqlkv.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.writes.wait(ctx)
}

// Put is sqlkv.Store.Put, reported.
func (s *Store) Put(ctx context.Context, key, value []byte) (int64, error) {
	defer s.writes.end(s.writes.begin())
	v, err := s.Store.Put(ctx, key, value)
	if err == nil {
		s.feed.Publish(sqlkv.Change{Key: key, Version: v, Value: bytes.Clone(value), HasValue: true})
	}
	return v, err
}

// Delete is sqlkv.Store.Delete, reported when the key existed.
func (s *Store) Delete(ctx context.Context, key []byte) (bool, error) {
	defer s.writes.end(s.writes.begin())
	existed, err := s.Store.Delete(ctx, key)
	if err == nil && existed {
		s.feed.Publish(sqlkv.Change{Key: key, Deleted: true})
	}
	return existed, err
}

// DeletePrefix is sqlkv.Store.DeletePrefix. The keys it removed are not
// known, so subscribers are told to resync.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	defer s.writes.end(s.writes.begin())
	n, err := s.Store.DeletePrefix(ctx, prefix)
	if err == nil && n > 0 {
		s.feed.Resync()
	}
	return n, err
}

// BatchPut is sqlkv.Store.BatchPut, reported without versions.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	defer s.writes.end(s.writes.begin())
	err := s.Store.BatchPut(ctx, entries)
	if err == nil && len(entries) > 0 {
		changes := make([]sqlkv.Change, len(entries))
		for i, e := range entries {
			changes[i] = sqlkv.Change{Key: e.Key}
		}
		s.feed.Publish(changes...)
	}
	return err
}

// BatchDelete is sqlkv.Store.BatchDelete, reported. Which of the keys
// existed is not known, so each is reported as deleted.
func (s *Store) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	defer s.writes.end(s.writes.begin())
	n, err := s.Store.BatchDelete(ctx, keys)
	if err == nil && n > 0 {
		changes := make([]sqlkv.Change, len(keys))
		for i, k := range keys {
			changes[i] = sqlkv.Change{Key: k, Deleted: true}
		}
		s.feed.Publish(changes...)
	}
	return n, err
}

// Apply is sqlkv.Store.Apply, with its puts and its deletes of existing keys
// reported.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	defer s.writes.end(s.writes.begin())
	results, err := s.Store.Apply(ctx, ops...)
	if err != nil {
		return results, err
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
	if len(changes) > 0 {
		s.feed.Publish(changes...)
	}
	return results, nil
}

// Degraded forwards the wrapped store's; see sqlkv.Degrader.
func (s *Store) Degraded() error { return sqlkv.Degraded(s.Store) }

// GetMany reads through to the wrapped store, with one query where it can
// (see sqlkv.GetMany).
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	return sqlkv.GetMany(ctx, s.Store, keys...)
}

// Close ends every subscription and closes the wrapped store.
func (s *Store) Close() error {
	s.closed.Store(true)
	s.feed.Close()
	return s.Store.Close()
}
