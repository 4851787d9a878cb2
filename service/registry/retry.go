package registry

import (
	"context"
	"errors"

	"github.com/spear-next/sms/internal/backoff"
	"github.com/spear-next/sms/sqlkv"
)

// retryConflicts runs attempt, an optimistic read-then-Apply of Register or
// Update, until it returns something other than sqlkv.ErrConflict. The store
// reports ErrConflict only for a condition that failed (see
// sqlkv.Store.Apply), so here a conflict always means another writer
// changed the node between the read and the write: that writer succeeded,
// and re-reading on top of its change is the way forward. Retries are
// jittered (backoff.Contention) so that contending writers spread out, and
// bounded by ctx, not by a count: a valid request under contention fails
// only when its caller's deadline passes, with ctx's error.
func retryConflicts(ctx context.Context, attempt func() error) error {
	return backoff.Do(ctx, backoff.Contention(), isConflict, func(context.Context) error { return attempt() })
}

func isConflict(err error) bool { return errors.Is(err, sqlkv.ErrConflict) }
