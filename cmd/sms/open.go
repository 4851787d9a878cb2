package main

import (
	"context"
	"fmt"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

// openStore opens the configured store.
//
// Interim: only the memory backend is wired until sqlkv/kvstore lands; the
// others fail at start with a clear error rather than pretending to work.
func openStore(ctx context.Context, cfg config) (sqlkv.Store, error) {
	if cfg.backend == "memory" {
		return memory.New(), nil
	}
	return nil, fmt.Errorf("the %s backend is not wired into this build yet; use --kv-backend memory", cfg.backend)
}
