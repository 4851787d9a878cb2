package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

func open(t testing.TB, path string, opts sqlite.Options) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) sqlkv.Store {
		return open(t, filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{})
	})
}

func TestReopen(t *testing.T) {
	kvtest.TestReopen(t, func(t *testing.T) (sqlkv.Store, func(t *testing.T) sqlkv.Store) {
		path := filepath.Join(t.TempDir(), "kv.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s, func(t *testing.T) sqlkv.Store {
			s.Close() // ErrClosed if the suite closed it already
			return open(t, path, sqlite.Options{})
		}
	})
}

func TestOpenCreatesParentDirectories(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b c", "odd?#%name.db")
	s := open(t, path, sqlite.Options{})
	if _, err := s.Put(t.Context(), []byte("k"), []byte("v")); err != nil {
		t.Fatalf("Put: %v", err)
	}
	s.Close()
	s = open(t, path, sqlite.Options{})
	if e, err := s.Get(t.Context(), []byte("k")); err != nil || string(e.Value) != "v" {
		t.Fatalf("Get after reopen = %q, %v; want \"v\"", e.Value, err)
	}
}

func TestOpenRejects(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, path, sync, want string
	}{
		{"empty path", "", "", "want a file path"},
		{"memory", ":memory:", "", "want a file path"},
		{"uri", "file:x.db", "", "want a file path"},
		{"unknown synchronous", filepath.Join(dir, "x.db"), "off", `want "full" or "normal"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tt.path, sqlite.Options{Synchronous: tt.sync})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q, %q) succeeded, want an error", tt.path, tt.sync)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Open(%q, %q) = %v, want it to say %q", tt.path, tt.sync, err, tt.want)
			}
		})
	}
}

func TestOpenUnavailable(t *testing.T) {
	// A directory where the file should be cannot be opened as a database.
	path := t.TempDir()
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err == nil {
		s.Close()
		t.Fatalf("Open(directory) succeeded")
	}
	if !errors.Is(err, sqlkv.ErrUnavailable) {
		t.Fatalf("Open(directory) = %v, want ErrUnavailable", err)
	}
}

func TestPragmas(t *testing.T) {
	for _, tt := range []struct {
		sync string
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"", 2}, {"full", 2}, {"FULL", 2}, {"normal", 1},
	} {
		t.Run("synchronous="+tt.sync, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{Synchronous: tt.sync})
			for _, db := range []struct {
				name string
				q    func(string) string
			}{{"writer", s.WriterPragma}, {"reader", s.ReaderPragma}} {
				check := func(pragma, want string) {
					t.Helper()
					if got := db.q(pragma); got != want {
						t.Errorf("%s: PRAGMA %s = %s, want %s", db.name, pragma, got, want)
					}
				}
				check("journal_mode", "wal")
				check("synchronous", fmt.Sprint(tt.want))
				check("busy_timeout", "10000")
			}
			if got, want := s.WriterPragma("query_only"), "0"; got != want {
				t.Errorf("writer: PRAGMA query_only = %s, want %s", got, want)
			}
			if got, want := s.ReaderPragma("query_only"), "1"; got != want {
				t.Errorf("reader: PRAGMA query_only = %s, want %s", got, want)
			}
		})
	}
}

// TestConcurrentWriters runs 64 writers mixing Put, Apply and BatchPut, with
// readers, for a few seconds: no call may fail, in particular not with
// "database is locked".
func TestConcurrentWriters(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{Synchronous: sqlite.SynchronousNormal})
	duration := 3 * time.Second
	if testing.Short() {
		duration = 500 * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(t.Context(), duration)
	defer cancel()

	const writers = 64
	var wg sync.WaitGroup
	errs := make(chan error, writers+4)
	ops := make([]int, writers)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				key := fmt.Appendf(nil, "w/%02d/%d", w, i%50)
				shared := fmt.Appendf(nil, "shared/%d", i%8)
				var err error
				switch i % 3 {
				case 0:
					_, err = s.Put(ctx, key, key)
				case 1:
					_, err = s.Apply(ctx, sqlkv.Put(key, key), sqlkv.Put(shared, key), sqlkv.Check(key, sqlkv.IfExists()))
				case 2:
					err = s.BatchPut(ctx, []sqlkv.Entry{{Key: key, Value: key}, {Key: shared, Value: key}})
				}
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("writer %d op %d: %w", w, i, err)
					return
				}
				ops[w]++
			}
		})
	}
	for r := range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if _, err := sqlkv.Scan(ctx, s, []byte("shared/")); err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("reader %d: %w", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	total := 0
	for _, n := range ops {
		if n == 0 {
			t.Errorf("a writer never got to write")
		}
		total += n
	}
	t.Logf("%d writes in %v", total, duration)
}

// TestAnotherWriterOnTheFile writes through the store while another
// connection (a sqlite3 shell, a backup tool: a second store is refused by
// the file lock) writes to the same file: busy_timeout and BEGIN IMMEDIATE
// make them wait for each other instead of failing.
func TestAnotherWriterOnTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	a := open(t, path, sqlite.Options{})
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Exec(`CREATE TABLE other (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Go(func() {
		for i := range 200 {
			key := fmt.Appendf(nil, "%d", i)
			var err error
			if i%2 == 0 {
				_, err = a.Apply(t.Context(), sqlkv.Put(key, nil).If(sqlkv.IfNotExists()), sqlkv.Put([]byte("shared"), key))
			} else {
				_, err = a.Put(t.Context(), key, key)
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Go(func() {
		for i := range 200 {
			tx, err := other.BeginTx(t.Context(), nil)
			if err == nil {
				if _, err = tx.Exec(`INSERT INTO other (n) VALUES (?)`, i); err == nil {
					err = tx.Commit()
				} else {
					tx.Rollback()
				}
			}
			if err != nil {
				errs <- err
				return
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n, err := a.Count(t.Context(), nil); err != nil || n != 201 {
		t.Fatalf("Count = %d, %v; want 201", n, err)
	}
}

func BenchmarkStore(b *testing.B) {
	for _, sync := range []string{sqlite.SynchronousNormal, sqlite.SynchronousFull} {
		b.Run("sync="+sync, func(b *testing.B) {
			kvtest.BenchmarkStore(b, func(b *testing.B) sqlkv.Store {
				return open(b, filepath.Join(b.TempDir(), "kv.db"), sqlite.Options{Synchronous: sync})
			})
		})
	}
}

// BenchmarkConcurrent compares group commit on and off, at both synchronous
// levels; BenchmarkRawSQL's Par16 benchmarks are the baseline.
func BenchmarkConcurrent(b *testing.B) {
	for _, sync := range []string{sqlite.SynchronousNormal, sqlite.SynchronousFull} {
		for _, group := range []bool{true, false} {
			b.Run(fmt.Sprintf("sync=%s/group=%v", sync, group), func(b *testing.B) {
				kvtest.BenchmarkConcurrent(b, func(b *testing.B) sqlkv.Store {
					return open(b, filepath.Join(b.TempDir(), "kv.db"), sqlite.Options{Synchronous: sync, NoGroupCommit: !group})
				})
			})
		}
	}
}

// TestGroupCommitRollsBackOnlyTheFailedRequest runs concurrent Applys that
// the committer gathers into groups; half of them write a key and then fail
// a condition. Each failed one must leave nothing behind and every other
// must be fully written, whatever group it shared.
func TestGroupCommitRollsBackOnlyTheFailedRequest(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{Synchronous: sqlite.SynchronousFull})
	ctx := t.Context()
	if _, err := s.Put(ctx, []byte("taken"), []byte("x")); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			guard := fmt.Appendf(nil, "free/%d", i)
			if i%2 == 1 {
				guard = []byte("taken") // exists: the condition fails after the first put
			}
			_, errs[i] = s.Apply(ctx,
				sqlkv.Put(fmt.Appendf(nil, "k/%03d", i), []byte("v")),
				sqlkv.Put(guard, []byte("g")).If(sqlkv.IfNotExists()))
		})
	}
	wg.Wait()
	for i, err := range errs {
		_, getErr := s.Get(ctx, fmt.Appendf(nil, "k/%03d", i))
		if i%2 == 1 {
			if !errors.Is(err, sqlkv.ErrConflict) {
				t.Errorf("Apply %d = %v, want ErrConflict", i, err)
			}
			if !errors.Is(getErr, sqlkv.ErrNotFound) {
				t.Errorf("Get(k/%03d) after a failed Apply = %v, want ErrNotFound", i, getErr)
			}
			continue
		}
		if err != nil || getErr != nil {
			t.Errorf("Apply %d = %v, then Get = %v; want both nil", i, err, getErr)
		}
	}
}

func TestGetMany(t *testing.T) {
	kvtest.TestGetMany(t, func(t *testing.T) sqlkv.Store {
		return open(t, filepath.Join(t.TempDir(), "kv.db"), sqlite.Options{})
	})
}

// Writers queued behind a database that does not answer (another process
// holds the write lock) give up at their own deadline: group commit must not
// make a caller wait past it.
func TestWritesEndAtTheirDeadlineWhenTheDatabaseIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s := open(t, path, sqlite.Options{})

	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatalf("open second connection: %v", err)
	}
	defer other.Close()
	lock, err := other.Conn(t.Context())
	if err != nil {
		t.Fatalf("conn: %v", err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	defer lock.ExecContext(context.Background(), "ROLLBACK")

	const writers = 16
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			_, err := s.Put(ctx, fmt.Appendf(nil, "k%d", i), []byte("v"))
			errs <- err
		}()
	}
	// Far beyond the callers' deadlines but short of the 10 s busy timeout:
	// a writer still waiting then was held past its deadline.
	giveUp := time.After(5 * time.Second)
	for range writers {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("Put succeeded while another connection held the write lock")
			}
		case <-giveUp:
			t.Fatal("writers still waiting 5 s after their 300 ms deadline")
		}
	}
}

func TestOpenRefusesAFileInUse(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sms.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to an open file, so a second Open in the same
	// process conflicts like one in another process would.
	if _, err := sqlite.Open(ctx, path, sqlite.Options{}); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("second Open = %v, want ErrInUse", err)
	} else if want := fmt.Sprintf("in use by process %d", os.Getpid()); !strings.Contains(err.Error(), want) {
		t.Errorf("second Open = %v, want it to say %q", err, want)
	}
	if _, _, err := sqlite.Migrations(ctx, path, sqlite.MigrationOptions{}); !errors.Is(err, sqlite.ErrInUse) {
		t.Errorf("Migrations next to an open store = %v, want ErrInUse", err)
	}
	_, db, err := sqlite.Migrations(ctx, path, sqlite.MigrationOptions{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Migrations next to an open store: %v", err)
	}
	db.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close()
}

func TestBackupOfAnOpenStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "live.db"), sqlite.Options{})
	for i := range 100 {
		if _, err := s.Put(ctx, fmt.Appendf(nil, "k%03d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	dest := filepath.Join(dir, "copy.db")
	if err := sqlite.Backup(ctx, filepath.Join(dir, "live.db"), dest); err != nil {
		t.Fatalf("Backup of an open store: %v", err)
	}
	if err := sqlite.Backup(ctx, filepath.Join(dir, "live.db"), dest); !errors.Is(err, os.ErrExist) {
		t.Errorf("Backup onto an existing file = %v, want os.ErrExist", err)
	}
	c := open(t, dest, sqlite.Options{SkipMigrations: true})
	if n, err := c.Count(ctx, nil); err != nil || n != 100 {
		t.Errorf("copy holds %d keys (%v), want 100", n, err)
	}
}
