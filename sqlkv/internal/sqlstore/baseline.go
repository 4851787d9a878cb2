package sqlstore

import (
	"context"
	"database/sql"
	"time"
)

// Baseline is the raw-SQL limit of a store, for load tests (cmd/smsbench):
// the store's own statements on its own databases and pool settings,
// straight through database/sql, with no checks, no group commit and no
// error translation. What the store adds on top of it is its overhead.
type Baseline struct {
	get, put, rangeFromTo *sql.Stmt
	noLimit               any
}

// Baseline returns the store's baseline. Its statements are the store's and
// close with it.
func (s *Store) Baseline() *Baseline {
	return &Baseline{get: s.get, put: s.put, rangeFromTo: s.rangeFromTo, noLimit: s.d.NoLimit}
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
