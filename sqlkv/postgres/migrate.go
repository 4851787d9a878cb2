package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/migrations"
)

// Migrations connects to the database named by dsn for running its
// migrations by hand, as `sms migrate` does, and returns the goose provider
// (Up and Down hold the same advisory lock as Open) and the database to
// close after use. It returns the same errors as Open for a malformed or
// unreachable dsn, never containing its password.
func Migrations(ctx context.Context, dsn string) (*goose.Provider, io.Closer, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: cannot parse DSN %s", RedactDSN(dsn))
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(2)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("postgres: open: %w", redact(translate(err), cfg.Password))
	}
	p, err := migrations.NewPostgresProvider(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("postgres: %w", redact(translate(err), cfg.Password))
	}
	return p, db, nil
}

// PoolStats returns the statistics of the store's connection pool, as
// "pool" (the LISTEN connection of Watch is not part of it).
func (s *Store) PoolStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{"pool": s.db.Stats()}
}
