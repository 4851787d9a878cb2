// Package kvstore chooses and opens a sqlkv backend from plain configuration
// values: the one place that knows every backend. cmd/sms fills a Config from
// its flags (or FromEnv) and calls Open.
package kvstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// The backends.
const (
	BackendMemory   = "memory"
	BackendSQLite   = "sqlite"
	BackendPostgres = "postgres"
)

// Backends lists the supported backends, for help texts and errors.
var Backends = []string{BackendMemory, BackendSQLite, BackendPostgres}

// Environment variables read by FromEnv, and their defaults.
const (
	EnvBackend           = "KV_BACKEND"
	EnvPath              = "KV_PATH"
	EnvDSN               = "KV_DSN"
	EnvSQLiteSynchronous = "KV_SQLITE_SYNCHRONOUS"

	DefaultBackend = BackendSQLite
	DefaultPath    = "./data/sms.db"
)

// Config selects a backend and its parameters. Each parameter belongs to one
// backend; setting one that the chosen backend does not use is an error, so
// that a typo in a deployment is not silently ignored.
type Config struct {
	// Backend is BackendMemory, BackendSQLite or BackendPostgres.
	Backend string
	// Path is the SQLite database file (sqlite only, required).
	Path string
	// DSN is the Postgres connection string (postgres only, required). It is
	// never included in errors or String with its password.
	DSN string
	// SQLiteSynchronous is "full" (the default when empty) or "normal"
	// (sqlite only); see sqlite.SynchronousFull and SynchronousNormal.
	SQLiteSynchronous string
	// SkipMigrations makes Open check the schema instead of migrating it
	// (sqlite and postgres): Open fails with an error wrapping
	// migrations.ErrPending if a migration is not applied. Migrations runs
	// them instead.
	SkipMigrations bool
}

// Memory returns the configuration of an in-memory store.
func Memory() Config { return Config{Backend: BackendMemory} }

// SQLite returns the configuration of a SQLite store in the file at path.
func SQLite(path string) Config { return Config{Backend: BackendSQLite, Path: path} }

// Postgres returns the configuration of a Postgres store at dsn.
func Postgres(dsn string) Config { return Config{Backend: BackendPostgres, DSN: dsn} }

// FromEnv reads a Config from KV_BACKEND (default sqlite), KV_PATH (default
// ./data/sms.db for sqlite), KV_DSN and KV_SQLITE_SYNCHRONOUS through getenv
// (os.Getenv, or a map's lookup in tests; "" means unset), and validates it.
// Its errors name the variables.
func FromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Backend:           strings.ToLower(strings.TrimSpace(getenv(EnvBackend))),
		Path:              getenv(EnvPath),
		DSN:               getenv(EnvDSN),
		SQLiteSynchronous: strings.TrimSpace(getenv(EnvSQLiteSynchronous)),
	}
	if cfg.Backend == "" {
		cfg.Backend = DefaultBackend
	}
	if cfg.Backend == BackendSQLite && cfg.Path == "" {
		cfg.Path = DefaultPath
	}
	if err := cfg.validate(envNames); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// names says how errors call each parameter.
type names struct{ backend, path, dsn, sync string }

var (
	fieldNames = names{"Backend", "Path", "DSN", "SQLiteSynchronous"}
	envNames   = names{EnvBackend, EnvPath, EnvDSN, EnvSQLiteSynchronous}
)

// Validate returns an error if the backend is unknown (naming the supported
// ones), a parameter it needs is missing, a parameter it does not use is set,
// or SQLiteSynchronous is not an accepted level.
func (c Config) Validate() error { return c.validate(fieldNames) }

func (c Config) validate(n names) error {
	type param struct {
		name, value string
		backend     string
	}
	params := []param{
		{n.path, c.Path, BackendSQLite},
		{n.dsn, c.DSN, BackendPostgres},
		{n.sync, c.SQLiteSynchronous, BackendSQLite},
	}
	switch c.Backend {
	case BackendMemory, BackendSQLite, BackendPostgres:
	case "":
		return fmt.Errorf("kvstore: %s is empty: want one of %s", n.backend, strings.Join(Backends, ", "))
	default:
		return fmt.Errorf("kvstore: %s %q is not a backend: want one of %s", n.backend, c.Backend, strings.Join(Backends, ", "))
	}
	var errs []error
	if c.SkipMigrations && c.Backend == BackendMemory {
		errs = append(errs, errors.New("kvstore: SkipMigrations is set but the memory backend has no migrations"))
	}
	for _, p := range params {
		if p.value != "" && p.backend != c.Backend {
			errs = append(errs, fmt.Errorf("kvstore: %s is set but the %s backend does not use it (it is for %s)", p.name, c.Backend, p.backend))
		}
	}
	switch c.Backend {
	case BackendSQLite:
		if c.Path == "" {
			errs = append(errs, fmt.Errorf("kvstore: the sqlite backend needs %s, the database file", n.path))
		}
		if err := (sqlite.Options{Synchronous: c.SQLiteSynchronous}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("kvstore: %s: %w", n.sync, err))
		}
	case BackendPostgres:
		if c.DSN == "" {
			errs = append(errs, fmt.Errorf("kvstore: the postgres backend needs %s, the connection string", n.dsn))
		}
	}
	return errors.Join(errs...)
}

// String describes c for logs, with the DSN's password redacted.
func (c Config) String() string {
	switch c.Backend {
	case BackendSQLite:
		return fmt.Sprintf("sqlite path=%s synchronous=%s", c.Path, orDefault(c.SQLiteSynchronous, sqlite.SynchronousFull))
	case BackendPostgres:
		return "postgres dsn=" + postgres.RedactDSN(c.DSN)
	}
	return c.Backend
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Open validates cfg and opens its store: a new empty memory store, or the
// SQLite or Postgres database, migrated. Errors wrap those of Validate and of
// the backend's Open (sqlkv.ErrUnavailable when the database cannot be
// reached) and never contain the DSN's password.
func Open(ctx context.Context, cfg Config) (sqlkv.Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch cfg.Backend {
	case BackendMemory:
		return memory.New(), nil
	case BackendSQLite:
		s, err := sqlite.Open(ctx, cfg.Path, sqlite.Options{Synchronous: cfg.SQLiteSynchronous, SkipMigrations: cfg.SkipMigrations})
		if err != nil {
			return nil, fmt.Errorf("kvstore: %w", err)
		}
		return s, nil
	default: // BackendPostgres, as validated
		s, err := postgres.OpenWithOptions(ctx, cfg.DSN, postgres.Options{SkipMigrations: cfg.SkipMigrations})
		if err != nil {
			return nil, fmt.Errorf("kvstore: %w", err)
		}
		return s, nil
	}
}

// Migrations validates cfg and opens its database for running migrations by
// hand (`sms migrate`): it returns the goose provider of the backend's
// migrations and the database to close after use. The memory backend has no
// migrations: that is an error. Errors never contain the DSN's password.
func Migrations(ctx context.Context, cfg Config) (*goose.Provider, io.Closer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	var (
		p   *goose.Provider
		c   io.Closer
		err error
	)
	switch cfg.Backend {
	case BackendSQLite:
		p, c, err = sqlite.Migrations(ctx, cfg.Path)
	case BackendPostgres:
		p, c, err = postgres.Migrations(ctx, cfg.DSN)
	default:
		return nil, nil, fmt.Errorf("kvstore: the %s backend has no migrations", cfg.Backend)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kvstore: %w", err)
	}
	return p, c, nil
}
