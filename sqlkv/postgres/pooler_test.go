package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// Behind PgBouncer in transaction mode: the default settings are refused
// with a message saying what to change, and with
// default_query_exec_mode=exec plus a direct ListenDSN the store works and
// its change feed hears writes made through the pooler.
func TestBehindPgBouncer(t *testing.T) {
	pooled, direct := storetest.PooledPostgres(t, storetest.PgBouncer(t))

	t.Run("prepared statements refused", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), pooled)
		if !errors.Is(err, postgres.ErrPreparedPooled) {
			t.Fatalf("Open through the pooler with pgx's default exec mode: %v, want ErrPreparedPooled", err)
		}
	})
	exec := pooled + "&default_query_exec_mode=exec"
	t.Run("LISTEN through the pooler refused", func(t *testing.T) {
		_, err := postgres.Open(t.Context(), exec)
		if !errors.Is(err, postgres.ErrListenPooled) {
			t.Fatalf("Open through the pooler without a ListenDSN: %v, want ErrListenPooled", err)
		}
		_, err = postgres.OpenWithOptions(t.Context(), exec, postgres.Options{ListenDSN: exec})
		if !errors.Is(err, postgres.ErrListenPooled) {
			t.Fatalf("Open with a pooled ListenDSN: %v, want ErrListenPooled", err)
		}
	})
	t.Run("works with a direct listen connection", func(t *testing.T) {
		s, err := postgres.OpenWithOptions(t.Context(), exec, postgres.Options{ListenDSN: direct})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		sub, err := s.Watch(t.Context(), []byte("k"))
		if err != nil {
			t.Fatalf("Watch: %v", err)
		}
		defer sub.Close()
		v, err := s.Put(t.Context(), []byte("k1"), []byte("v"))
		if err != nil {
			t.Fatalf("Put through the pooler: %v", err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		for {
			b, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("the change feed did not hear a write made through the pooler: %v", err)
			}
			for _, c := range b.Changes {
				if string(c.Key) == "k1" && c.Version == v {
					return
				}
			}
		}
	})
}
