// Package sqlite is the SQLite backend of sqlkv, on the pure-Go
// modernc.org/sqlite driver: one database file, WAL, every write serialized
// through one connection with BEGIN IMMEDIATE, reads on a pool of read-only
// connections. One process per file: Open takes an OS lock on <file>.lock
// for the store's lifetime, and a second process gets ErrInUse.
package sqlite

//go:generate go run ../internal/sqlstore/publicgen

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/internal/sqlstore"
)

// Synchronous levels accepted in Options.
const (
	// SynchronousFull makes a committed write survive a power loss or OS
	// crash: every commit waits for the disk.
	SynchronousFull = "full"
	// SynchronousNormal makes a committed write survive a crash of the
	// process; the last commits may be lost on power loss or an OS crash. It
	// is faster for small writes, which then wait for no disk flush.
	SynchronousNormal = "normal"
)

// Options tune a SQLite store. The zero value is the safe default.
type Options struct {
	// Synchronous is SynchronousFull (the default when empty) or
	// SynchronousNormal, case-insensitive.
	Synchronous string
	// SkipMigrations makes Open check the schema instead of migrating it:
	// Open fails with an error wrapping migrations.ErrPending if a migration
	// is not applied (run them with Migrations, as a deploy step).
	SkipMigrations bool
	// MaxPages caps the database file at this many pages (4 KiB each;
	// PRAGMA max_page_count); 0 is no cap beyond the disk's. Writes past it
	// fail with sqlkv.ErrStorageFull, as on a full disk.
	MaxPages int
	// NoGroupCommit makes every write commit on its own instead of
	// gathering concurrent writes into one transaction. It exists to
	// measure group commit; outcomes are the same either way.
	NoGroupCommit bool
}

// Validate returns an error naming the accepted values if o.Synchronous is
// not one of them.
func (o Options) Validate() error {
	_, err := synchronous(o.Synchronous)
	return err
}

// busyTimeoutMillis is how long a connection waits for a lock held by another
// process (in-process writers queue on the one writer connection instead)
// before giving up with ErrUnavailable.
const busyTimeoutMillis = 10_000

// Store is a sqlkv.Store in one SQLite database file, with every fast path
// of package sqlkv (see store_gen.go). Its methods are described on sqlkv.Store
// and the fast-path interfaces.
type Store struct {
	store          *sqlstore.Store
	reader, writer *sql.DB
	lock           *fileLock
}

// Open opens the SQLite database at path, creating the file and its parent
// directories if needed, and applies pending migrations before returning.
// It returns an error for an empty path, ":memory:" (the store pools
// connections, and each would see its own in-memory database), an unknown
// Synchronous level, an error wrapping ErrInUse (naming the other process)
// when another process has the file open, and errors wrapping
// sqlkv.ErrUnavailable when the file cannot be opened.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	sync, err := synchronous(opts.Synchronous)
	if err != nil {
		return nil, err
	}
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: path %q: want a file path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: path %q: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(abs), 0o755); err != nil {
		return nil, fmt.Errorf("sqlite: %w: create directory: %w", sqlkv.ErrUnavailable, err)
	}
	lock, err := lockFile(abs)
	if err != nil {
		return nil, err
	}

	// Pragmas go in the DSN so that every connection the pools open gets
	// them. The writer gets a bigger page cache (batches touch many pages).
	writerPragmas := []string{
		"_txlock=immediate",
		"_pragma=cache_size(-32000)",
		"_pragma=synchronous(" + sync + ")",
	}
	if opts.MaxPages > 0 {
		writerPragmas = append(writerPragmas, fmt.Sprintf("_pragma=max_page_count(%d)", opts.MaxPages))
	}
	writer, err := sql.Open("sqlite", dsn(abs, writerPragmas...))
	if err != nil {
		lock.release()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	// One writer connection: in-process writers queue for it in
	// database/sql instead of fighting over SQLite's lock.
	writer.SetMaxOpenConns(1)
	writer.SetMaxIdleConns(1)
	writer.SetConnMaxLifetime(0)
	writer.SetConnMaxIdleTime(0)

	d := dialect
	if opts.NoGroupCommit {
		d.GroupLanes = 0
	}
	s, err := open(ctx, d, abs, sync, writer, opts.SkipMigrations)
	if err != nil {
		writer.Close()
		lock.release()
		return nil, fmt.Errorf("sqlite: open %s: %w", abs, err)
	}
	s.lock = lock
	return s, nil
}

// Close closes the database, then releases the file's lock.
func (s *Store) Close() error {
	err := s.store.Close()
	if errors.Is(err, sqlkv.ErrClosed) {
		return err
	}
	return errors.Join(err, s.lock.release())
}

func open(ctx context.Context, d sqlstore.Dialect, abs, sync string, writer *sql.DB, skipMigrations bool) (*Store, error) {
	if err := writer.PingContext(ctx); err != nil {
		return nil, translate(err)
	}
	// Migrations run on the writer before any reader exists.
	p, err := migrations.NewSQLiteProvider(writer)
	if err != nil {
		return nil, err
	}
	if skipMigrations {
		if err := migrations.CheckCurrent(ctx, p); err != nil {
			return nil, translate(err)
		}
	} else if _, err := p.Up(ctx); err != nil {
		return nil, fmt.Errorf("migrate: %w", translate(err))
	}

	reader, err := sql.Open("sqlite", dsn(abs,
		"_pragma=query_only(1)",
		"_pragma=synchronous("+sync+")",
	))
	if err != nil {
		return nil, err
	}
	n := max(4, runtime.GOMAXPROCS(0))
	reader.SetMaxOpenConns(n)
	reader.SetMaxIdleConns(n)
	reader.SetConnMaxLifetime(0)
	reader.SetConnMaxIdleTime(0)

	store, err := sqlstore.Open(ctx, d, reader, writer)
	if err != nil {
		reader.Close()
		return nil, err
	}
	return &Store{store: store, reader: reader, writer: writer}, nil
}

// dsn returns the driver's name for the file at abs with the pragmas every
// connection needs plus extra. The path is a file: URI so that any byte in
// it (?, #, %) is escaped rather than parsed.
func dsn(abs string, extra ...string) string {
	params := append([]string{
		"_pragma=busy_timeout(" + fmt.Sprint(busyTimeoutMillis) + ")",
		"_pragma=journal_mode(WAL)",
		"_pragma=foreign_keys(0)",
	}, extra...)
	return "file:" + (&url.URL{Path: abs}).EscapedPath() + "?" + strings.Join(params, "&")
}

// synchronous returns the PRAGMA synchronous value for level.
func synchronous(level string) (string, error) {
	switch strings.ToLower(level) {
	case "", SynchronousFull:
		return "FULL", nil
	case SynchronousNormal:
		return "NORMAL", nil
	}
	return "", fmt.Errorf("sqlite: synchronous %q: want %q or %q", level, SynchronousFull, SynchronousNormal)
}

var dialect = sqlstore.Dialect{
	Queries:   queries,
	NoLimit:   noLimit,
	Translate: translate,
	// One writer connection: one group at a time, and every concurrent
	// write waits for it anyway, so gathering them costs nothing and saves
	// a commit (an fsync at synchronous=FULL) per write.
	GroupLanes: 1,
}
