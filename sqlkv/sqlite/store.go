package sqlite

import (
	"context"

	"github.com/spear-next/sms/sqlkv"
)

// The methods of the store: the sqlkv.Store core, its fast paths, and
// Degraded. Each is the shared SQL implementation's (sqlkv/internal/sqlstore),
// on the database file.

// Get returns the entry for key, or an error wrapping sqlkv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	return s.store.Get(ctx, key)
}

// Range returns the entries opts selects, in one statement.
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	return s.store.Range(ctx, opts)
}

// Apply runs ops in one transaction (or, for one op, one statement); see
// sqlkv.Store.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	return s.store.Apply(ctx, ops...)
}

// Ping runs a query that needs the migrated schema.
func (s *Store) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// GetMany reads several keys; see sqlkv.MultiGetter.
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	return s.store.GetMany(ctx, keys...)
}

// Put upserts key in one statement; see sqlkv.Putter.
func (s *Store) Put(ctx context.Context, key, value []byte) (int64, error) {
	return s.store.Put(ctx, key, value)
}

// Count counts the keys under prefix in one statement; see sqlkv.Counter.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	return s.store.Count(ctx, prefix)
}

// DeletePrefix deletes the keys under prefix in one statement; see
// sqlkv.PrefixDeleter.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	return s.store.DeletePrefix(ctx, prefix)
}

// BatchPut upserts entries in one transaction; see sqlkv.BatchPutter.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	return s.store.BatchPut(ctx, entries)
}

// BatchDelete deletes keys in one transaction; see sqlkv.BatchDeleter.
func (s *Store) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	return s.store.BatchDelete(ctx, keys)
}

// Degraded returns an error wrapping sqlkv.ErrStorageFull while writes fail
// for want of space, and nil otherwise; see sqlkv.Degrader.
func (s *Store) Degraded() error { return s.store.Degraded() }
