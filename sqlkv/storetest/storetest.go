// Package storetest opens sqlkv stores for tests: every backend by name, and
// a fresh Postgres schema per test. Tests of code above sqlkv (registries,
// service) use it to run against each backend:
//
//	for _, backend := range storetest.Backends {
//		t.Run(backend, func(t *testing.T) {
//			s := storetest.Open(t, backend)
//			...
//		})
//	}
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// EnvPostgresDSN names the environment variable with the DSN of a Postgres
// database that tests may create schemas in, for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgresDSN = "KV_TEST_POSTGRES_DSN"

// EnvPostgresPooledDSN names the environment variable that makes Open's
// Postgres stores go through a transaction pooler: the URL of a PgBouncer
// in front of KV_TEST_POSTGRES_DSN's server that maps every database name
// to the same database there (.ci/pgbouncer starts one), for example
// postgres://postgres@127.0.0.1:5445/?sslmode=disable&default_query_exec_mode=exec.
// A pooler forwards no search_path, so each test then gets a database of
// its own instead of a schema, and its store LISTENs on a direct
// connection (ListenDSN).
const EnvPostgresPooledDSN = "KV_TEST_POSTGRES_POOLED_DSN"

// Backends names every backend, in the order tests should run them.
var Backends = kvstore.Backends

// Open opens a new, empty store of backend ("memory", "sqlite" or
// "postgres") for t and closes it when t ends: SQLite in a file under
// t.TempDir(), Postgres in a fresh schema (see PostgresDSN, which may skip t).
func Open(t testing.TB, backend string) sqlkv.Store {
	t.Helper()
	var cfg kvstore.Config
	switch backend {
	case kvstore.BackendMemory:
		cfg = kvstore.Memory()
	case kvstore.BackendSQLite:
		cfg = kvstore.SQLite(filepath.Join(t.TempDir(), "sms.db"))
	case kvstore.BackendPostgres:
		cfg = kvstore.Postgres("")
		cfg.DSN, cfg.ListenDSN = Postgres(t)
	default:
		t.Fatalf("storetest.Open: unknown backend %q, want one of %v", backend, Backends)
	}
	s, err := kvstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("storetest.Open(%s): %v", backend, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// Replicas opens two stores on one new, empty database of backend, as two
// SMS replicas see it: on Postgres two stores (two connection pools, two
// change feeds) on one schema; on memory and SQLite one store made
// watchable in process (watchstore, as cmd/sms opens them), returned twice,
// since one process owns such a database.
func Replicas(t testing.TB, backend string) (a, b sqlkv.Store) {
	t.Helper()
	if backend != kvstore.BackendPostgres {
		s := sqlkv.Store(watchstore.New(Open(t, backend)))
		return s, s
	}
	dsn := PostgresDSN(t)
	open := func() sqlkv.Store {
		s, err := kvstore.Open(t.Context(), kvstore.Postgres(dsn))
		if err != nil {
			t.Fatalf("storetest.Replicas: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	return open(), open()
}

// Postgres returns the DSNs of a fresh, empty Postgres database for t: the
// one to open a store with, and the direct one for its ListenDSN (empty when
// they are the same). Without KV_TEST_POSTGRES_POOLED_DSN it is
// PostgresDSN's schema; with it, a database of its own reached through the
// pooler, dropped when t ends.
func Postgres(t testing.TB) (dsn, listenDSN string) {
	t.Helper()
	pooled := os.Getenv(EnvPostgresPooledDSN)
	if pooled == "" {
		return PostgresDSN(t), ""
	}
	return PooledPostgres(t, pooled)
}

// EnvPgBouncerDSN names the environment variable with the URL of a PgBouncer
// in transaction pooling mode as EnvPostgresPooledDSN describes, without
// query parameters, for the tests of SMS behind a pooler (.ci/pgbouncer
// starts one on 127.0.0.1:5445).
const EnvPgBouncerDSN = "SMS_TEST_PGBOUNCER_DSN"

// PgBouncer returns EnvPgBouncerDSN, or skips t (fails it under CI=true).
func PgBouncer(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(EnvPgBouncerDSN)
	if dsn == "" {
		const msg = EnvPgBouncerDSN + " is not set; set it to a PgBouncer in transaction mode in front of " + EnvPostgresDSN + "'s server (.ci/pgbouncer starts one: postgres://postgres@127.0.0.1:5445/?sslmode=disable)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return dsn
}

// PooledPostgres creates a database of its own for t, dropped when t ends,
// and returns its URL through the pooler at pooled and its direct URL (on
// KV_TEST_POSTGRES_DSN's server).
func PooledPostgres(t testing.TB, pooled string) (dsn, direct string) {
	t.Helper()
	direct = PostgresDSN(t) // skips t as PostgresDSN does; the schema goes unused
	name := uniqueName()
	quoted := pgx.Identifier{name}.Sanitize()
	exec := func(sql string) {
		t.Helper()
		cfg, err := pgx.ParseConfig(os.Getenv(EnvPostgresDSN))
		if err != nil {
			t.Fatalf("%s: cannot parse it", EnvPostgresDSN)
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec("CREATE DATABASE " + quoted)
	t.Cleanup(func() { exec("DROP DATABASE " + quoted + " WITH (FORCE)") })
	return withDatabase(t, pooled, name), withDatabase(t, direct, name)
}

// withDatabase returns the URL dsn naming database name, without a
// search_path.
func withDatabase(t testing.TB, dsn, name string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s or %s is not a URL", EnvPostgresDSN, EnvPostgresPooledDSN)
	}
	u.Path = "/" + name
	q := u.Query()
	q.Del("search_path")
	u.RawQuery = q.Encode()
	return u.String()
}

func uniqueName() string {
	var b [8]byte
	rand.Read(b[:])
	return "sms_test_" + hex.EncodeToString(b[:])
}

// PostgresDSN creates a schema with a unique name in the database named by
// KV_TEST_POSTGRES_DSN and returns a DSN whose search_path is that schema, so
// that a store opened with it sees only its own tables. The schema is dropped
// when t ends. Without KV_TEST_POSTGRES_DSN it skips t, or fails it when
// CI=true, where a skipped Postgres test would hide a broken setup.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvPostgresDSN)
	if base == "" {
		const msg = EnvPostgresDSN + " is not set; set it to a Postgres database tests may create schemas in, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cfg, err := pgx.ParseConfig(base)
	if err != nil {
		t.Fatalf("%s: cannot parse it", EnvPostgresDSN)
	}
	schema := uniqueName()
	quoted := pgx.Identifier{schema}.Sanitize()

	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+quoted); err != nil {
		t.Fatalf("create schema %s in %s: %v", schema, EnvPostgresDSN, err)
	}
	t.Cleanup(func() {
		// t.Context() is done by now.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		if _, err := db.ExecContext(ctx, "DROP SCHEMA "+quoted+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return postgres.WithSearchPath(base, schema)
}
