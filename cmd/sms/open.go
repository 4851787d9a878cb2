package main

import (
	"context"

	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// openStore opens and migrates the configured store and returns it ready
// for the registries: instrumented (unless --metrics=false; m is nil then),
// and watchable. Postgres is watchable itself (LISTEN/NOTIFY, across
// replicas); memory and SQLite, whose writers are all in this process, are
// wrapped to report their writes in process. raw is the store as kvstore
// opened it, for what the wrappers do not forward (the database clock).
func openStore(ctx context.Context, cfg config) (m *metrics.Metrics, store, raw sqlkv.Store, err error) {
	raw, err = kvstore.Open(ctx, cfg.store)
	if err != nil {
		return nil, nil, nil, err
	}
	m, store = instrument(cfg, raw)
	if _, ok := store.(sqlkv.Watchable); ok {
		return m, store, raw, nil
	}
	return m, watchstore.New(store), raw, nil
}

// instrument returns the metrics of the server (nil with --metrics=false)
// and store wrapped to time its operations. The connection pools of a SQL
// store are reported too: store is the one kvstore opened, before any
// wrapping.
func instrument(cfg config, store sqlkv.Store) (*metrics.Metrics, sqlkv.Store) {
	if !cfg.metrics {
		return nil, store
	}
	m := metrics.New()
	if ps, ok := store.(metrics.PoolStats); ok {
		m.RegisterPools(cfg.store.Backend, ps)
	}
	return m, m.WrapStore(cfg.store.Backend, store)
}
