package main

import (
	"context"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

// storeConfig turns the flags into the store factory's configuration. Only
// the chosen backend's parameters are passed: the defaults of the others
// (such as --kv-path) are always present and kvstore rejects parameters a
// backend does not use. warnIgnored has told the operator about any that
// were given explicitly.
func storeConfig(cfg config) kvstore.Config {
	switch cfg.backend {
	case kvstore.BackendSQLite:
		c := kvstore.SQLite(cfg.kvPath)
		c.SQLiteSynchronous = cfg.sqliteSynchronous
		return c
	case kvstore.BackendPostgres:
		return kvstore.Postgres(cfg.kvDSN)
	}
	return kvstore.Memory()
}

// openStore opens and migrates the configured store.
func openStore(ctx context.Context, cfg config) (sqlkv.Store, error) {
	return kvstore.Open(ctx, storeConfig(cfg))
}
