// Package kvstore chooses and opens a sqlkv backend from plain configuration
// values: the one place that knows every backend, its parameters, their
// defaults and their validation. Commands (cmd/sms, cmd/smsbench) fill a
// Config from their flags, or FromEnv, and call Open; a *ParamError names the
// parameter that is wrong so that they can name their flag.
package kvstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
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

// Environment variables read by FromEnv, and the defaults.
const (
	EnvBackend           = "KV_BACKEND"
	EnvPath              = "KV_PATH"
	EnvDSN               = "KV_DSN"
	EnvListenDSN         = "KV_LISTEN_DSN"
	EnvSQLiteSynchronous = "KV_SQLITE_SYNCHRONOUS"

	DefaultBackend = BackendSQLite
	DefaultPath    = "./data/sms.db"
)

// SynchronousLevels lists the accepted values of Config.SQLiteSynchronous
// ("" means the first, the default).
var SynchronousLevels = []string{sqlite.SynchronousFull, sqlite.SynchronousNormal}

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
	// ListenDSN is a direct connection to the same Postgres database for
	// the change feed's LISTEN and the migrations' lock (postgres only;
	// empty: DSN). Needed when DSN goes through a transaction pooler; see
	// postgres.Options.ListenDSN. Never included in errors or String with
	// its password.
	ListenDSN string
	// SQLiteSynchronous is "full" (the default when empty) or "normal"
	// (sqlite only); see sqlite.SynchronousFull and SynchronousNormal.
	SQLiteSynchronous string
	// SkipMigrations makes Open check the schema instead of migrating it
	// (sqlite and postgres): Open fails with an error wrapping
	// migrations.ErrPending if a migration is not applied. Migrations runs
	// them instead.
	SkipMigrations bool
	// GroupLanes is how many groups of concurrent writes may commit at once
	// (sqlite and postgres): 0 is the backend's default (SQLite 1, its one
	// writer; Postgres 2), negative turns group commit off, and SQLite takes
	// no other value. Outcomes are the same either way; it exists to measure.
	GroupLanes int
}

// Memory returns the configuration of an in-memory store.
func Memory() Config { return Config{Backend: BackendMemory} }

// SQLite returns the configuration of a SQLite store in the file at path.
func SQLite(path string) Config { return Config{Backend: BackendSQLite, Path: path} }

// Postgres returns the configuration of a Postgres store at dsn.
func Postgres(dsn string) Config { return Config{Backend: BackendPostgres, DSN: dsn} }

// Param names a parameter of Config in a ParamError.
type Param string

// The parameters of Config, by field name.
const (
	ParamBackend           Param = "Backend"
	ParamPath              Param = "Path"
	ParamDSN               Param = "DSN"
	ParamListenDSN         Param = "ListenDSN"
	ParamSQLiteSynchronous Param = "SQLiteSynchronous"
	ParamSkipMigrations    Param = "SkipMigrations"
	ParamGroupLanes        Param = "GroupLanes"
)

// ParamError is what Validate, FromEnv and Open return for a bad Config:
// which parameter, what is wrong with it and what it accepts. A caller that
// reads the parameters from its own flags finds it with errors.As and names
// its flag instead of the field. Problem never quotes a DSN.
type ParamError struct {
	Param   Param
	Problem string // e.g. `"etcd" is not a backend`
	Want    string // e.g. "memory, sqlite or postgres"

	name string // how the error names Param: the field or the env variable
}

func (e *ParamError) Error() string {
	name := e.name
	if name == "" {
		name = string(e.Param)
	}
	return "kvstore: " + name + ": " + e.Problem + "; want " + e.Want
}

// FromEnv reads a Config from KV_BACKEND (default sqlite), KV_PATH (default
// ./data/sms.db for sqlite), KV_DSN, KV_LISTEN_DSN and KV_SQLITE_SYNCHRONOUS through getenv
// (os.Getenv, or a map's lookup in tests; "" means unset), and validates it.
// Its errors are *ParamErrors naming the variables.
func FromEnv(getenv func(string) string) (Config, error) {
	cfg := Config{
		Backend:           strings.ToLower(strings.TrimSpace(getenv(EnvBackend))),
		Path:              getenv(EnvPath),
		DSN:               getenv(EnvDSN),
		ListenDSN:         getenv(EnvListenDSN),
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

var envNames = map[Param]string{
	ParamBackend:           EnvBackend,
	ParamPath:              EnvPath,
	ParamDSN:               EnvDSN,
	ParamListenDSN:         EnvListenDSN,
	ParamSQLiteSynchronous: EnvSQLiteSynchronous,
}

// Validate returns nil or the *ParamErrors (joined) of c: an unknown backend,
// a parameter it needs that is missing, a parameter it does not use that is
// set, or a value out of range.
func (c Config) Validate() error { return c.validate(nil) }

func (c Config) validate(names map[Param]string) error {
	var errs []error
	bad := func(p Param, problem, want string) {
		errs = append(errs, &ParamError{Param: p, Problem: problem, Want: want, name: names[p]})
	}
	backends := orList(Backends)
	switch c.Backend {
	case BackendMemory, BackendSQLite, BackendPostgres:
	case "":
		bad(ParamBackend, "empty", backends)
		return errors.Join(errs...)
	default:
		bad(ParamBackend, fmt.Sprintf("%q is not a backend", c.Backend), backends)
		return errors.Join(errs...)
	}
	unused := func(p Param, set bool, usedBy ...string) {
		if set && !slices.Contains(usedBy, c.Backend) {
			bad(p, fmt.Sprintf("set, but the %s backend does not use it", c.Backend), "it unset, or the "+orList(usedBy)+" backend")
		}
	}
	unused(ParamPath, c.Path != "", BackendSQLite)
	unused(ParamDSN, c.DSN != "", BackendPostgres)
	unused(ParamListenDSN, c.ListenDSN != "", BackendPostgres)
	unused(ParamSQLiteSynchronous, c.SQLiteSynchronous != "", BackendSQLite)
	unused(ParamSkipMigrations, c.SkipMigrations, BackendSQLite, BackendPostgres)
	unused(ParamGroupLanes, c.GroupLanes != 0, BackendSQLite, BackendPostgres)
	switch c.Backend {
	case BackendSQLite:
		if c.Path == "" {
			bad(ParamPath, "empty, and the sqlite backend needs the database file", "a file path such as "+DefaultPath)
		}
		if c.SQLiteSynchronous != "" && !slices.Contains(SynchronousLevels, c.SQLiteSynchronous) {
			bad(ParamSQLiteSynchronous, fmt.Sprintf("%q is not a level", c.SQLiteSynchronous), orList(SynchronousLevels))
		}
		if c.GroupLanes > 1 {
			bad(ParamGroupLanes, fmt.Sprintf("%d, but SQLite has one writer", c.GroupLanes), "0 (group commit) or -1 (off)")
		}
	case BackendPostgres:
		if strings.TrimSpace(c.DSN) == "" {
			bad(ParamDSN, "missing, and the postgres backend needs the connection string", "a Postgres URL such as postgres://user:pass@host:5432/sms")
		}
	}
	return errors.Join(errs...)
}

// orList spells a list of choices as "a, b or c".
func orList(choices []string) string {
	if len(choices) < 2 {
		return strings.Join(choices, "")
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// String describes c for logs, with the DSN's password redacted.
func (c Config) String() string {
	switch c.Backend {
	case BackendSQLite:
		return fmt.Sprintf("sqlite path=%s synchronous=%s", c.Path, orDefault(c.SQLiteSynchronous, sqlite.SynchronousFull))
	case BackendPostgres:
		if c.ListenDSN != "" {
			return "postgres dsn=" + postgres.RedactDSN(c.DSN) + " listen-dsn=" + postgres.RedactDSN(c.ListenDSN)
		}
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
		s, err := sqlite.Open(ctx, cfg.Path, sqlite.Options{
			Synchronous:    cfg.SQLiteSynchronous,
			SkipMigrations: cfg.SkipMigrations,
			NoGroupCommit:  cfg.GroupLanes < 0,
		})
		if err != nil {
			return nil, fmt.Errorf("kvstore: %w", err)
		}
		return s, nil
	default: // BackendPostgres, as validated
		s, err := postgres.OpenWithOptions(ctx, cfg.DSN, postgres.Options{SkipMigrations: cfg.SkipMigrations, GroupLanes: cfg.GroupLanes, ListenDSN: cfg.ListenDSN})
		if err != nil {
			return nil, fmt.Errorf("kvstore: %w", err)
		}
		return s, nil
	}
}

// MigrationDB is the database Migrations opens: close it after use.
type MigrationDB interface {
	io.Closer
	// CountKeys returns how many keys the store holds (0 before the first
	// migration created its table).
	CountKeys(ctx context.Context) (int64, error)
}

// Migrations validates cfg and opens its database for running migrations by
// hand (`sms migrate`): it returns the goose provider of the backend's
// migrations and the database to close after use. On SQLite, unless
// readOnly (for looking at the state only), it holds the file's lock until
// Close, so it fails with an error wrapping sqlite.ErrInUse while a server
// has the file open. The memory backend has no migrations: that is an
// error. Errors never contain the DSN's password.
func Migrations(ctx context.Context, cfg Config, readOnly bool) (*goose.Provider, MigrationDB, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	var (
		p   *goose.Provider
		db  MigrationDB
		err error
	)
	switch cfg.Backend {
	case BackendSQLite:
		var s *sqlite.MigrationDB
		p, s, err = sqlite.Migrations(ctx, cfg.Path, sqlite.MigrationOptions{ReadOnly: readOnly})
		db = s
	case BackendPostgres:
		var s *postgres.MigrationDB
		p, s, err = postgres.Migrations(ctx, cfg.DSN)
		db = s
	default:
		return nil, nil, fmt.Errorf("kvstore: the %s backend has no migrations", cfg.Backend)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("kvstore: %w", err)
	}
	return p, db, nil
}
