package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path into the new
// file dest (creating its directory) with VACUUM INTO, which only reads the database (in one read
// transaction: a snapshot, thanks to WAL, while a server keeps writing): it
// runs next to a server using the file, needs no lock from it, and the copy is one self-contained file
// (no -wal or -shm) that Open accepts as is. It returns an error if dest
// exists, if path is not a SQLite database, and errors wrapping
// sqlkv.ErrUnavailable when the file cannot be read.
func Backup(ctx context.Context, path, dest string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	absDest, err := filepath.Abs(dest)
	if err != nil {
		return fmt.Errorf("sqlite: backup: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return fmt.Errorf("sqlite: backup %s: %w", abs, err)
	}
	if _, err := os.Stat(absDest); err == nil {
		return fmt.Errorf("sqlite: backup to %s: %w", absDest, os.ErrExist)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("sqlite: backup to %s: %w", absDest, err)
	}
	// Not query_only: SQLite counts VACUUM INTO as a write, although it
	// writes only dest.
	if err := os.MkdirAll(filepath.Dir(absDest), 0o755); err != nil {
		return fmt.Errorf("sqlite: backup to %s: %w", absDest, err)
	}
	db, err := sql.Open("sqlite", dsn(abs))
	if err != nil {
		return fmt.Errorf("sqlite: backup %s: %w", abs, err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRowContext(ctx, queryKVTableExists).Scan(&tables); err != nil {
		return fmt.Errorf("sqlite: backup %s: %w", abs, translate(err))
	}
	if tables == 0 {
		return fmt.Errorf("sqlite: backup %s: no SMS store in it (no kv table)", abs)
	}
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, absDest); err != nil {
		return fmt.Errorf("sqlite: backup %s to %s: %w", abs, absDest, translate(err))
	}
	return nil
}
