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
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/postgres"
)

// EnvPostgresDSN names the environment variable with the DSN of a Postgres
// database that tests may create schemas in, for example
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvPostgresDSN = "KV_TEST_POSTGRES_DSN"

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
		cfg = kvstore.Postgres(PostgresDSN(t))
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
	var b [8]byte
	rand.Read(b[:])
	schema := "sms_test_" + hex.EncodeToString(b[:])
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
