package sqlstore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/spear-next/sms/sqlkv"
)

// BatchPut upserts every entry in one transaction. Entries are written in key
// order, the last of duplicate keys winning, so that two batches touching the
// same keys lock them in the same order and cannot deadlock.
func (s *Store) BatchPut(ctx context.Context, entries []sqlkv.Entry) error {
	if err := s.open(ctx); err != nil {
		return fmt.Errorf("batch put: %w", err)
	}
	for i, e := range entries {
		if err := s.checkPut(ctx, e.Key, e.Value); err != nil {
			return fmt.Errorf("batch put: entry %d: %w", i, s.wrap("put", e.Key, err))
		}
	}
	if len(entries) == 0 {
		return nil
	}
	sorted := sortedLastWins(entries)
	at := now()
	body := func(ctx context.Context, in binder) error {
		if s.putMany != nil {
			return s.execPutMany(ctx, in, sorted, at)
		}
		put := in(s.put)
		for _, e := range sorted {
			var v int64
			if err := put.QueryRowContext(ctx, bin(e.Key), bin(e.Value), at).Scan(&v); err != nil {
				return fmt.Errorf("put %q: %w", sqlkv.Truncate(e.Key), err)
			}
		}
		return nil
	}
	err := s.write(&request{ctx: ctx, alone: s.aloneInTx(nil, body), inGroup: body})
	if err != nil {
		return fmt.Errorf("batch put of %d entries: %w", len(entries), s.translate(err))
	}
	return nil
}

// BatchDelete deletes keys in one transaction, in key order like BatchPut.
func (s *Store) BatchDelete(ctx context.Context, keys [][]byte) (int64, error) {
	if err := s.open(ctx); err != nil {
		return 0, fmt.Errorf("batch delete: %w", err)
	}
	for i, k := range keys {
		if err := sqlkv.CheckKey(k); err != nil {
			return 0, fmt.Errorf("batch delete: key %d: %w", i, err)
		}
	}
	if len(keys) == 0 {
		return 0, nil
	}
	sorted := slices.Clone(keys)
	slices.SortFunc(sorted, bytes.Compare)
	sorted = slices.CompactFunc(sorted, bytes.Equal)
	var total int64
	body := func(ctx context.Context, in binder) error {
		total = 0
		if s.delMany != nil {
			n, err := affected(in(s.delMany).ExecContext(ctx, sorted))
			total = n
			return err
		}
		del := in(s.del)
		for _, k := range sorted {
			n, err := affected(del.ExecContext(ctx, bin(k)))
			if err != nil {
				return fmt.Errorf("delete %q: %w", sqlkv.Truncate(k), err)
			}
			total += n
		}
		return nil
	}
	err := s.write(&request{ctx: ctx, alone: s.aloneInTx(nil, body), inGroup: body})
	if err != nil {
		return 0, fmt.Errorf("batch delete of %d keys: %w", len(keys), s.translate(err))
	}
	return total, nil
}

// aloneInTx returns the alone form of a request whose body runs in a
// transaction of its own.
func (s *Store) aloneInTx(opts *sql.TxOptions, body func(ctx context.Context, in binder) error) func(context.Context) error {
	return func(ctx context.Context) error {
		return s.inTx(ctx, opts, func(tx *sql.Tx) error {
			return body(ctx, func(stmt *sql.Stmt) *sql.Stmt { return tx.StmtContext(ctx, stmt) })
		})
	}
}

// maxPutManyBytes bounds the keys and values sent in one PutMany statement,
// well below the 1 GiB that one Postgres parameter may hold.
const maxPutManyBytes = 64 << 20

// execPutMany writes sorted in as few PutMany statements as the size bound
// allows, in tx.
func (s *Store) execPutMany(ctx context.Context, in binder, sorted []sqlkv.Entry, at int64) error {
	putMany := in(s.putMany)
	for len(sorted) > 0 {
		var keys, values [][]byte
		size := 0
		for len(sorted) > 0 && (len(keys) == 0 || size+len(sorted[0].Key)+len(sorted[0].Value) <= maxPutManyBytes) {
			e := sorted[0]
			keys, values = append(keys, bin(e.Key)), append(values, bin(e.Value))
			size += len(e.Key) + len(e.Value)
			sorted = sorted[1:]
		}
		if _, err := putMany.ExecContext(ctx, keys, values, at); err != nil {
			return fmt.Errorf("put %d entries from %q: %w", len(keys), sqlkv.Truncate(keys[0]), err)
		}
	}
	return nil
}

// sortedLastWins returns entries sorted by key with only the last entry of
// each key kept, which is what writing them in order would leave behind.
func sortedLastWins(entries []sqlkv.Entry) []sqlkv.Entry {
	sorted := slices.Clone(entries)
	// Stable: equal keys keep their order, so the last one is the winner.
	slices.SortStableFunc(sorted, func(a, b sqlkv.Entry) int { return bytes.Compare(a.Key, b.Key) })
	out := sorted[:0]
	for i, e := range sorted {
		if i+1 < len(sorted) && bytes.Equal(e.Key, sorted[i+1].Key) {
			continue
		}
		out = append(out, e)
	}
	return out
}

// errConditionFailed is returned from inside Apply's transaction when an op's
// condition does not hold; it rolls the transaction back.
type errConditionFailed struct {
	i  int
	op sqlkv.Op
}

func (e *errConditionFailed) Error() string {
	return fmt.Sprintf("op %d (%v %q %v): %v", e.i, e.op.Kind, sqlkv.Truncate(e.op.Key), e.op.Cond, sqlkv.ErrConflict)
}

func (e *errConditionFailed) Unwrap() error { return sqlkv.ErrConflict }

// Apply runs ops in one transaction, each op as one statement that evaluates
// its own condition, and rolls back at the first condition that fails.
func (s *Store) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	if err := s.open(ctx); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	if err := sqlkv.CheckOps(ops); err != nil {
		return nil, fmt.Errorf("apply: %w", err)
	}
	results := make([]sqlkv.OpResult, len(ops))
	if len(ops) == 0 {
		return results, nil
	}
	at := now()
	if len(ops) == 1 {
		// Every op is one statement (or, for an unconditional put, a loop of
		// single statements each of which is a valid outcome), atomic on its
		// own: alone it needs no transaction, saving BEGIN and COMMIT round
		// trips. A failed condition comes before it wrote anything, so in a
		// group it needs no savepoint.
		run := func(ctx context.Context, in binder) error {
			r, err := s.applyOp(ctx, in, ops[0], at)
			if errors.Is(err, sqlkv.ErrConflict) {
				return &errConditionFailed{i: 0, op: ops[0]}
			}
			results[0] = r
			return err
		}
		req := &request{ctx: ctx, alone: func(ctx context.Context) error { return run(ctx, autocommit) }, inGroup: run}
		if readsAbsence(ops[0]) && s.d.CheckTx != nil {
			req.inGroup = nil // alone it is one statement: no isolation needed
		}
		if err := s.write(req); err != nil {
			return nil, fmt.Errorf("apply: %w", s.translate(err))
		}
		return results, nil
	}
	var opts *sql.TxOptions
	if slices.ContainsFunc(ops, readsAbsence) {
		opts = s.d.CheckTx
	}
	body := func(ctx context.Context, in binder) error {
		for i, op := range ops {
			r, err := s.applyOp(ctx, in, op, at)
			if errors.Is(err, sqlkv.ErrConflict) {
				return &errConditionFailed{i: i, op: op}
			}
			if err != nil {
				return fmt.Errorf("op %d (%v %q): %w", i, op.Kind, sqlkv.Truncate(op.Key), err)
			}
			results[i] = r
		}
		return nil
	}
	req := &request{ctx: ctx, alone: s.aloneInTx(opts, body), inGroup: body, savepoint: condAfterWrite(ops)}
	if opts != nil {
		req.inGroup = nil // needs its own isolation level
	}
	if err := s.write(req); err != nil {
		return nil, fmt.Errorf("apply: %w", s.translate(err))
	}
	return results, nil
}

// condAfterWrite reports whether a condition of ops may fail after an
// earlier op wrote: only then does a grouped Apply need a savepoint.
func condAfterWrite(ops []sqlkv.Op) bool {
	wrote := false
	for _, op := range ops {
		if !op.Cond.IsAlways() && wrote {
			return true
		}
		if op.Kind != sqlkv.OpCheck {
			wrote = true
		}
	}
	return false
}

// readsAbsence reports whether op depends on its key being absent without
// writing it: a check or delete conditioned on IfNotExists. Such a read locks
// no row, so it needs the dialect's CheckTx. A check that the key exists (or
// has a version) reads with the Version statement, which locks the row where
// the dialect can (FOR SHARE), so row locks protect it at any isolation
// level: the heartbeat's [Check node exists, Put heartbeat] stays at the
// default level and never fails spuriously.
func readsAbsence(op sqlkv.Op) bool {
	v, isVersion := op.Cond.Version()
	return (op.Kind == sqlkv.OpCheck || op.Kind == sqlkv.OpDelete) && isVersion && v == 0
}

// binder gives the form of a prepared statement that runs where an op runs:
// in a transaction (tx.StmtContext) or on its own (autocommit).
type binder func(*sql.Stmt) *sql.Stmt

func autocommit(stmt *sql.Stmt) *sql.Stmt { return stmt }

// applyOp runs one op of Apply, with its statements bound by in. A failed
// condition is sqlkv.ErrConflict.
func (s *Store) applyOp(ctx context.Context, in binder, op sqlkv.Op, at int64) (sqlkv.OpResult, error) {
	key := bin(op.Key)
	want, isVersion := op.Cond.Version()
	switch {
	case op.Kind == sqlkv.OpCheck, op.Kind == sqlkv.OpDelete && isVersion && want == 0:
		// A check, or a delete that needs the key absent (nothing to
		// delete then): read the version, locking the row where the
		// dialect can.
		current, err := s.currentVersion(ctx, in, key)
		if err != nil {
			return sqlkv.OpResult{}, err
		}
		if !op.Cond.Holds(current) {
			return sqlkv.OpResult{}, sqlkv.ErrConflict
		}
		if op.Kind == sqlkv.OpDelete {
			return sqlkv.OpResult{}, nil
		}
		return sqlkv.OpResult{Version: current, Existed: current != 0}, nil

	case op.Kind == sqlkv.OpDelete:
		var n int64
		var err error
		if isVersion {
			n, err = affected(in(s.delIfVersion).ExecContext(ctx, key, want))
		} else {
			n, err = affected(in(s.del).ExecContext(ctx, key))
		}
		if err != nil {
			return sqlkv.OpResult{}, err
		}
		if n == 0 && !op.Cond.IsAlways() {
			return sqlkv.OpResult{}, sqlkv.ErrConflict
		}
		return sqlkv.OpResult{Existed: n > 0}, nil

	case isVersion && want == 0:
		return s.putIf(ctx, in, s.putIfNot, false, key, bin(op.Value), at)
	case isVersion:
		return s.putIf(ctx, in, s.putIfVersion, true, key, bin(op.Value), at, want)
	case op.Cond.RequiresExisting():
		return s.putIf(ctx, in, s.putIfExists, true, key, bin(op.Value), at)
	}

	// Unconditional put. The upsert cannot tell whether the key existed, so
	// update it if it exists, else insert it; if another transaction inserted
	// it in between, the insert writes nothing and the update is tried again.
	for {
		r, err := s.putIf(ctx, in, s.putIfExists, true, key, bin(op.Value), at)
		if !errors.Is(err, sqlkv.ErrConflict) {
			return r, err
		}
		r, err = s.putIf(ctx, in, s.putIfNot, false, key, bin(op.Value), at)
		if !errors.Is(err, sqlkv.ErrConflict) {
			return r, err
		}
		if err := ctx.Err(); err != nil {
			return sqlkv.OpResult{}, err
		}
	}
}

// putIf runs a conditional put statement; no row back means the condition
// failed.
func (s *Store) putIf(ctx context.Context, in binder, stmt *sql.Stmt, existed bool, args ...any) (sqlkv.OpResult, error) {
	var v int64
	err := in(stmt).QueryRowContext(ctx, args...).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return sqlkv.OpResult{}, sqlkv.ErrConflict
	}
	if err != nil {
		return sqlkv.OpResult{}, err
	}
	return sqlkv.OpResult{Version: v, Existed: existed}, nil
}

// currentVersion returns key's version, 0 if it does not exist.
func (s *Store) currentVersion(ctx context.Context, in binder, key []byte) (int64, error) {
	var v int64
	err := in(s.version).QueryRowContext(ctx, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return v, err
}
