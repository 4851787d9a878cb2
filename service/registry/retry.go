package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/spear-next/sms/sqlkv"
)

// maxAttempts bounds the optimistic read-then-Apply loops of Register and
// Update, and the re-runs of apply. A conflict in those loops means another
// writer changed the node between the read and the write (or the database
// could not serialize the two); retrying re-reads and re-applies on top of
// that change.
const maxAttempts = 16

// strictAttempts is how many of them Update makes conditional on the node's
// version before settling for its existence (see NodeRegistry.Update).
const strictAttempts = 4

// retryConflicts runs attempt (numbered from 0) until it returns something
// other than sqlkv.ErrConflict, or a *conditionError, sleeping a short
// random, growing back-off between tries so that writers contending for one
// node spread out instead of colliding in lock step. After maxAttempts conflicts it returns the last one, wrapped, so
// errors.Is(err, sqlkv.ErrConflict) still holds.
func retryConflicts(ctx context.Context, attempt func(i int) error) error {
	for i := 0; ; i++ {
		err := attempt(i)
		if !errors.Is(err, sqlkv.ErrConflict) || conditionFailed(err) {
			return err
		}
		if i+1 >= maxAttempts {
			return fmt.Errorf("gave up after %d attempts: %w", maxAttempts, err)
		}
		if err := sleep(ctx, backoff(i)); err != nil {
			return err
		}
	}
}

// backoff returns a random delay in [0, min(10ms, 50µs·2^i)).
func backoff(i int) time.Duration {
	limit := 50 * time.Microsecond << min(i, 8)
	limit = min(limit, 10*time.Millisecond)
	return rand.N(limit)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// apply runs ops with store.Apply. When a condition of ops fails it returns
// a *conditionError (see conditionFailed), which wraps sqlkv.ErrConflict.
//
// A store may also report ErrConflict when the database could not serialize
// the transaction with concurrent ones (Postgres does, at SERIALIZABLE, after
// retrying on its own). Then every condition still holds when re-read, and
// apply runs ops again, up to maxAttempts times; after that it returns the
// conflict wrapped, but not as a *conditionError. The common path is one
// transaction; the re-reads cost only on a conflict.
func apply(ctx context.Context, store sqlkv.Store, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	var results []sqlkv.OpResult
	err := retryConflicts(ctx, func(int) error {
		var err error
		results, err = store.Apply(ctx, ops...)
		if !errors.Is(err, sqlkv.ErrConflict) {
			return err
		}
		hold, rerr := conditionsHold(ctx, store, ops)
		if rerr != nil {
			return rerr
		}
		if !hold {
			return &conditionError{err}
		}
		return err
	})
	return results, err
}

// conditionError is a conflict because a condition did not hold, as opposed
// to one because the database could not serialize a transaction.
type conditionError struct{ err error }

func (e *conditionError) Error() string { return e.err.Error() }
func (e *conditionError) Unwrap() error { return e.err }

// conditionFailed reports whether err is from apply and says a condition of
// its ops did not hold.
func conditionFailed(err error) bool {
	var ce *conditionError
	return errors.As(err, &ce)
}

// conditionsHold reports whether every condition of ops holds for the keys'
// current versions. The registry's ops each touch a different key, so each
// condition is checked on its own.
func conditionsHold(ctx context.Context, store sqlkv.Store, ops []sqlkv.Op) (bool, error) {
	for _, op := range ops {
		if op.Cond.IsAlways() {
			continue
		}
		var current int64
		e, err := store.Get(ctx, op.Key)
		switch {
		case err == nil:
			current = e.Version
		case !errors.Is(err, sqlkv.ErrNotFound):
			return false, err
		}
		if !op.Cond.Holds(current) {
			return false, nil
		}
	}
	return true, nil
}
