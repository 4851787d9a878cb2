package kvtest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

func testGetPutDeleteExists(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping of an open store: %v", err)
	}
	wantMissing(t, s, "k")
	if ok, err := sqlkv.Exists(ctx, s, []byte("k")); err != nil || ok {
		t.Fatalf("Exists(missing) = %v, %v; want false, nil", ok, err)
	}

	v1 := put(t, s, "k", "one")
	if v1 <= 0 {
		t.Fatalf("Put version = %d, want > 0", v1)
	}
	e := get(t, s, "k")
	if got, want := string(e.Key), "k"; got != want {
		t.Fatalf("Get(k).Key = %q, want %q", got, want)
	}
	if got, want := string(e.Value), "one"; got != want {
		t.Fatalf("Get(k).Value = %q, want %q", got, want)
	}
	if got, want := e.Version, v1; got != want {
		t.Fatalf("Get(k).Version = %d, want %d (from Put)", got, want)
	}
	if ok, err := sqlkv.Exists(ctx, s, []byte("k")); err != nil || !ok {
		t.Fatalf("Exists(k) = %v, %v; want true, nil", ok, err)
	}

	put(t, s, "k", "two")
	wantValue(t, s, "k", "two")

	if existed, err := sqlkv.DeleteKey(ctx, s, []byte("k")); err != nil || !existed {
		t.Fatalf("first Delete(k) = %v, %v; want true, nil", existed, err)
	}
	wantMissing(t, s, "k")
	if ok, err := sqlkv.Exists(ctx, s, []byte("k")); err != nil || ok {
		t.Fatalf("Exists(k) after Delete = %v, %v; want false, nil", ok, err)
	}
	if existed, err := sqlkv.DeleteKey(ctx, s, []byte("k")); err != nil || existed {
		t.Fatalf("second Delete(k) = %v, %v; want false, nil", existed, err)
	}
}

// testEmptyValue checks that an empty value, however it was written, is found
// with length 0 and is distinct from a missing key. A nil value is an empty
// value, not SQL NULL.
func testEmptyValue(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	if _, err := sqlkv.PutValue(ctx, s, []byte("put-empty"), []byte{}); err != nil {
		t.Fatalf("Put(empty value): %v", err)
	}
	if _, err := sqlkv.PutValue(ctx, s, []byte("put-nil"), nil); err != nil {
		t.Fatalf("Put(nil value): %v", err)
	}
	if err := sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: []byte("batch-nil")}}); err != nil {
		t.Fatalf("BatchPut(nil value): %v", err)
	}
	if _, err := s.Apply(ctx, sqlkv.Put([]byte("apply-nil"), nil)); err != nil {
		t.Fatalf("Apply(Put(nil value)): %v", err)
	}
	names := []string{"apply-nil", "batch-nil", "put-empty", "put-nil"}
	for _, k := range names {
		e, err := s.Get(ctx, []byte(k))
		if err != nil {
			t.Fatalf("Get(%q) of an empty value: %v", k, err)
		}
		if got := len(e.Value); got != 0 {
			t.Fatalf("Get(%q) = %q, want an empty value", k, e.Value)
		}
		if ok, err := sqlkv.Exists(ctx, s, []byte(k)); err != nil || !ok {
			t.Fatalf("Exists(%q) = %v, %v; want true, nil", k, ok, err)
		}
	}
	entries, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	wantKeys(t, "Scan keys", entryKeys(entries), names)
	for _, e := range entries {
		if len(e.Value) != 0 {
			t.Fatalf("Scan value of %q = %q, want empty", e.Key, e.Value)
		}
	}
	wantMissing(t, s, "missing")
}

// testEmptyKey checks that "" is a key like any other, and that a nil key is
// the same key as an empty one.
func testEmptyKey(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	v, err := sqlkv.PutValue(ctx, s, []byte{}, []byte("empty key"))
	if err != nil {
		t.Fatalf("Put(empty key): %v", err)
	}
	put(t, s, "a", "a")
	e, err := s.Get(ctx, nil)
	if err != nil {
		t.Fatalf("Get(nil key): %v", err)
	}
	if got, want := string(e.Value), "empty key"; got != want {
		t.Fatalf("Get(nil key) = %q, want %q", got, want)
	}
	if got, want := e.Version, v; got != want {
		t.Fatalf("Get(nil key).Version = %d, want %d", got, want)
	}
	if ok, err := sqlkv.Exists(ctx, s, nil); err != nil || !ok {
		t.Fatalf("Exists(nil key) = %v, %v; want true, nil", ok, err)
	}
	wantKeys(t, `Keys("")`, keysOf(t, s, ""), []string{"", "a"})
	if got, want := count(t, s, ""), int64(2); got != want {
		t.Fatalf(`Count("") = %d, want %d`, got, want)
	}
	entries, err := s.Range(ctx, sqlkv.RangeOptions{End: []byte("a")})
	if err != nil {
		t.Fatalf("Range(nil, a): %v", err)
	}
	wantKeys(t, "Range(nil, a)", entryKeys(entries), []string{""})
	if existed, err := sqlkv.DeleteKey(ctx, s, nil); err != nil || !existed {
		t.Fatalf("Delete(nil key) = %v, %v; want true, nil", existed, err)
	}
	wantMissing(t, s, "")
	wantKeys(t, `Keys("") after Delete`, keysOf(t, s, ""), []string{"a"})
}

// oddStrings are keys and values that break stores which build SQL as text,
// use LIKE, collate, or treat bytes as UTF-8 or C strings.
var oddStrings = []string{
	"\x00", "\x00\x00", "a\x00b", "a\x00",
	"line\nbreak", "\r\n", "tab\there",
	"%", "100%", "_", "under_score", "%_", `\`, `back\slash`, `\%`, `\_`,
	"'", `"`, `it's "quoted"`, "'; DROP TABLE kv; --", `"); DELETE FROM kv; --`,
	"日本語キー", "🔑 emoji 🎉", "é", "e\u0301",
	"\xff\xfe", "\xc3\x28", "\xff", "\x80",
}

func testOddBytes(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	for _, k := range oddStrings {
		// The value holds the same bytes as the key, plus some around them.
		if _, err := sqlkv.PutValue(ctx, s, []byte(k), []byte(k+"|"+k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	for _, k := range oddStrings {
		e := get(t, s, k)
		if got, want := string(e.Key), k; got != want {
			t.Fatalf("Get(%q).Key = %q", k, got)
		}
		if got, want := string(e.Value), k+"|"+k; got != want {
			t.Fatalf("Get(%q) = %q, want %q", k, got, want)
		}
	}
	want := slices.Sorted(slices.Values(oddStrings))
	wantKeys(t, `Keys("")`, keysOf(t, s, ""), want)
	entries, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	wantKeys(t, `Scan("")`, entryKeys(entries), want)
	for _, e := range entries {
		if got, want := string(e.Value), string(e.Key)+"|"+string(e.Key); got != want {
			t.Fatalf("Scan value of %q = %q, want %q", e.Key, got, want)
		}
	}
	// Each odd string as a prefix: no wildcards, no escapes, no collation.
	for _, p := range oddStrings {
		checkPrefix(t, s, oddStrings, p)
	}
}

func testKeySize(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	maxKey := []byte(strings.Repeat("k", sqlkv.MaxKeySize))
	big := []byte(strings.Repeat("k", sqlkv.MaxKeySize+1))

	t.Run("MaxAccepted", func(t *testing.T) {
		if _, err := sqlkv.PutValue(ctx, s, maxKey, []byte("max")); err != nil {
			t.Fatalf("Put(%d-byte key): %v", len(maxKey), err)
		}
		wantValue(t, s, string(maxKey), "max")
		if ok, err := sqlkv.Exists(ctx, s, maxKey); err != nil || !ok {
			t.Fatalf("Exists(max key) = %v, %v; want true, nil", ok, err)
		}
		wantKeys(t, "Keys(max key)", keysOf(t, s, string(maxKey)), []string{string(maxKey)})
		if got, want := count(t, s, string(maxKey)), int64(1); got != want {
			t.Fatalf("Count(max key) = %d, want %d", got, want)
		}
		if _, err := s.Apply(ctx, sqlkv.Put(maxKey, []byte("apply"))); err != nil {
			t.Fatalf("Apply(Put(max key)): %v", err)
		}
		wantValue(t, s, string(maxKey), "apply")
		if err := sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: maxKey, Value: []byte("batch")}}); err != nil {
			t.Fatalf("BatchPut(max key): %v", err)
		}
		wantValue(t, s, string(maxKey), "batch")
		if existed, err := sqlkv.DeleteKey(ctx, s, maxKey); err != nil || !existed {
			t.Fatalf("Delete(max key) = %v, %v; want true, nil", existed, err)
		}
		put(t, s, string(maxKey), "again")
		if n, err := sqlkv.BatchDelete(ctx, s, [][]byte{maxKey}); err != nil || n != 1 {
			t.Fatalf("BatchDelete(max key) = %d, %v; want 1, nil", n, err)
		}
		put(t, s, string(maxKey), "again")
		if n, err := sqlkv.DeletePrefix(ctx, s, maxKey); err != nil || n != 1 {
			t.Fatalf("DeletePrefix(max key) = %d, %v; want 1, nil", n, err)
		}
	})

	t.Run("OverRejected", func(t *testing.T) {
		_, err := sqlkv.PutValue(ctx, s, big, []byte("v"))
		wantErrIs(t, "Put", err, sqlkv.ErrKeyTooLarge)
		_, err = s.Get(ctx, big)
		wantErrIs(t, "Get", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.Exists(ctx, s, big)
		wantErrIs(t, "Exists", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.DeleteKey(ctx, s, big)
		wantErrIs(t, "Delete", err, sqlkv.ErrKeyTooLarge)
		_, err = s.Range(ctx, sqlkv.RangeOptions{Start: big})
		wantErrIs(t, "Range(Start)", err, sqlkv.ErrKeyTooLarge)
		_, err = s.Range(ctx, sqlkv.RangeOptions{End: big})
		wantErrIs(t, "Range(End)", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.Keys(ctx, s, big)
		wantErrIs(t, "Keys", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.Scan(ctx, s, big)
		wantErrIs(t, "Scan", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.Count(ctx, s, big)
		wantErrIs(t, "Count", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.DeletePrefix(ctx, s, big)
		wantErrIs(t, "DeletePrefix", err, sqlkv.ErrKeyTooLarge)
		_, err = sqlkv.BatchDelete(ctx, s, [][]byte{[]byte("ok"), big})
		wantErrIs(t, "BatchDelete", err, sqlkv.ErrKeyTooLarge)
		for _, op := range []sqlkv.Op{sqlkv.Put(big, nil), sqlkv.Delete(big), sqlkv.Check(big, sqlkv.IfExists())} {
			_, err = s.Apply(ctx, sqlkv.Put([]byte("ok"), []byte("v")), op)
			wantErrIs(t, "Apply("+op.Kind.String()+")", err, sqlkv.ErrKeyTooLarge)
		}
		err = sqlkv.BatchPut(ctx, s, []sqlkv.Entry{
			{Key: []byte("ok"), Value: []byte("v")},
			{Key: big, Value: []byte("v")},
			{Key: []byte("ok2"), Value: []byte("v")},
		})
		wantErrIs(t, "BatchPut", err, sqlkv.ErrKeyTooLarge)
		wantMissing(t, s, "ok")
		wantMissing(t, s, "ok2")
	})
}

func testValueSize(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	t.Run("TenMiBRoundTrips", func(t *testing.T) {
		value := make([]byte, 10<<20)
		for i := range value {
			value[i] = byte(i*7 + i>>16)
		}
		if _, err := sqlkv.PutValue(ctx, s, []byte("big"), value); err != nil {
			t.Fatalf("Put(10 MiB): %v", err)
		}
		e := get(t, s, "big")
		if !bytes.Equal(e.Value, value) {
			t.Fatalf("Get(10 MiB value) returned %d bytes that differ from the %d written", len(e.Value), len(value))
		}
		entries, err := sqlkv.Scan(ctx, s, []byte("big"))
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		if len(entries) != 1 || !bytes.Equal(entries[0].Value, value) {
			t.Fatalf("Scan did not return the 10 MiB value intact")
		}
		if _, err := sqlkv.DeleteKey(ctx, s, []byte("big")); err != nil {
			t.Fatalf("Delete: %v", err)
		}
	})

	t.Run("OverRejected", func(t *testing.T) {
		put(t, s, "existing", "old")
		over := make([]byte, sqlkv.MaxValueSize+1)
		_, err := sqlkv.PutValue(ctx, s, []byte("existing"), over)
		wantErrIs(t, "Put", err, sqlkv.ErrValueTooLarge)
		err = sqlkv.BatchPut(ctx, s, []sqlkv.Entry{
			{Key: []byte("a"), Value: []byte("a")},
			{Key: []byte("existing"), Value: over},
			{Key: []byte("c"), Value: []byte("c")},
		})
		wantErrIs(t, "BatchPut", err, sqlkv.ErrValueTooLarge)
		_, err = s.Apply(ctx,
			sqlkv.Put([]byte("a"), []byte("a")),
			sqlkv.Put([]byte("existing"), over),
		)
		wantErrIs(t, "Apply", err, sqlkv.ErrValueTooLarge)
		wantValue(t, s, "existing", "old")
		wantMissing(t, s, "a")
		wantMissing(t, s, "c")
	})
}

// testCopies checks that a store neither keeps the caller's slices nor hands
// out its own.
func testCopies(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	key, value := []byte("key"), []byte("value")
	if _, err := sqlkv.PutValue(ctx, s, key, value); err != nil {
		t.Fatalf("Put: %v", err)
	}
	key[0], value[0] = 'X', 'X'
	wantValue(t, s, "key", "value")

	entries := []sqlkv.Entry{{Key: []byte("batch"), Value: []byte("value")}}
	if err := sqlkv.BatchPut(ctx, s, entries); err != nil {
		t.Fatalf("BatchPut: %v", err)
	}
	entries[0].Key[0], entries[0].Value[0] = 'X', 'X'
	wantValue(t, s, "batch", "value")

	op := sqlkv.Put([]byte("apply"), []byte("value"))
	if _, err := s.Apply(ctx, op); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	op.Key[0], op.Value[0] = 'X', 'X'
	wantValue(t, s, "apply", "value")

	e := get(t, s, "key")
	e.Key[0], e.Value[0] = 'X', 'X'
	wantValue(t, s, "key", "value")

	scanned, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	for _, e := range scanned {
		e.Key[0], e.Value[0] = 'X', 'X'
	}
	ranged, err := s.Range(ctx, sqlkv.RangeOptions{})
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	for _, e := range ranged {
		e.Key[0], e.Value[0] = 'X', 'X'
	}
	keys, err := sqlkv.Keys(ctx, s, nil)
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	for _, k := range keys {
		k[0] = 'X'
	}
	wantKeys(t, "Keys after mutating returned slices", keysOf(t, s, ""), []string{"apply", "batch", "key"})
	for _, k := range []string{"apply", "batch", "key"} {
		wantValue(t, s, k, "value")
	}
}

func testClosed(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	put(t, s, "k", "v")
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping before Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	k := []byte("k")
	calls := map[string]func() error{
		"Get":          func() error { _, err := s.Get(ctx, k); return err },
		"Put":          func() error { _, err := sqlkv.PutValue(ctx, s, k, k); return err },
		"Delete":       func() error { _, err := sqlkv.DeleteKey(ctx, s, k); return err },
		"Exists":       func() error { _, err := sqlkv.Exists(ctx, s, k); return err },
		"Keys":         func() error { _, err := sqlkv.Keys(ctx, s, nil); return err },
		"Scan":         func() error { _, err := sqlkv.Scan(ctx, s, nil); return err },
		"Range":        func() error { _, err := s.Range(ctx, sqlkv.RangeOptions{}); return err },
		"Count":        func() error { _, err := sqlkv.Count(ctx, s, nil); return err },
		"DeletePrefix": func() error { _, err := sqlkv.DeletePrefix(ctx, s, nil); return err },
		"BatchPut":     func() error { return sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: k, Value: k}}) },
		"BatchDelete":  func() error { _, err := sqlkv.BatchDelete(ctx, s, [][]byte{k}); return err },
		"Apply":        func() error { _, err := s.Apply(ctx, sqlkv.Put(k, k)); return err },
		"Ping":         func() error { return s.Ping(ctx) },
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		wantErrIs(t, name+" after Close", calls[name](), sqlkv.ErrClosed)
	}
	wantErrIs(t, "second Close", s.Close(), sqlkv.ErrClosed)
}

// testCancelledContext checks that every method given a cancelled context
// fails with an error wrapping context.Canceled (so callers can tell a
// cancelled request from an unavailable store) and that writes do not happen.
func testCancelledContext(t *testing.T, s sqlkv.Store) {
	put(t, s, "k", "v")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	k, n := []byte("k"), []byte("new")
	calls := map[string]func() error{
		"Get":          func() error { _, err := s.Get(ctx, k); return err },
		"Put":          func() error { _, err := sqlkv.PutValue(ctx, s, n, n); return err },
		"Delete":       func() error { _, err := sqlkv.DeleteKey(ctx, s, k); return err },
		"Exists":       func() error { _, err := sqlkv.Exists(ctx, s, k); return err },
		"Keys":         func() error { _, err := sqlkv.Keys(ctx, s, nil); return err },
		"Scan":         func() error { _, err := sqlkv.Scan(ctx, s, nil); return err },
		"Range":        func() error { _, err := s.Range(ctx, sqlkv.RangeOptions{}); return err },
		"Count":        func() error { _, err := sqlkv.Count(ctx, s, nil); return err },
		"DeletePrefix": func() error { _, err := sqlkv.DeletePrefix(ctx, s, nil); return err },
		"BatchPut":     func() error { return sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: n, Value: n}}) },
		"BatchDelete":  func() error { _, err := sqlkv.BatchDelete(ctx, s, [][]byte{k}); return err },
		"Apply":        func() error { _, err := s.Apply(ctx, sqlkv.Put(n, n), sqlkv.Delete(k)); return err },
		"Ping":         func() error { return s.Ping(ctx) },
	}
	for _, name := range slices.Sorted(maps.Keys(calls)) {
		if err := calls[name](); err == nil {
			t.Errorf("%s with a cancelled context: err = nil, want an error", name)
		} else if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: err = %v, want one wrapping context.Canceled", name, err)
		}
	}
	wantValue(t, s, "k", "v")
	wantMissing(t, s, "new")
}
