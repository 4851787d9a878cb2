package main

import (
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// The capabilities this command finds by type assertion on the store
// kvstore opened (instrument: pool statistics; databaseClock: the shared
// clock): if a store stops having one, this fails to compile instead of a
// metric or the database clock silently going missing.
var (
	_ metrics.PoolStats    = (*sqlite.Store)(nil)
	_ metrics.PoolStats    = (*postgres.Store)(nil)
	_ registry.ClockSource = (*postgres.Store)(nil)
)
