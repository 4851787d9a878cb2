package metrics_test

import (
	"net/http/httptest"
	"testing"

	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The timed store is a Store like any other: it passes the conformance
// suites over every backend, as cmd/sms stacks it (the timed store over a
// watchstore for memory and SQLite, over the store itself for Postgres), the
// Watch one too when what it wraps is watchable.
func TestWrapStore(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			open := func(t *testing.T) sqlkv.Store {
				var inner sqlkv.Store = storetest.Open(t, backend)
				if _, ok := inner.(sqlkv.Watchable); !ok {
					inner = watchstore.New(inner)
				}
				s := metrics.New().WrapStore(backend, inner)
				t.Cleanup(func() { s.Close() })
				return s
			}
			t.Run("Store", func(t *testing.T) { kvtest.TestStore(t, open) })
			t.Run("Watch", func(t *testing.T) { kvtest.TestWatch(t, open) })
			t.Run("GetMany", func(t *testing.T) { kvtest.TestGetMany(t, open) })
		})
	}
}

// The timed store keeps the fast paths of what it wraps: each operation of
// package sqlkv that has one reaches the SQL store's own method through it,
// timed under the operation's name, not as the Apply or Range it would
// otherwise be derived into.
func TestWrapStoreKeepsFastPaths(t *testing.T) {
	m := metrics.New()
	s := m.WrapStore("sqlite", storetest.Open(t, "sqlite"))
	ctx := t.Context()
	k := []byte("k")
	for name, call := range map[string]func() error{
		"put":           func() error { _, err := sqlkv.PutValue(ctx, s, k, k); return err },
		"count":         func() error { _, err := sqlkv.Count(ctx, s, nil); return err },
		"get_many":      func() error { _, err := sqlkv.GetMany(ctx, s, k, k); return err },
		"batch_put":     func() error { return sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: k}}) },
		"batch_delete":  func() error { _, err := sqlkv.BatchDelete(ctx, s, [][]byte{k}); return err },
		"delete_prefix": func() error { _, err := sqlkv.DeletePrefix(ctx, s, k); return err },
	} {
		if err := call(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	families := scrape(t, srv.URL)
	for op, want := range map[string]float64{
		"put": 1, "count": 1, "get_many": 1, "batch_put": 1, "batch_delete": 1, "delete_prefix": 1,
		"apply": 0, "range": 0, "get": 0,
	} {
		got, _ := value(families, "sms_store_operation_duration_seconds", map[string]string{"backend": "sqlite", "operation": op})
		if got != want {
			t.Errorf("operation %q timed %v times, want %v", op, got, want)
		}
	}
}
