package sqlkv

import (
	"bytes"
	"context"
	"fmt"
)

// The operations below are derived from the core Store. Each has an optional
// fast-path interface (except where the core already is the fastest form):
// a store that implements it answers in fewer statements, with the same
// outcome, and the function uses it. A wrapper that forwards a fast path
// must give it the semantics of its own core (sqlkv/watchstore publishes
// what it writes); one that does not forward it gets the derived form, which
// goes through its Apply, Range or Get.

// Putter is implemented by stores that upsert a key in one statement. Use it
// through PutValue.
type Putter interface {
	// Put sets key to value, creating it if needed, and returns its new
	// version.
	Put(ctx context.Context, key, value []byte) (int64, error)
}

// Counter is implemented by stores that count keys without reading them.
// Use it through Count.
type Counter interface {
	// Count returns the number of keys starting with prefix.
	Count(ctx context.Context, prefix []byte) (int64, error)
}

// PrefixDeleter is implemented by stores that delete a prefix atomically, in
// one statement. Use it through DeletePrefix.
type PrefixDeleter interface {
	// DeletePrefix atomically removes every key starting with prefix and
	// returns how many there were.
	DeletePrefix(ctx context.Context, prefix []byte) (int64, error)
}

// BatchPutter is implemented by stores with a bulk upsert. Use it through
// BatchPut.
type BatchPutter interface {
	// BatchPut atomically sets every entry's key to its value (Version is
	// ignored), the last of duplicate keys winning: all are written or, on
	// error, none.
	BatchPut(ctx context.Context, entries []Entry) error
}

// BatchDeleter is implemented by stores with a bulk delete. Use it through
// BatchDelete.
type BatchDeleter interface {
	// BatchDelete atomically removes keys and returns how many existed (a
	// key listed twice counts once).
	BatchDelete(ctx context.Context, keys [][]byte) (int64, error)
}

// PutValue sets key to value, creating it if needed, and returns its new
// version: with s's Put if s is a Putter, else with one Apply of Put(key,
// value). (Put and Delete, without a store, are the Op constructors.)
func PutValue(ctx context.Context, s Store, key, value []byte) (int64, error) {
	if p, ok := s.(Putter); ok {
		return p.Put(ctx, key, value)
	}
	res, err := s.Apply(ctx, Put(key, value))
	if err != nil {
		return 0, err
	}
	return res[0].Version, nil
}

// DeleteKey removes key and reports whether it existed, with one Apply of
// Delete(key). Of several concurrent deletes of one key, exactly one reports
// true.
func DeleteKey(ctx context.Context, s Store, key []byte) (bool, error) {
	res, err := s.Apply(ctx, Delete(key))
	if err != nil {
		return false, err
	}
	return res[0].Existed, nil
}

// Exists reports whether key exists, with one Range that reads no value.
func Exists(ctx context.Context, s Store, key []byte) (bool, error) {
	// No End bound: key plus a byte may be longer than MaxKeySize. The
	// first key at or after key is key itself exactly when it exists.
	got, err := s.Range(ctx, RangeOptions{Start: key, Limit: 1, KeysOnly: true})
	if err != nil {
		return false, err
	}
	return len(got) == 1 && bytes.Equal(got[0].Key, key), nil
}

// Keys returns the keys starting with prefix in ascending bytewise order,
// with one Range that reads no value. An empty prefix selects every key.
func Keys(ctx context.Context, s Store, prefix []byte) ([][]byte, error) {
	entries, err := keysOnly(ctx, s, prefix)
	if err != nil {
		return nil, err
	}
	keys := make([][]byte, len(entries))
	for i, e := range entries {
		keys[i] = e.Key
	}
	return keys, nil
}

// Scan returns the entries whose keys start with prefix, in ascending
// bytewise key order: one Range of PrefixRange(prefix). An empty prefix
// selects every key.
func Scan(ctx context.Context, s Store, prefix []byte) ([]Entry, error) {
	return s.Range(ctx, PrefixRange(prefix))
}

// Count returns the number of keys starting with prefix: with s's Count if s
// is a Counter, else by reading the keys (not the values) with one Range. An
// empty prefix counts every key.
func Count(ctx context.Context, s Store, prefix []byte) (int64, error) {
	if c, ok := s.(Counter); ok {
		return c.Count(ctx, prefix)
	}
	entries, err := keysOnly(ctx, s, prefix)
	return int64(len(entries)), err
}

// DeletePrefix removes every key starting with prefix and returns how many
// there were; an empty prefix clears the store. If s is a PrefixDeleter it
// does so atomically. Otherwise it reads the keys with one Range and deletes
// them with one Apply, so a key created between the two survives, and a key
// deleted between them is not counted.
func DeletePrefix(ctx context.Context, s Store, prefix []byte) (int64, error) {
	if d, ok := s.(PrefixDeleter); ok {
		return d.DeletePrefix(ctx, prefix)
	}
	entries, err := keysOnly(ctx, s, prefix)
	if err != nil || len(entries) == 0 {
		return 0, err
	}
	ops := make([]Op, len(entries))
	for i, e := range entries {
		ops[i] = Delete(e.Key)
	}
	res, err := s.Apply(ctx, ops...)
	if err != nil {
		return 0, fmt.Errorf("delete prefix %q: %w", Truncate(prefix), err)
	}
	return existed(res), nil
}

// BatchPut atomically sets every entry's key to its value (Version is
// ignored), the last of duplicate keys winning: all are written or, on
// error, none. It uses s's BatchPut if s is a BatchPutter, else one Apply
// with a Put per entry.
func BatchPut(ctx context.Context, s Store, entries []Entry) error {
	if b, ok := s.(BatchPutter); ok {
		return b.BatchPut(ctx, entries)
	}
	ops := make([]Op, len(entries))
	for i, e := range entries {
		ops[i] = Put(e.Key, e.Value)
	}
	_, err := s.Apply(ctx, ops...)
	return err
}

// BatchDelete atomically removes keys and returns how many existed (a key
// listed twice counts once). It uses s's BatchDelete if s is a BatchDeleter,
// else one Apply with a Delete per key.
func BatchDelete(ctx context.Context, s Store, keys [][]byte) (int64, error) {
	if b, ok := s.(BatchDeleter); ok {
		return b.BatchDelete(ctx, keys)
	}
	ops := make([]Op, len(keys))
	for i, k := range keys {
		ops[i] = Delete(k)
	}
	res, err := s.Apply(ctx, ops...)
	if err != nil {
		return 0, err
	}
	return existed(res), nil
}

// keysOnly returns the entries under prefix without their values.
func keysOnly(ctx context.Context, s Store, prefix []byte) ([]Entry, error) {
	opts := PrefixRange(prefix)
	opts.KeysOnly = true
	return s.Range(ctx, opts)
}

// existed counts the results whose key existed before the op.
func existed(res []OpResult) int64 {
	var n int64
	for _, r := range res {
		if r.Existed {
			n++
		}
	}
	return n
}
