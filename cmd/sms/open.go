package main

import (
	"context"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// openStore opens and migrates the configured store, watchable: Postgres
// is (LISTEN/NOTIFY, across replicas); memory and SQLite, whose writers are
// all in this process, are wrapped to report their writes in process.
func openStore(ctx context.Context, cfg config) (sqlkv.Store, error) {
	store, err := kvstore.Open(ctx, cfg.store)
	if err != nil {
		return nil, err
	}
	if _, ok := store.(sqlkv.Watchable); ok {
		return store, nil
	}
	return watchstore.New(store), nil
}
