package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// A full disk: writes fail with ErrStorageFull saying the disk is full,
// reads keep working, the store reports itself degraded, nothing
// acknowledged is lost, the file passes integrity_check, and once space is
// freed writes succeed again without reopening the store. Once with the
// database capped by max_page_count, once on a small tmpfs where the
// machine lets the test mount one.
func TestDiskFull(t *testing.T) {
	t.Run("max_page_count", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "kv.db")
		s := open(t, path, sqlite.Options{MaxPages: 256}) // 1 MiB
		testDiskFull(t, s, path, func(acked []string) []string {
			// Deleting keys frees pages that new writes reuse.
			for _, k := range acked[:len(acked)/2] {
				if _, err := sqlkv.DeleteKey(t.Context(), s, []byte(k)); err != nil {
					t.Fatalf("Delete(%q) on a full database: %v", k, err)
				}
			}
			return acked[len(acked)/2:]
		})
	})
	t.Run("tmpfs", func(t *testing.T) {
		dir := t.TempDir()
		out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", dir).CombinedOutput()
		if err != nil {
			t.Skipf("cannot mount a tmpfs here (needs root and mount rights; the max_page_count case covers the same code): %v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
		filler := filepath.Join(dir, "filler")
		if err := os.WriteFile(filler, make([]byte, 512<<10), 0o644); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "kv.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		testDiskFull(t, s, path, func(acked []string) []string {
			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			return acked
		})
	})
}

// testDiskFull fills s, checks the full store, calls free (which returns
// the acknowledged keys still meant to exist), and checks the recovery.
func testDiskFull(t *testing.T, s *sqlite.Store, path string, free func(acked []string) []string) {
	value := func(k string) []byte { return bytes.Repeat([]byte(k), 8<<10/len(k)) }
	var acked []string
	var full error
	for i := 0; full == nil; i++ {
		if i > 10_000 {
			t.Fatal("wrote 80 MiB without the disk filling up")
		}
		k := fmt.Sprintf("key-%05d", i)
		if _, err := s.Put(t.Context(), []byte(k), value(k)); err != nil {
			full = err
			break
		}
		acked = append(acked, k)
	}
	if !errors.Is(full, sqlkv.ErrStorageFull) || !strings.Contains(full.Error(), "disk") || !strings.Contains(full.Error(), "full") {
		t.Fatalf("Put on a full disk: %v, want ErrStorageFull saying the disk is full", full)
	}
	if err := s.Degraded(); !errors.Is(err, sqlkv.ErrStorageFull) {
		t.Errorf("Degraded() with the disk full = %v, want ErrStorageFull", err)
	}
	// A multi-key write fails the same way and leaves nothing behind.
	_, err := s.Apply(t.Context(), sqlkv.Put([]byte("multi-1"), value("multi-1")), sqlkv.Put([]byte("multi-2"), value("multi-2")))
	if !errors.Is(err, sqlkv.ErrStorageFull) {
		t.Fatalf("Apply on a full disk: %v, want ErrStorageFull", err)
	}
	// Reads keep working.
	if n, err := s.Count(t.Context(), []byte("key-")); err != nil || n != int64(len(acked)) {
		t.Fatalf("Count on a full disk = %d, %v; want %d acknowledged keys", n, err, len(acked))
	}
	if _, err := s.Get(t.Context(), []byte(acked[0])); err != nil {
		t.Fatalf("Get on a full disk: %v", err)
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping on a full disk: %v (reads work: the store is degraded, not down)", err)
	}
	t.Logf("measured: full after %d acknowledged 8 KiB writes", len(acked))

	acked = free(acked)
	if _, err := s.Put(t.Context(), []byte("after"), value("after")); err != nil {
		t.Fatalf("Put after freeing space: %v, want success without reopening", err)
	}
	if err := s.Degraded(); err != nil {
		t.Errorf("Degraded() after a successful write = %v, want nil", err)
	}
	for _, k := range []string{"multi-1", "multi-2"} {
		if ok, _ := sqlkv.Exists(t.Context(), s, []byte(k)); ok {
			t.Errorf("%s exists: the failed Apply was half applied", k)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Reopened: every acknowledged write that was not deleted is there,
	// and the file is intact.
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRowContext(t.Context(), "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v; want ok", check, err)
	}
	s2 := open(t, path, sqlite.Options{})
	for _, k := range append(acked, "after") {
		e, err := s2.Get(t.Context(), []byte(k))
		if err != nil || !bytes.Equal(e.Value, value(k)) {
			t.Fatalf("acknowledged %s after reopening: %v (value ok: %v)", k, err, err == nil && bytes.Equal(e.Value, value(k)))
		}
	}
}
