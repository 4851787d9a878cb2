package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// clockSyncPeriod is how often a replica re-measures its clock's offset to
// the database's: one query; local clocks drift by far less than a
// heartbeat timeout in that time.
const clockSyncPeriod = 10 * time.Second

// databaseClock puts liveness on the database's clock when the store has
// one (Postgres, shared by every replica; see registry.DatabaseClock): it
// measures this host's offset, logs it when it is large, keeps it current
// in the background until stop is called, and returns the registry option.
// On memory and SQLite, one process, it returns no option: the process's
// clock is the only one.
func databaseClock(ctx context.Context, store sqlkv.Store, heartbeatTimeout time.Duration, logger *slog.Logger) (opts []registry.Option, stop func()) {
	src, ok := store.(registry.ClockSource)
	if !ok {
		return nil, func() {}
	}
	clock := registry.NewDatabaseClock(src, time.Now)
	if err := clock.Sync(ctx); err != nil {
		logger.Warn("cannot read the database clock yet; using this host's until it can", "err", err)
	}
	if off := clock.Offset(); off.Abs() > heartbeatTimeout/10 {
		logger.Warn("this host's clock is off the database's; liveness uses the database's", "offset", off.String())
	} else {
		logger.Debug("liveness on the database clock", "offset", off.String())
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock.Run(runCtx, clockSyncPeriod, func(err error) {
			logger.Debug("clock sync failed; keeping the last offset", "err", err)
		})
	}()
	return []registry.Option{registry.WithClock(clock.Now)}, func() { cancel(); <-done }
}
