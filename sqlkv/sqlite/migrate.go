package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/migrations"
)

// Migrations opens the SQLite database at path (creating the file and its
// directories if needed) for running its migrations by hand, as
// `sms migrate` does, and returns the goose provider and the database to
// close after use. It returns the same errors as Open for a bad path or a
// file that cannot be opened.
func Migrations(ctx context.Context, path string) (*goose.Provider, io.Closer, error) {
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
	db, err := sql.Open("sqlite", dsn(abs, "_txlock=immediate"))
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite: open %s: %w", abs, translate(err))
	}
	p, err := migrations.NewSQLiteProvider(db)
	if err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("sqlite: %w", err)
	}
	return p, db, nil
}

// PoolStats returns the connection pool statistics of the store's two
// databases: "writer", the one connection every write queues for (its
// WaitCount and WaitDuration are the write queue), and "reader".
func (s *Store) PoolStats() map[string]sql.DBStats {
	return map[string]sql.DBStats{"writer": s.writer.Stats(), "reader": s.reader.Stats()}
}
