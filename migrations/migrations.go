// Package migrations holds the goose SQL migrations of the SQL backends of
// sqlkv, embedded, one folder per dialect, the Go migration that rewrites
// the registry's stored records to a new format (records.go), and the goose
// providers that apply them. The stores apply them on Open; a "migrate" command can use the same
// providers for up, down and status.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"hash/fnv"
	"io/fs"
	"strings"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed sqlite/*.sql
var sqliteFiles embed.FS

//go:embed postgres/*.sql
var postgresFiles embed.FS

// SQLite is the SQLite migrations, with the files at its root.
var SQLite = mustSub(sqliteFiles, "sqlite")

// Postgres is the Postgres migrations, with the files at its root.
var Postgres = mustSub(postgresFiles, "postgres")

func mustSub(fsys fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		panic(err) // dir is a constant embedded above
	}
	return sub
}

// NewSQLiteProvider returns a goose provider for the SQLite migrations on db.
// It takes no lock: a SQLite file belongs to one SMS process. Each migration
// runs in its own transaction, so if two processes do migrate one new file at
// once, the second fails cleanly ("table kv already exists") and succeeds
// when started again.
func NewSQLiteProvider(db *sql.DB) (*goose.Provider, error) {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, SQLite,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(recordsMigration(sqliteRecordQueries)),
	)
	if err != nil {
		return nil, fmt.Errorf("sqlite migrations: %w", err)
	}
	return p, nil
}

// NewPostgresProvider returns a goose provider for the Postgres migrations on
// db, in the schema db's connections resolve as current_schema() (set it with
// search_path). Up and Down hold a session-level advisory lock, so several
// replicas starting at once against one database apply each migration once.
// The lock id is derived from the schema name: migrations of different
// schemas in one database do not wait for each other.
//
// It returns an error if db cannot be reached or its search_path names no
// existing schema (naming it, with the CREATE SCHEMA that fixes it).
func NewPostgresProvider(ctx context.Context, db *sql.DB) (*goose.Provider, error) {
	var schema sql.NullString
	if err := db.QueryRowContext(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("postgres migrations: current schema: %w", err)
	}
	if !schema.Valid {
		var path string
		if err := db.QueryRowContext(ctx, "SELECT current_setting('search_path')").Scan(&path); err != nil {
			return nil, fmt.Errorf("postgres migrations: search_path: %w", err)
		}
		return nil, fmt.Errorf("postgres migrations: search_path %q names no existing schema; create it first (CREATE SCHEMA %s;) or change search_path in the DSN", path, firstSchema(path))
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockID(LockID(schema.String)),
		// goose waits between tries to take the lock; 1 s is its shortest
		// period. 300 tries: a replica waits up to 5 minutes for another
		// one's migrations.
		lock.WithLockTimeout(1, 300),
	)
	if err != nil {
		return nil, fmt.Errorf("postgres migrations: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectPostgres, db, Postgres,
		goose.WithDisableGlobalRegistry(true),
		goose.WithSessionLocker(locker),
		goose.WithGoMigrations(recordsMigration(postgresRecordQueries)),
	)
	if err != nil {
		return nil, fmt.Errorf("postgres migrations: %w", err)
	}
	return p, nil
}

// firstSchema returns the first schema of a search_path setting other than
// "$user", as SQL would name it.
func firstSchema(path string) string {
	for _, s := range strings.Split(path, ",") {
		if s = strings.TrimSpace(s); s != "" && s != `"$user"` && s != "$user" {
			return s
		}
	}
	return "sms"
}

// LockID returns the advisory lock id that guards the migrations of schema.
func LockID(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("sms migrations\x00"))
	h.Write([]byte(schema))
	return int64(h.Sum64())
}
