// Package watchstore makes any sqlkv.Store watchable within one process: it
// wraps the store and, after each successful write, publishes the written
// keys and versions to an in-process sqlkv.Feed. It is how the memory and
// SQLite backends, whose writers all live in one SMS process, serve watches;
// the Postgres store is watchable on its own, across processes.
//
// It touches no backend's write path: a write is published after the
// wrapped store returned, so a subscriber never hears of a write before it
// can read it. Puts are published with their value (a copy), so a
// subscriber keeping a copy of the data need not read it back.
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

	"github.com/spear-next/sms/sqlkv"
)

// Store is a sqlkv.Store that reports its writes; see the package doc. Its
// methods are the sqlkv.Store core, Watch and Fence, Degraded, and the fast
// paths GetMany, Count, BatchPut and DeletePrefix.
type Store struct {
	next   sqlkv.Store
	feed   sqlkv.Feed
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
)

// New returns store wrapped so that its writes are reported to Watch. Every
// write must go through the returned Store to be reported.
func New(store sqlkv.Store) *Store { return &Store{next: store} }

// Watch subscribes to the writes made through s from now on; see
// sqlkv.Watchable. It returns an error wrapping sqlkv.ErrClosed after Close.
func (s *Store) Watch(ctx context.Context, prefix []byte) (*sqlkv.Subscription, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.feed.Subscribe(prefix)
}

// Fence returns at once: every write through s was handed to the
// subscriptions before it returned; see sqlkv.Fencer. It returns an error
// wrapping sqlkv.ErrClosed after Close, and the context's error.
func (s *Store) Fence(ctx context.Context) error {
	if s.closed.Load() {
		return fmt.Errorf("fence: %w", sqlkv.ErrClosed)
	}
	return ctx.Err()
}

// Get is the wrapped store's.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	return s.next.Get(ctx, key)
}

// Range is the wrapped store's.
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	return s.next.Range(ctx, opts)
}

// Apply is sqlkv.Store.Apply, with its puts and its deletes of existing keys
// reported. It is also how PutValue, DeleteKey and BatchDelete write.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	results, err := s.next.Apply(ctx, ops...)
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

// BatchPut is sqlkv.BatchPut on the wrapped store (its bulk statement where
// it has one), reported without versions.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	err := sqlkv.BatchPut(ctx, s.next, entries)
	if err == nil && len(entries) > 0 {
		changes := make([]sqlkv.Change, len(entries))
		for i, e := range entries {
			changes[i] = sqlkv.Change{Key: e.Key}
		}
		s.feed.Publish(changes...)
	}
	return err
}

// DeletePrefix is sqlkv.DeletePrefix on the wrapped store, atomic where it
// is. The keys it removed are not known, so subscribers are told to resync.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	n, err := sqlkv.DeletePrefix(ctx, s.next, prefix)
	if err == nil && n > 0 {
		s.feed.Resync()
	}
	return n, err
}

// GetMany reads through to the wrapped store, with one query where it can
// (see sqlkv.GetMany).
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	return sqlkv.GetMany(ctx, s.next, keys...)
}

// Count is sqlkv.Count on the wrapped store, which counts without reading
// where it can.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	return sqlkv.Count(ctx, s.next, prefix)
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
