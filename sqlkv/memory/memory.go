// Package memory is the in-memory sqlkv.Store: a B-tree ordered bytewise,
// guarded by one read/write mutex. It keeps nothing across restarts and is
// meant for tests and single-process tools; it behaves exactly like the SQL
// backends (sqlkv/kvtest proves it), so code tested against it runs unchanged
// on SQLite and Postgres.
//
// Get of an empty value returns a non-nil, zero-length slice; still, on this
// backend as on the others, callers tell an empty value from a missing key by
// the error (sqlkv.ErrNotFound) alone, never by a nil check. An empty result
// of Range is a nil slice.
package memory

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/btree"

	"github.com/spear-next/sms/sqlkv"
)

// degree of the B-tree: 32 keeps nodes a few cache lines wide, which
// google/btree's own benchmarks find a good balance for small items.
const degree = 32

// item is one key. The key is a string so the tree compares bytewise with
// Go's built-in string order and the store owns an immutable copy of it.
type item struct {
	key     string
	value   []byte
	version int64
}

func less(a, b item) bool { return a.key < b.key }

// Store is an in-memory sqlkv.Store. Its zero value is an empty, open store;
// New returns the same. A Store must not be copied after first use.
//
// Every method returns an error wrapping the context's error when ctx is
// already done, sqlkv.ErrClosed after Close, and sqlkv.ErrKeyTooLarge or
// sqlkv.ErrValueTooLarge for oversized input (keys, prefixes and Range
// bounds alike), before touching any data. It never returns
// sqlkv.ErrUnavailable.
type Store struct {
	mu      sync.RWMutex
	tree    *btree.BTreeG[item] // nil until the first write
	version int64               // last version handed out, store-wide
	closed  bool
}

// The core and the fast paths that save work here; Delete, Exists, Keys
// and Scan are derived (package sqlkv) at about the same cost.
var (
	_ sqlkv.Store         = (*Store)(nil)
	_ sqlkv.Putter        = (*Store)(nil)
	_ sqlkv.Counter       = (*Store)(nil)
	_ sqlkv.PrefixDeleter = (*Store)(nil)
	_ sqlkv.BatchPutter   = (*Store)(nil)
	_ sqlkv.BatchDeleter  = (*Store)(nil)
)

// New returns an empty, open store.
func New() *Store { return &Store{} }

// Get returns the entry for key, or an error wrapping sqlkv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	if err := check(ctx, "get", key); err != nil {
		return sqlkv.Entry{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return sqlkv.Entry{}, errClosed("get")
	}
	it, ok := s.lookup(string(key))
	if !ok {
		return sqlkv.Entry{}, fmt.Errorf("get %q: %w", sqlkv.Truncate(key), sqlkv.ErrNotFound)
	}
	return entry(it, false), nil
}

// Put sets key to value and returns its new version.
func (s *Store) Put(ctx context.Context, key, value []byte) (int64, error) {
	if err := check(ctx, "put", key); err != nil {
		return 0, err
	}
	if err := sqlkv.CheckValue(value); err != nil {
		return 0, fmt.Errorf("put %q: %w", sqlkv.Truncate(key), err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed("put")
	}
	return s.put(string(key), value), nil
}

// Range returns the entries selected by opts. Like the SQL backends, it
// treats Start and End as keys: one longer than MaxKeySize is an error
// wrapping sqlkv.ErrKeyTooLarge.
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	if err := check(ctx, "range from", opts.Start); err != nil {
		return nil, err
	}
	if err := sqlkv.CheckKey(opts.End); err != nil {
		return nil, fmt.Errorf("range to: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, errClosed("range")
	}
	var entries []sqlkv.Entry
	visit := func(it item) bool {
		entries = append(entries, entry(it, opts.KeysOnly))
		return opts.Limit <= 0 || len(entries) < opts.Limit
	}
	if opts.Reverse {
		s.descend(opts, visit)
	} else {
		s.ascend(opts, visit)
	}
	return entries, nil
}

// Count returns the number of keys starting with prefix.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	if err := check(ctx, "count", prefix); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return 0, errClosed("count")
	}
	if len(prefix) == 0 {
		return int64(s.len()), nil
	}
	var n int64
	s.ascend(sqlkv.PrefixRange(prefix), func(item) bool {
		n++
		return true
	})
	return n, nil
}

// DeletePrefix atomically removes every key starting with prefix and returns
// how many there were.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	if err := check(ctx, "delete prefix", prefix); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed("delete prefix")
	}
	if len(prefix) == 0 {
		n := s.len()
		s.tree = nil // the version counter survives, so versions never repeat
		return int64(n), nil
	}
	var doomed []string
	s.ascend(sqlkv.PrefixRange(prefix), func(it item) bool {
		doomed = append(doomed, it.key)
		return true
	})
	for _, k := range doomed {
		s.tree.Delete(item{key: k})
	}
	return int64(len(doomed)), nil
}

// BatchPut atomically sets every entry's key to its value. Later entries win
// over earlier ones with the same key.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("batch put: %w", err)
	}
	for i, e := range entries {
		if err := sqlkv.CheckKey(e.Key); err != nil {
			return fmt.Errorf("batch put: entry %d: %w", i, err)
		}
		if err := sqlkv.CheckValue(e.Value); err != nil {
			return fmt.Errorf("batch put: entry %d (%q): %w", i, sqlkv.Truncate(e.Key), err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("batch put")
	}
	for _, e := range entries {
		s.put(string(e.Key), e.Value)
	}
	return nil
}

// BatchDelete atomically removes keys and returns how many existed. A key
// listed twice counts once.
func (s *Store) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("batch delete: %w", err)
	}
	for i, k := range keys {
		if err := sqlkv.CheckKey(k); err != nil {
			return 0, fmt.Errorf("batch delete: key %d: %w", i, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed("batch delete")
	}
	var n int64
	for _, k := range keys {
		if s.delete(string(k)) {
			n++
		}
	}
	return n, nil
}

// pending is the state of a key as an Apply in progress sees it.
type pending struct {
	value   []byte
	version int64 // 0: deleted
}

// Apply runs ops atomically and in order: each op's condition is checked
// against the state left by the ops before it. It returns an error wrapping
// sqlkv.ErrConflict, and writes nothing, when a condition does not hold.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if err := sqlkv.CheckOps(ops); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if len(ops) == 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed("apply")
	}

	// Run the ops against an overlay and touch the tree only once every
	// condition has held.
	overlay := make(map[string]pending, len(ops))
	current := func(k string) int64 {
		if p, ok := overlay[k]; ok {
			return p.version
		}
		it, _ := s.lookup(k)
		return it.version
	}
	next := s.version
	results := make([]sqlkv.OpResult, len(ops))
	for i, op := range ops {
		k := string(op.Key)
		v := current(k)
		if !op.Cond.Holds(v) {
			return nil, fmt.Errorf("apply: op %d (%v %q) %v: current version %d: %w",
				i, op.Kind, sqlkv.Truncate(op.Key), op.Cond, v, sqlkv.ErrConflict)
		}
		results[i].Existed = v != 0
		switch op.Kind {
		case sqlkv.OpPut:
			next++
			overlay[k] = pending{value: op.Value, version: next}
			results[i].Version = next
		case sqlkv.OpDelete:
			overlay[k] = pending{}
		case sqlkv.OpCheck:
			results[i].Version = v
		}
	}

	s.version = next
	for k, p := range overlay {
		if p.version == 0 {
			s.delete(k)
			continue
		}
		s.init()
		s.tree.ReplaceOrInsert(item{key: k, value: clone(p.value), version: p.version})
	}
	return results, nil
}

// Ping returns nil while the store is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return errClosed("ping")
	}
	return nil
}

// Close drops the store's data. Every later call, Close included, returns an
// error wrapping sqlkv.ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed("close")
	}
	s.closed = true
	s.tree = nil
	return nil
}

// check returns the error for a done ctx or an oversized key or prefix.
func check(ctx context.Context, op string, key []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := sqlkv.CheckKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func errClosed(op string) error { return fmt.Errorf("%s: %w", op, sqlkv.ErrClosed) }

// The helpers below run with s.mu held (read or write as their names say).

func (s *Store) init() {
	if s.tree == nil {
		s.tree = btree.NewG(degree, less)
	}
}

func (s *Store) len() int {
	if s.tree == nil {
		return 0
	}
	return s.tree.Len()
}

func (s *Store) lookup(key string) (item, bool) {
	if s.tree == nil {
		return item{}, false
	}
	return s.tree.Get(item{key: key})
}

// put writes a copy of value under key with the next version; write lock.
func (s *Store) put(key string, value []byte) int64 {
	s.init()
	s.version++
	s.tree.ReplaceOrInsert(item{key: key, value: clone(value), version: s.version})
	return s.version
}

// delete removes key and reports whether it existed; write lock.
func (s *Store) delete(key string) bool {
	if s.tree == nil {
		return false
	}
	_, ok := s.tree.Delete(item{key: key})
	return ok
}

// ascend visits the items of [opts.Start, opts.End) in ascending order until
// visit returns false.
func (s *Store) ascend(opts sqlkv.RangeOptions, visit func(item) bool) {
	if s.tree == nil || sqlkv.EmptyRange(opts) {
		return
	}
	start := item{key: string(opts.Start)}
	if opts.End == nil {
		s.tree.AscendGreaterOrEqual(start, visit)
		return
	}
	s.tree.AscendRange(start, item{key: string(opts.End)}, visit)
}

// descend visits the items of [opts.Start, opts.End) in descending order
// until visit returns false.
func (s *Store) descend(opts sqlkv.RangeOptions, visit func(item) bool) {
	if s.tree == nil || sqlkv.EmptyRange(opts) {
		return
	}
	start := string(opts.Start)
	inRange := func(it item) bool {
		if it.key < start {
			return false // below the range: stop
		}
		return visit(it)
	}
	if opts.End == nil {
		s.tree.Descend(inRange)
		return
	}
	end := string(opts.End)
	s.tree.DescendLessOrEqual(item{key: end}, func(it item) bool {
		if it.key == end { // End is exclusive
			return true
		}
		return inRange(it)
	})
}

// entry copies it out for a caller; keysOnly leaves Value nil.
func entry(it item, keysOnly bool) sqlkv.Entry {
	e := sqlkv.Entry{Key: []byte(it.key), Version: it.version}
	if !keysOnly {
		e.Value = clone(it.value)
	}
	return e
}

// clone copies b into a new slice that is never nil, so an empty value reads
// back as an empty value, not as nil.
func clone(b []byte) []byte {
	c := make([]byte, len(b))
	copy(c, b)
	return c
}
