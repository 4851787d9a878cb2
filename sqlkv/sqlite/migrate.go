package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/migrations"
)

// MigrationOptions tune Migrations. The zero value takes the file's lock.
type MigrationOptions struct {
	// ReadOnly is for looking at the migration state only (sms migrate
	// status), which is safe next to a running server: the file's lock is
	// not taken.
	ReadOnly bool
}

// MigrationDB is the database Migrations opens; close it after use.
type MigrationDB struct {
	db   *sql.DB
	lock *fileLock
}

// Migrations opens the SQLite database at path (creating the file and its
// directories if needed) for running its migrations by hand, as
// `sms migrate` does, and returns the goose provider and the database to
// close after use. Unless opts.ReadOnly, it holds the file's lock until
// Close, so it fails with an error wrapping ErrInUse while a server has the
// file open. It returns the same errors as Open for a bad path or a file
// that cannot be opened.
func Migrations(ctx context.Context, path string, opts MigrationOptions) (*goose.Provider, *MigrationDB, error) {
	if path == "" || path == ":memory:" {
		return nil, nil, fmt.Errorf("sqlite: path %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, nil, fmt.Errorf("sqlite: create directory: %w", translate(err))
	}
	m := &MigrationDB{}
	if !opts.ReadOnly {
		if m.lock, err = lockFile(abs); err != nil {
			return nil, nil, err
		}
	}
	m.db, err = sql.Open("sqlite", dsn(abs, "_txlock=immediate"))
	if err != nil {
		m.lock.release()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	m.db.SetMaxOpenConns(1)
	if err := m.db.PingContext(ctx); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", abs, translate(err))
	}
	p, err := migrations.NewSQLiteProvider(m.db)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("sqlite: %w", err)
	}
	return p, m, nil
}

// CountKeys returns how many keys the store holds: 0 before the first
// migration created its table.
func (m *MigrationDB) CountKeys(ctx context.Context) (int64, error) {
	var tables int
	if err := m.db.QueryRowContext(ctx, queryKVTableExists).Scan(&tables); err != nil {
		return 0, fmt.Errorf("sqlite: count keys: %w", translate(err))
	}
	if tables == 0 {
		return 0, nil
	}
	var n int64
	if err := m.db.QueryRowContext(ctx, queryCountAllKeys).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count keys: %w", translate(err))
	}
	return n, nil
}

// Close closes the database and releases the file's lock.
func (m *MigrationDB) Close() error {
	return errors.Join(m.db.Close(), m.lock.release())
}

const (
	queryKVTableExists = `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'kv'`
	queryCountAllKeys  = `SELECT count(*) FROM kv`
)

// PoolStats returns the connection pool statistics of the store's two
// databases: "writer", the one connection every write queues for (its
// WaitCount and WaitDuration are the write queue), and "reader".
func (s *Store) PoolStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{"writer": s.writer.Stats(), "reader": s.reader.Stats()}
}
