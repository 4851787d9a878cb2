package main

import (
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// instrument returns the metrics of the server (nil with --metrics=false)
// and store wrapped to time its operations. The connection pools of a SQL
// store are reported too.
func instrument(cfg config, store sqlkv.Store) (*metrics.Metrics, sqlkv.Store) {
	if !cfg.metrics {
		return nil, store
	}
	m := metrics.New()
	inner := store
	if ws, ok := store.(*watchstore.Store); ok {
		inner = ws.Store
	}
	if ps, ok := inner.(metrics.PoolStats); ok {
		m.RegisterPools(cfg.store.Backend, ps)
	}
	return m, m.WrapStore(cfg.store.Backend, store)
}
