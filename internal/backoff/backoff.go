// Package backoff holds SMS's retry policies, all built on
// github.com/sethvargo/go-retry, the project's one backoff helper: every
// retry loop in SMS is a retry.Do with one of these policies, bounded by the
// caller's context (its deadline or cancellation), never by a count.
package backoff

import (
	"context"
	"time"

	"github.com/sethvargo/go-retry"
)

// Contention is the policy for writers that collided with concurrent
// writers of the same rows: the collision usually clears within one
// transaction's time, so the first pause is short, and full jitter spreads
// the colliding writers out instead of letting them collide again in
// lockstep. Pauses grow exponentially from 50 µs up to 20 ms; there is no
// limit on the number of tries: the caller's context decides when to give
// up. A Backoff keeps state, so each retry loop takes a new one.
func Contention() retry.Backoff {
	return retry.WithFullJitter(retry.WithCappedDuration(20*time.Millisecond, retry.NewExponential(50*time.Microsecond)))
}

// Reconnect is the policy for re-establishing a lost connection (the
// Postgres change feed's LISTEN connection, a watcher's subscription):
// from 100 ms up to 5 s, each pause jittered by up to a quarter so that
// replicas that lost the database together do not reconnect in lockstep.
func Reconnect() retry.Backoff {
	return retry.WithJitterPercent(25, retry.WithCappedDuration(5*time.Second, retry.NewExponential(100*time.Millisecond)))
}

// Do runs f until it returns nil or an error that is not retryable, pausing
// between tries as b says, or until ctx is done (then it returns ctx's
// error). retryable decides which errors are tried again.
func Do(ctx context.Context, b retry.Backoff, retryable func(error) bool, f func(ctx context.Context) error) error {
	return retry.Do(ctx, b, func(ctx context.Context) error {
		err := f(ctx)
		if err != nil && retryable(err) {
			return retry.RetryableError(err)
		}
		return err
	})
}
