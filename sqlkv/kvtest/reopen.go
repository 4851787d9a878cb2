package kvtest

import (
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// TestReopen checks data survives Close and reopen (persistent backends).
// open returns an empty store and a function that closes it (if still open)
// and opens the same database again; that function must register the new
// store's Close with t.Cleanup.
func TestReopen(t *testing.T, open func(t *testing.T) (sqlkv.Store, func(t *testing.T) sqlkv.Store)) {
	s, reopen := open(t)
	ctx := t.Context()

	fill(t, s, oddStrings...)
	fill(t, s, "", strings.Repeat("k", sqlkv.MaxKeySize))
	put(t, s, "empty", "")
	put(t, s, "overwritten", "old")
	put(t, s, "overwritten", "new")
	put(t, s, "deleted", "gone")
	if _, err := sqlkv.DeleteKey(ctx, s, []byte("deleted")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	apply(t, s, sqlkv.Put([]byte("applied"), []byte("a")).If(sqlkv.IfNotExists()))
	last := put(t, s, "last", "l")

	before, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = reopen(t)
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopen: %v", err)
	}
	after, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan after reopen: %v", err)
	}
	wantKeys(t, "keys after reopen", entryKeys(after), entryKeys(before))
	for i, e := range after {
		if got, want := string(e.Value), string(before[i].Value); got != want {
			t.Fatalf("value of %q after reopen = %q, want %q", e.Key, got, want)
		}
		if got, want := e.Version, before[i].Version; got != want {
			t.Fatalf("version of %q after reopen = %d, want %d", e.Key, got, want)
		}
	}
	wantMissing(t, s, "deleted")
	wantValue(t, s, "overwritten", "new")

	// The version counter survives too: versions never repeat.
	if v := put(t, s, "deleted", "back"); v <= last {
		t.Fatalf("first Put after reopen: version %d, want > %d from before", v, last)
	}
}
