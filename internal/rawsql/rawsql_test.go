package rawsql_test

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/spear-next/sms/internal/rawsql"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// Each SQL backend registers its stores' baseline, which runs their own
// statements on their own database: what it writes the store reads.
func TestOfFindsTheSQLStores(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			s := storetest.Open(t, backend)
			b := rawsql.Of(s)
			if b == nil {
				t.Fatalf("rawsql.Of(%T) = nil, want the store's baseline", s)
			}
			ctx := t.Context()
			if err := b.Put(ctx, []byte("k1"), []byte("v")); err != nil {
				t.Fatal(err)
			}
			if err := b.Put(ctx, []byte("k2"), nil); err != nil {
				t.Fatal(err)
			}
			if e, err := s.Get(ctx, []byte("k1")); err != nil || string(e.Value) != "v" {
				t.Fatalf("the store reads %q, %v after the baseline's Put; want %q", e.Value, err, "v")
			}
			if err := b.Get(ctx, []byte("k2")); err != nil {
				t.Fatalf("baseline Get of a key it wrote: %v", err)
			}
			if err := b.Get(ctx, []byte("missing")); !errors.Is(err, sql.ErrNoRows) {
				t.Fatalf("baseline Get of a missing key = %v, want sql.ErrNoRows", err)
			}
			if n, err := b.Range(ctx, []byte("k"), []byte("l"), 0); err != nil || n != 2 {
				t.Fatalf("baseline Range = %d, %v; want 2", n, err)
			}
		})
	}
}

// Stores without SQL, and wrappers (which may add work the baseline must
// not skip), have none.
func TestOfOthersIsNil(t *testing.T) {
	for name, s := range map[string]sqlkv.Store{
		"memory":            storetest.Open(t, "memory"),
		"watchstore/sqlite": watchstore.New(storetest.Open(t, "sqlite")),
	} {
		if b := rawsql.Of(s); b != nil {
			t.Errorf("rawsql.Of(%s) = %v, want nil", name, b)
		}
	}
}
