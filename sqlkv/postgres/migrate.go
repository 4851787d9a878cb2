package postgres

import (
	"context"
	"database/sql"
	"fmt"

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
func Migrations(ctx context.Context, dsn string) (*goose.Provider, *MigrationDB, error) {
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
	return p, &MigrationDB{db: db}, nil
}

// MigrationDB is the database Migrations opens; close it after use.
type MigrationDB struct{ db *sql.DB }

// CountKeys returns how many keys the store holds: 0 before the first
// migration created its table (in the DSN's search_path).
func (m *MigrationDB) CountKeys(ctx context.Context) (int64, error) {
	var exists bool
	if err := m.db.QueryRowContext(ctx, `SELECT to_regclass('kv') IS NOT NULL`).Scan(&exists); err != nil {
		return 0, fmt.Errorf("postgres: count keys: %w", translate(err))
	}
	if !exists {
		return 0, nil
	}
	var n int64
	if err := m.db.QueryRowContext(ctx, `SELECT count(*) FROM kv`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count keys: %w", translate(err))
	}
	return n, nil
}

// Close closes the database.
func (m *MigrationDB) Close() error { return m.db.Close() }

// PoolStats returns the statistics of the store's connection pool, as
// "pool" (the LISTEN connection of Watch is not part of it).
func (s *Store) PoolStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{"pool": s.db.Stats()}
}
