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
// Update. A conflict there means another writer changed the node between the
// read and the write; retrying re-reads and re-applies on top of that change.
const maxAttempts = 16

// strictAttempts is how many of them Update makes conditional on the node's
// version before settling for its existence (see NodeRegistry.Update).
const strictAttempts = 4

// retryConflicts runs attempt (numbered from 0) until it returns something other than
// sqlkv.ErrConflict, sleeping a short random, growing back-off between tries
// so that writers contending for one node spread out instead of colliding in
// lock step. After maxAttempts conflicts it returns the last one, wrapped, so
// errors.Is(err, sqlkv.ErrConflict) still holds.
func retryConflicts(ctx context.Context, attempt func(i int) error) error {
	for i := 0; ; i++ {
		err := attempt(i)
		if !errors.Is(err, sqlkv.ErrConflict) {
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
