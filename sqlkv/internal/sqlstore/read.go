package sqlstore

import (
	"context"
	"database/sql"

	"github.com/spear-next/sms/sqlkv"
)

// Range returns the entries selected by opts.
func (s *Store) Range(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	if err := s.checkKey(ctx, opts.Start); err != nil {
		return nil, s.wrap("range from", opts.Start, err)
	}
	if err := sqlkv.CheckKey(opts.End); err != nil {
		return nil, s.wrap("range to", opts.End, err)
	}
	entries, err := s.query(ctx, opts)
	if err != nil {
		return nil, s.wrap("range from", opts.Start, err)
	}
	return entries, nil
}

// Count counts the keys under prefix without reading values.
func (s *Store) Count(ctx context.Context, prefix []byte) (int64, error) {
	if err := s.checkKey(ctx, prefix); err != nil {
		return 0, s.wrap("count", prefix, err)
	}
	var row *sql.Row
	if end := sqlkv.PrefixEnd(prefix); end == nil {
		row = s.countFrom.QueryRowContext(ctx, bin(prefix))
	} else {
		row = s.countFromTo.QueryRowContext(ctx, bin(prefix), end)
	}
	var n int64
	if err := row.Scan(&n); err != nil {
		return 0, s.wrap("count", prefix, err)
	}
	return n, nil
}

// query runs the range statement that fits opts and returns its entries.
// An empty range costs no query.
func (s *Store) query(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	if sqlkv.EmptyRange(opts) {
		return []sqlkv.Entry{}, nil
	}
	rows, err := s.rangeRows(ctx, opts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	entries := []sqlkv.Entry{}
	if opts.Limit > 0 {
		entries = make([]sqlkv.Entry, 0, min(opts.Limit, 1024))
	}
	for rows.Next() {
		var e sqlkv.Entry
		if opts.KeysOnly {
			err = rows.Scan(&e.Key, &e.Version)
		} else {
			err = rows.Scan(&e.Key, &e.Value, &e.Version)
			e.Value = bin(e.Value)
		}
		if err != nil {
			return nil, err
		}
		e.Key = bin(e.Key)
		entries = append(entries, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return entries, nil
}

// RangeFunc calls fn with each entry opts selects, read by one statement;
// see sqlkv.RangeStreamer. The rows are scanned as sql.RawBytes: fn gets
// the driver's bytes, copied neither into an entry nor into a slice of
// them.
func (s *Store) RangeFunc(ctx context.Context, opts sqlkv.RangeOptions, fn func(sqlkv.Entry) error) error {
	if err := s.checkKey(ctx, opts.Start); err != nil {
		return s.wrap("range from", opts.Start, err)
	}
	if err := sqlkv.CheckKey(opts.End); err != nil {
		return s.wrap("range to", opts.End, err)
	}
	if sqlkv.EmptyRange(opts) {
		return nil
	}
	rows, err := s.rangeRows(ctx, opts)
	if err != nil {
		return s.wrap("range from", opts.Start, err)
	}
	defer rows.Close()
	var key, value sql.RawBytes
	var e sqlkv.Entry
	for rows.Next() {
		if opts.KeysOnly {
			err = rows.Scan(&key, &e.Version)
		} else {
			err = rows.Scan(&key, &value, &e.Version)
			e.Value = bin(value)
		}
		if err != nil {
			return s.wrap("range from", opts.Start, err)
		}
		e.Key = bin(key)
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return s.wrap("range from", opts.Start, err)
	}
	return nil
}

// rangeRows runs the range statement that fits opts: bounded or not,
// ascending or not, with values or not.
func (s *Store) rangeRows(ctx context.Context, opts sqlkv.RangeOptions) (*sql.Rows, error) {
	var limit any = s.d.NoLimit
	if opts.Limit > 0 {
		limit = int64(opts.Limit)
	}
	var stmt *sql.Stmt
	args := []any{bin(opts.Start), opts.End, limit}
	switch {
	case opts.KeysOnly && opts.Reverse:
		stmt = pick(opts.End, s.keysFromDesc, s.keysToDesc)
	case opts.KeysOnly:
		stmt = pick(opts.End, s.keysFrom, s.keysFromTo)
	case opts.Reverse:
		stmt = pick(opts.End, s.rangeFromDesc, s.rangeToDesc)
	default:
		stmt = pick(opts.End, s.rangeFrom, s.rangeFromTo)
	}
	if opts.End == nil {
		args = []any{args[0], limit}
	}
	return stmt.QueryContext(ctx, args...)
}

func pick(end []byte, from, fromTo *sql.Stmt) *sql.Stmt {
	if end == nil {
		return from
	}
	return fromTo
}
