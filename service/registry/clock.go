package registry

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// ClockSource is a clock shared by every process that uses a store: the
// database server's (postgres.Store.Now).
type ClockSource interface {
	Now(ctx context.Context) (time.Time, error)
}

// DatabaseClock is a clock for WithClock that follows a shared ClockSource,
// so that registries in several processes on one database stamp heartbeats
// and decide expiry on one clock: with each process on its own clock, two
// replicas whose clocks differ by more than the heartbeat timeout would
// mark fresh nodes unhealthy (or miss stale ones).
//
// Reading the database for every timestamp would add a round trip to each
// heartbeat, so instead Sync measures the local clock's offset to the
// source (one query, corrected by half its round trip, as NTP does) and Now
// is the local clock plus that offset. Run calls Sync periodically, so a
// local clock that drifts or is stepped is corrected within one period. The
// error of Now is about half a round trip to the database plus the local
// drift since the last Sync: milliseconds, next to heartbeat timeouts of
// seconds to minutes.
type DatabaseClock struct {
	src    ClockSource
	local  func() time.Time
	offset atomic.Int64 // nanoseconds to add to local
}

// NewDatabaseClock returns a clock that reads local (time.Now if nil) and
// corrects it to src; until the first Sync the offset is zero.
func NewDatabaseClock(src ClockSource, local func() time.Time) *DatabaseClock {
	if local == nil {
		local = time.Now
	}
	return &DatabaseClock{src: src, local: local}
}

// Now returns the local clock corrected by the last measured offset.
func (c *DatabaseClock) Now() time.Time {
	return c.local().Add(time.Duration(c.offset.Load()))
}

// Offset returns the last measured offset of the source to the local clock.
func (c *DatabaseClock) Offset() time.Duration { return time.Duration(c.offset.Load()) }

// Sync measures the offset of the source to the local clock and uses it
// from now on. On error the previous offset stays.
//
// Errors: the source's, wrapped.
func (c *DatabaseClock) Sync(ctx context.Context) error {
	before := c.local()
	remote, err := c.src.Now(ctx)
	if err != nil {
		return fmt.Errorf("sync clock: %w", err)
	}
	after := c.local()
	mid := before.Add(after.Sub(before) / 2)
	c.offset.Store(int64(remote.Sub(mid)))
	return nil
}

// Run calls Sync every period until ctx ends, passing each error to onErr
// (which may be nil); the clock keeps its last offset meanwhile.
func (c *DatabaseClock) Run(ctx context.Context, period time.Duration, onErr func(error)) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sctx, cancel := context.WithTimeout(ctx, period)
			err := c.Sync(sctx)
			cancel()
			if err != nil && onErr != nil && ctx.Err() == nil {
				onErr(err)
			}
		}
	}
}
