package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/storetest"
)

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the conformance suite; with KV_TEST_POSTGRES_POOLED_DSN
// set (as .ci/run does once) it runs through PgBouncer in transaction mode.
func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) sqlkv.Store { return openFresh(t) })
}

// openFresh opens a store on a fresh database (storetest.Postgres: through
// the pooler when KV_TEST_POSTGRES_POOLED_DSN is set), closed when tb ends.
func openFresh(tb testing.TB) *postgres.Store {
	tb.Helper()
	dsn, listen := storetest.Postgres(tb)
	s, err := postgres.OpenWithOptions(tb.Context(), dsn, postgres.Options{ListenDSN: listen})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestReopen(t *testing.T) {
	kvtest.TestReopen(t, func(t *testing.T) (sqlkv.Store, func(t *testing.T) sqlkv.Store) {
		dsn := storetest.PostgresDSN(t)
		s, err := postgres.Open(t.Context(), dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s, func(t *testing.T) sqlkv.Store {
			s.Close() // ErrClosed if the suite closed it already
			return open(t, dsn)
		}
	})
}

// sqlDB opens a plain connection pool on dsn, for looking behind the store.
func sqlDB(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestConcurrentOpen starts four stores on one fresh schema at once, as
// replicas starting together would: all open, and the migration is applied
// once.
func TestConcurrentOpen(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			s, err := postgres.Open(t.Context(), dsn)
			if err != nil {
				errs <- err
				return
			}
			errs <- s.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("Open: %v", err)
		}
	}
	var applied int
	if err := sqlDB(t, dsn).QueryRowContext(t.Context(),
		"SELECT count(*) FROM goose_db_version WHERE version_id = 1").Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if got, want := applied, 1; got != want {
		t.Fatalf("migration 1 recorded %d times, want %d", got, want)
	}
}

func TestOpenUnreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	const password = "s3cret-pw"
	for _, dsn := range []string{
		"postgres://sms:" + password + "@127.0.0.1:1/sms?sslmode=disable&connect_timeout=5",
		"host=127.0.0.1 port=1 user=sms password=" + password + " dbname=sms sslmode=disable connect_timeout=5",
	} {
		s, err := postgres.Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(closed port) succeeded")
		}
		if !errors.Is(err, sqlkv.ErrUnavailable) {
			t.Errorf("Open(closed port) = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("Open error contains the password: %v", err)
		}
	}
}

func TestOpenMalformedDSN(t *testing.T) {
	const password = "s3cret-pw"
	_, err := postgres.Open(t.Context(), "postgres://sms:"+password+"@127.0.0.1:notaport/sms")
	if err == nil {
		t.Fatal("Open(malformed) succeeded")
	}
	if strings.Contains(err.Error(), password) {
		t.Fatalf("Open error contains the password: %v", err)
	}
}

// TestTerminatedConnections kills the store's server connections from the
// side: each call then either succeeds on a fresh connection or fails with
// ErrUnavailable, never with a raw driver error, and the store recovers.
func TestTerminatedConnections(t *testing.T) {
	// application_name marks this store's connections, so that only they
	// are killed, not those of tests running in parallel.
	dsn := storetest.PostgresDSN(t)
	admin := sqlDB(t, dsn)
	dsn += "&application_name=sms_terminate_test"
	s := open(t, dsn)
	ctx := t.Context()

	unavailable := 0
	check := func(what string, err error) {
		t.Helper()
		switch {
		case err == nil:
		case errors.Is(err, sqlkv.ErrUnavailable):
			unavailable++
		default:
			t.Errorf("%s: %v, want nil or ErrUnavailable", what, err)
		}
	}
	for round := range 3 {
		// Fill the pool with busy connections, then kill them all.
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range 8 {
			wg.Go(func() {
				_, err := s.Put(ctx, fmt.Appendf(nil, "k%d", i), nil)
				mu.Lock()
				defer mu.Unlock()
				check(fmt.Sprintf("round %d: Put", round), err)
			})
		}
		wg.Wait()
		var killed int
		if err := admin.QueryRowContext(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = 'sms_terminate_test'`).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed == 0 {
			t.Fatalf("round %d: no connection of the store found to terminate", round)
		}
		for i := range 8 {
			wg.Go(func() {
				_, err := s.Get(ctx, fmt.Appendf(nil, "k%d", i))
				mu.Lock()
				defer mu.Unlock()
				check(fmt.Sprintf("round %d: Get after kill", round), err)
			})
		}
		wg.Wait()
	}
	if unavailable == 0 {
		t.Errorf("no call saw ErrUnavailable after its connection was terminated")
	}
	if _, err := s.Put(ctx, []byte("after"), nil); err != nil {
		t.Fatalf("Put after recovery: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after recovery: %v", err)
	}
}

// BenchmarkStore measures the store; with KV_TEST_POSTGRES_POOLED_DSN set,
// through PgBouncer (RELIABILITY.md compares the two).
func BenchmarkStore(b *testing.B) {
	kvtest.BenchmarkStore(b, func(b *testing.B) sqlkv.Store { return openFresh(b) })
}

// TestNoWriteSkew runs pairs of Applys that each require the other's key to
// be absent and then create their own: at most one of a pair may succeed,
// as if they ran one after the other.
func TestNoWriteSkew(t *testing.T) {
	s := open(t, storetest.PostgresDSN(t))
	ctx := t.Context()
	for i := range 200 {
		x, y := fmt.Appendf(nil, "x%d", i), fmt.Appendf(nil, "y%d", i)
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for n, keys := range [][2][]byte{{x, y}, {y, x}} {
			wg.Go(func() {
				<-start
				_, errs[n] = s.Apply(ctx, sqlkv.Check(keys[0], sqlkv.IfNotExists()), sqlkv.Put(keys[1], nil))
			})
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil && !errors.Is(err, sqlkv.ErrConflict) {
				t.Fatalf("pair %d: Apply: %v", i, err)
			}
		}
		if errs[0] == nil && errs[1] == nil {
			t.Fatalf("pair %d: both Applys succeeded although each required the key the other created", i)
		}
	}
}

// TestBatchPutLargerThanOneStatement writes a batch too big for one PutMany
// statement: it is split, and still all-or-nothing.
func TestBatchPutLargerThanOneStatement(t *testing.T) {
	s := open(t, storetest.PostgresDSN(t))
	ctx := t.Context()
	big := make([]byte, 20<<20)
	var entries []sqlkv.Entry
	for i := range 4 { // 80 MiB
		entries = append(entries, sqlkv.Entry{Key: fmt.Appendf(nil, "big/%d", i), Value: big})
	}
	if err := s.BatchPut(ctx, entries); err != nil {
		t.Fatalf("BatchPut: %v", err)
	}
	if n, err := s.Count(ctx, []byte("big/")); err != nil || n != 4 {
		t.Fatalf("Count = %d, %v; want 4", n, err)
	}

	// A batch whose last statement fails leaves nothing behind.
	entries = append(entries[:0],
		sqlkv.Entry{Key: []byte("new/0"), Value: big},
		sqlkv.Entry{Key: []byte("new/1"), Value: big},
		sqlkv.Entry{Key: []byte("new/2"), Value: big},
		sqlkv.Entry{Key: []byte("new/3"), Value: big},
	)
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		// Cancel while the batch is in flight.
		<-time.After(50 * time.Millisecond)
		cancel()
	}()
	if err := s.BatchPut(cctx, entries); err == nil {
		t.Skip("the batch finished before it could be cancelled")
	}
	if n, err := s.Count(ctx, []byte("new/")); err != nil || n != 0 {
		t.Fatalf("Count after a failed batch = %d, %v; want 0", n, err)
	}
}

// BenchmarkConcurrent compares group commit lanes (off = -1);
// BenchmarkRawSQL's Par16 benchmarks are the baseline.
func BenchmarkConcurrent(b *testing.B) {
	for _, lanes := range []int{-1, 1, 2, 4} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			kvtest.BenchmarkConcurrent(b, func(b *testing.B) sqlkv.Store {
				s, err := postgres.OpenWithOptions(b.Context(), storetest.PostgresDSN(b), postgres.Options{GroupLanes: lanes})
				if err != nil {
					b.Fatalf("Open: %v", err)
				}
				b.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}

func TestGetMany(t *testing.T) {
	kvtest.TestGetMany(t, func(t *testing.T) sqlkv.Store {
		return open(t, storetest.PostgresDSN(t))
	})
}

func TestOpenNamesAMissingSchema(t *testing.T) {
	u, err := url.Parse(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	absent := q.Get("search_path") + "_absent"
	q.Set("search_path", absent)
	u.RawQuery = q.Encode()
	_, err = postgres.Open(t.Context(), u.String())
	if want := "CREATE SCHEMA " + absent; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), `search_path "`+absent+`"`) {
		t.Errorf("Open with search_path=%s = %v, want it named with %q", absent, err, want)
	}
}
