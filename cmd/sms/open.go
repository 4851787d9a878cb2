package main

import (
	"context"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/watchstore"
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
		c.SkipMigrations = cfg.skipMigrations
		return c
	case kvstore.BackendPostgres:
		c := kvstore.Postgres(cfg.kvDSN)
		c.SkipMigrations = cfg.skipMigrations
		return c
	}
	return kvstore.Memory()
}

// openStore opens and migrates the configured store, watchable: Postgres
// is (LISTEN/NOTIFY, across replicas); memory and SQLite, whose writers are
// all in this process, are wrapped to report their writes in process.
func openStore(ctx context.Context, cfg config) (sqlkv.Store, error) {
	store, err := kvstore.Open(ctx, storeConfig(cfg))
	if err != nil {
		return nil, err
	}
	if _, ok := store.(sqlkv.Watchable); ok {
		return store, nil
	}
	return watchstore.New(store), nil
}
