// Package sqlstore is the one implementation of sqlkv.Store over
// database/sql, shared by the SQLite and Postgres backends. A backend gives it
// a Dialect (complete statements, error translation) and its databases; all
// behaviour lives here, so the two backends cannot drift apart.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/spear-next/sms/internal/backoff"
	"github.com/spear-next/sms/internal/rawsql"
	"github.com/spear-next/sms/sqlkv"
)

// Store implements sqlkv.Store over a reader and a writer database, which may
// be the same *sql.DB.
type Store struct {
	d      Dialect
	reader *sql.DB
	writer *sql.DB
	closed atomic.Bool
	full   atomic.Bool // the last write failed with sqlkv.ErrStorageFull
	commit *committer

	// Prepared statements, on the reader for reads and on the writer for
	// everything that runs in or near a write.
	get, getAny, ping                                  *sql.Stmt
	rangeFrom, rangeFromTo, rangeFromDesc, rangeToDesc *sql.Stmt
	keysFrom, keysFromTo, keysFromDesc, keysToDesc     *sql.Stmt
	countFrom, countFromTo                             *sql.Stmt
	version, put, putIfVersion, putIfExists, putIfNot  *sql.Stmt
	del, delIfVersion, delFrom, delFromTo              *sql.Stmt
	putMany, delMany                                   *sql.Stmt // nil if the dialect has none
	all                                                []*sql.Stmt
}

// The core, and every fast path of package sqlkv: the public stores'
// generated methods (publicgen) forward them and assert each interface.
// Delete, Exists, Keys and Scan are the derived forms, the same statements.
var _ sqlkv.Store = (*Store)(nil)

// Open prepares d's statements on reader and writer (which must already hold
// the migrated schema) and returns the store. The store owns both databases:
// Close closes them. On error it closes nothing.
func Open(ctx context.Context, d Dialect, reader, writer *sql.DB) (*Store, error) {
	s := &Store{d: d, reader: reader, writer: writer, commit: newCommitter(d.GroupLanes)}
	q := d.Queries
	for _, p := range []struct {
		db   *sql.DB
		stmt **sql.Stmt
		text string
	}{
		{reader, &s.get, q.Get},
		{reader, &s.getAny, q.GetAny},
		{reader, &s.ping, q.Ping},
		{reader, &s.rangeFrom, q.RangeFrom},
		{reader, &s.rangeFromTo, q.RangeFromTo},
		{reader, &s.rangeFromDesc, q.RangeFromDesc},
		{reader, &s.rangeToDesc, q.RangeFromToDesc},
		{reader, &s.keysFrom, q.KeysFrom},
		{reader, &s.keysFromTo, q.KeysFromTo},
		{reader, &s.keysFromDesc, q.KeysFromDesc},
		{reader, &s.keysToDesc, q.KeysFromToDesc},
		{reader, &s.countFrom, q.CountFrom},
		{reader, &s.countFromTo, q.CountFromTo},
		{writer, &s.version, q.Version},
		{writer, &s.put, q.Put},
		{writer, &s.putIfVersion, q.PutIfVersion},
		{writer, &s.putIfExists, q.PutIfExists},
		{writer, &s.putIfNot, q.PutIfNotExists},
		{writer, &s.del, q.Delete},
		{writer, &s.delIfVersion, q.DeleteIfVersion},
		{writer, &s.delFrom, q.DeleteFrom},
		{writer, &s.delFromTo, q.DeleteFromTo},
		{writer, &s.putMany, q.PutMany},
		{writer, &s.delMany, q.DeleteMany},
	} {
		if p.text == "" {
			continue // optional, and absent
		}
		stmt, err := p.db.PrepareContext(ctx, p.text)
		if err != nil {
			s.closeStmts()
			return nil, fmt.Errorf("prepare: %w", s.translate(err))
		}
		*p.stmt = stmt
		s.all = append(s.all, stmt)
	}
	return s, nil
}

func (s *Store) closeStmts() {
	for _, stmt := range s.all {
		stmt.Close()
	}
	s.all = nil
}

// Close closes the store's statements and databases. Later calls, Close
// included, return sqlkv.ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return fmt.Errorf("close: %w", sqlkv.ErrClosed)
	}
	s.closeStmts()
	err := s.reader.Close()
	if s.writer != s.reader {
		err = errors.Join(err, s.writer.Close())
	}
	if err != nil {
		return fmt.Errorf("close: %w", s.d.Translate(err))
	}
	return nil
}

// noteWrite records whether the storage is full, from a write's outcome: a
// write that fails with ErrStorageFull sets it, one that succeeds clears it.
func (s *Store) noteWrite(err error) {
	switch {
	case err == nil:
		s.full.Store(false)
	case errors.Is(s.translate(err), sqlkv.ErrStorageFull):
		s.full.Store(true)
	}
}

// Degraded returns an error wrapping sqlkv.ErrStorageFull while the last
// write failed because the storage is full, and nil otherwise: the store
// still serves reads, and the next write that fits clears it.
func (s *Store) Degraded() error {
	if s.full.Load() {
		return fmt.Errorf("writes fail: %w", sqlkv.ErrStorageFull)
	}
	return nil
}

// Ping runs a query that needs the migrated schema.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.open(ctx); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var one int
	if err := s.ping.QueryRowContext(ctx).Scan(&one); err != nil {
		err = s.translate(err)
		if !errors.Is(err, sqlkv.ErrUnavailable) && !errors.Is(err, sqlkv.ErrClosed) && ctx.Err() == nil {
			// Reachable but unusable, e.g. not migrated: still not ready.
			err = fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
		}
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// Get returns key's entry from the reader.
func (s *Store) Get(ctx context.Context, key []byte) (sqlkv.Entry, error) {
	if err := s.checkKey(ctx, key); err != nil {
		return sqlkv.Entry{}, s.wrap("get", key, err)
	}
	e := sqlkv.Entry{Key: clone(key)}
	err := s.get.QueryRowContext(ctx, bin(key)).Scan(&e.Value, &e.Version)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlkv.Entry{}, s.wrap("get", key, sqlkv.ErrNotFound)
	}
	if err != nil {
		return sqlkv.Entry{}, s.wrap("get", key, err)
	}
	e.Value = bin(e.Value)
	return e, nil
}

// GetMany reads the keys with the dialect's many-key statement, or with one
// Get per key where the dialect has none (a point read is the cheaper form
// in process).
func (s *Store) GetMany(ctx context.Context, keys ...[]byte) ([]sqlkv.Entry, error) {
	for _, k := range keys {
		if err := s.checkKey(ctx, k); err != nil {
			return nil, s.wrap("get", k, err)
		}
	}
	if s.getAny == nil || len(keys) < 2 {
		out := make([]sqlkv.Entry, 0, len(keys))
		for _, k := range keys {
			e, err := s.Get(ctx, k)
			if errors.Is(err, sqlkv.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, nil
	}
	arg := make([][]byte, len(keys))
	for i, k := range keys {
		arg[i] = bin(k) // a nil element would be NULL, which matches no key
	}
	rows, err := s.getAny.QueryContext(ctx, arg)
	if err != nil {
		return nil, s.wrap("get", keys[0], err)
	}
	defer rows.Close()
	byKey := make(map[string]sqlkv.Entry, len(keys))
	for rows.Next() {
		var e sqlkv.Entry
		if err := rows.Scan(&e.Key, &e.Value, &e.Version); err != nil {
			return nil, s.wrap("get", keys[0], err)
		}
		e.Key, e.Value = bin(e.Key), bin(e.Value)
		byKey[string(e.Key)] = e
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap("get", keys[0], err)
	}
	// In the order of keys (the statement's order is the planner's), a key
	// asked twice returned twice, each entry its own copy.
	out := make([]sqlkv.Entry, 0, len(byKey))
	for _, k := range keys {
		if e, ok := byKey[string(k)]; ok {
			out = append(out, sqlkv.Entry{Key: clone(e.Key), Value: clone(e.Value), Version: e.Version})
		}
	}
	return out, nil
}

// Put upserts key in one autocommitted statement.
func (s *Store) Put(ctx context.Context, key, value []byte) (int64, error) {
	if err := s.checkPut(ctx, key, value); err != nil {
		return 0, s.wrap("put", key, err)
	}
	var v int64
	at := now()
	err := s.write(&request{
		ctx: ctx,
		alone: func(ctx context.Context) error {
			return s.put.QueryRowContext(ctx, bin(key), bin(value), at).Scan(&v)
		},
		inGroup: func(ctx context.Context, in binder) error {
			return in(s.put).QueryRowContext(ctx, bin(key), bin(value), at).Scan(&v)
		},
	})
	if err != nil {
		return 0, s.wrap("put", key, err)
	}
	return v, nil
}

// DeletePrefix removes the keys under prefix in one statement.
func (s *Store) DeletePrefix(ctx context.Context, prefix []byte) (int64, error) {
	if err := s.checkKey(ctx, prefix); err != nil {
		return 0, s.wrap("delete prefix", prefix, err)
	}
	var res sql.Result
	var err error
	if end := sqlkv.PrefixEnd(prefix); end == nil {
		res, err = s.delFrom.ExecContext(ctx, bin(prefix))
	} else {
		res, err = s.delFromTo.ExecContext(ctx, bin(prefix), end)
	}
	n, err := affected(res, err)
	if err != nil {
		return 0, s.wrap("delete prefix", prefix, err)
	}
	return n, nil
}

// open returns ErrClosed after Close and ctx's error once it is done, so
// that calls answered without a query behave like the others.
func (s *Store) open(ctx context.Context) error {
	if s.closed.Load() {
		return sqlkv.ErrClosed
	}
	return ctx.Err()
}

func (s *Store) checkKey(ctx context.Context, key []byte) error {
	if err := s.open(ctx); err != nil {
		return err
	}
	return sqlkv.CheckKey(key)
}

func (s *Store) checkPut(ctx context.Context, key, value []byte) error {
	if err := s.checkKey(ctx, key); err != nil {
		return err
	}
	return sqlkv.CheckValue(value)
}

// translate turns err into what callers may see: ErrClosed once the store is
// closed (database/sql then reports its own unexported error), context errors
// as they are, and driver errors through the dialect.
func (s *Store) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sqlkv.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case s.closed.Load():
		return fmt.Errorf("%w: %w", sqlkv.ErrClosed, err)
	}
	return s.d.Translate(err)
}

// wrap says what failed on which key, after translating err.
func (s *Store) wrap(op string, key []byte, err error) error {
	return fmt.Errorf("%s %q: %w", op, sqlkv.Truncate(key), s.translate(err))
}

// retrying runs a write on its own (a request's alone form) and runs it
// again from the start, after a jittered pause, while the dialect says the
// database rolled it back only because of concurrent transactions
// (serialization failures, deadlocks). Contention is resolved here, where it
// happens, for as long as the caller's context allows, so that callers see
// sqlkv.ErrConflict only for a condition that failed and never an error for
// a valid write that merely collided.
func (s *Store) retrying(ctx context.Context, alone func(ctx context.Context) error) error {
	if s.d.Retryable == nil {
		return alone(ctx)
	}
	return backoff.Do(ctx, backoff.Contention(), s.d.Retryable, alone)
}

// inTx runs fn in a write transaction and commits. fn must not have effects
// outside the transaction: contention retries (see retrying) run it again.
func (s *Store) inTx(ctx context.Context, opts *sql.TxOptions, fn func(tx *sql.Tx) error) error {
	tx, err := s.writer.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback() // the error that made us roll back is the one to report
		return err
	}
	return tx.Commit()
}

// bin returns b, or an empty non-nil slice for nil: drivers bind a nil []byte
// as SQL NULL, and a nil scanned value means an empty one.
func bin(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func clone(b []byte) []byte { return append([]byte{}, b...) }

func now() int64 { return time.Now().UnixNano() }

func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Baseline returns the raw-SQL baseline of the store's own statements (see
// internal/rawsql); they close with the store.
func (s *Store) Baseline() *rawsql.Baseline {
	return rawsql.New(s.get, s.put, s.rangeFromTo, s.d.NoLimit)
}
