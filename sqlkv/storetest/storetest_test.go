package storetest_test

import (
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

func TestOpenEveryBackendIsEmptyAndIsolated(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			a, b := storetest.Open(t, backend), storetest.Open(t, backend)
			if _, err := sqlkv.PutValue(t.Context(), a, []byte("k"), []byte("v")); err != nil {
				t.Fatalf("Put: %v", err)
			}
			if n, err := sqlkv.Count(t.Context(), b, nil); err != nil || n != 0 {
				t.Fatalf("Count of the second store = %d, %v; want 0: stores share data", n, err)
			}
		})
	}
}

// TestPostgresDSNSchemaLifecycle checks that the schema exists while the
// test runs, is the DSN's search_path, and is dropped afterwards.
func TestPostgresDSNSchemaLifecycle(t *testing.T) {
	var schema string
	t.Run("use", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		schema = u.Query().Get("search_path")
		if got := schemaExists(t, os.Getenv(storetest.EnvPostgresDSN), schema); !got {
			t.Fatalf("schema %q does not exist during the test", schema)
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		var current string
		if err := db.QueryRowContext(t.Context(), "SELECT current_schema()").Scan(&current); err != nil {
			t.Fatal(err)
		}
		if current != schema {
			t.Fatalf("current_schema() = %q, want %q", current, schema)
		}
	})
	if schema == "" {
		t.Skip("no Postgres")
	}
	if schemaExists(t, os.Getenv(storetest.EnvPostgresDSN), schema) {
		t.Fatalf("schema %q still exists after its test", schema)
	}
}

func schemaExists(t *testing.T, dsn, schema string) bool {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	var n int
	if err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
