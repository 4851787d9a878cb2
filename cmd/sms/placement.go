package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/spear-next/sms/service/placement"
)

// runPlacementSweeper deletes expired placement decisions and penalties
// every interval until ctx is done. Readers already ignore expired records;
// this only gives their space back, so a failure is logged and retried at
// the next tick.
func runPlacementSweeper(ctx context.Context, p *placement.Placer, every time.Duration, logger *slog.Logger) {
	ticker := time.NewTicker(every)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		sweepCtx, cancel := context.WithTimeout(ctx, max(every, minSweepTimeout))
		res, err := p.Sweep(sweepCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil:
			logger.Warn("placement sweep failed", "err", err)
		case res != placement.SweepResult{}:
			logger.Debug("placement sweep", "deleted_decisions", res.Decisions, "deleted_penalties", res.Penalties)
		}
	}
}
