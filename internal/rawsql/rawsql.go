// Package rawsql is the raw-SQL limit of the SQL stores, for load tests
// (cmd/smsbench): a store's own statements on its own databases and pool
// settings, straight through database/sql, with no checks, no group commit
// and no error translation. What the store adds on top of it is its
// overhead.
//
// It is internal to the module so that the benchmark baseline is no part of
// the stores' public API: the SQL backends register how to find the
// baseline of their stores (Register, from their init), and the load test
// asks for it (Of).
package rawsql

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// Baseline runs a store's own prepared statements directly.
type Baseline struct {
	get, put, rangeFromTo *sql.Stmt
	noLimit               any
}

// New returns the baseline of the statements get (key) -> value, version;
// put (key, value, updated_at) -> version; and rangeFromTo (lo, hi, limit) ->
// key, value, version, where noLimit is the limit meaning none. The
// statements stay the caller's: they close with its store.
func New(get, put, rangeFromTo *sql.Stmt, noLimit any) *Baseline {
	return &Baseline{get: get, put: put, rangeFromTo: rangeFromTo, noLimit: noLimit}
}

var (
	mu      sync.RWMutex
	sources []func(store any) *Baseline
)

// Register adds a way to find the baseline of a store: source returns it, or
// nil for a store it does not know.
func Register(source func(store any) *Baseline) {
	mu.Lock()
	defer mu.Unlock()
	sources = append(sources, source)
}

// Of returns store's baseline, or nil if no registered source knows it (the
// memory store, any wrapper).
func Of(store any) *Baseline {
	mu.RLock()
	defer mu.RUnlock()
	for _, source := range sources {
		if b := source(store); b != nil {
			return b
		}
	}
	return nil
}

// Put upserts key in one autocommitted statement.
func (b *Baseline) Put(ctx context.Context, key, value []byte) error {
	var v int64
	return b.put.QueryRowContext(ctx, bin(key), bin(value), time.Now().UnixNano()).Scan(&v)
}

// Get reads key's value and version; a missing key is sql.ErrNoRows.
func (b *Baseline) Get(ctx context.Context, key []byte) error {
	var value []byte
	var v int64
	return b.get.QueryRowContext(ctx, bin(key)).Scan(&value, &v)
}

// Range reads the entries in [lo, hi), at most limit of them, and returns
// how many it read.
func (b *Baseline) Range(ctx context.Context, lo, hi []byte, limit int) (int, error) {
	var l any = b.noLimit
	if limit > 0 {
		l = int64(limit)
	}
	rows, err := b.rangeFromTo.QueryContext(ctx, bin(lo), bin(hi), l)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var k, v []byte
		var version int64
		if err := rows.Scan(&k, &v, &version); err != nil {
			return n, err
		}
		n++
	}
	return n, rows.Err()
}

// bin returns b, or an empty non-nil slice for nil: drivers bind a nil
// []byte as SQL NULL.
func bin(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
