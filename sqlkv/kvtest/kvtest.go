// Package kvtest is the conformance suite for sqlkv.Store. Every backend runs
// it unchanged from its own tests:
//
//	func TestStore(t *testing.T) {
//		kvtest.TestStore(t, func(t *testing.T) sqlkv.Store {
//			s := memory.New()
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A backend is done when it passes TestStore (and, if it persists data,
// TestReopen). BenchmarkStore gives every backend the same benchmarks under
// the same names, so their numbers can be read side by side.
package kvtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// TestStore runs the conformance suite. open must return a new, empty store
// and register its Close with t.Cleanup. Subtests run in parallel, each with
// its own store, so stores returned by different calls of open must not share
// data (one database, schema or file per call).
func TestStore(t *testing.T, open func(t *testing.T) sqlkv.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s sqlkv.Store)
	}{
		{"GetPutDeleteExists", testGetPutDeleteExists},
		{"EmptyValueIsNotMissing", testEmptyValue},
		{"EmptyKey", testEmptyKey},
		{"OddBytesRoundTrip", testOddBytes},
		{"KeySizeLimit", testKeySize},
		{"ValueSizeLimit", testValueSize},
		{"ReturnedAndPassedSlicesAreCopies", testCopies},
		{"BytewiseOrder", testBytewiseOrder},
		{"PrefixSuccessor", testPrefixSuccessor},
		{"OverlappingPrefixesNoWildcards", testOverlappingPrefixes},
		{"NamespacesDoNotLeak", testNamespaces},
		{"Range", testRange},
		{"RangeFunc", testRangeFunc},
		{"Count", testCount},
		{"DeletePrefix", testDeletePrefix},
		{"Versions", testVersions},
		{"ApplyIfVersion", testApplyIfVersion},
		{"ApplyIfNotExists", testApplyIfNotExists},
		{"ApplyIfExists", testApplyIfExists},
		{"ApplyDelete", testApplyDelete},
		{"ApplyCheck", testApplyCheck},
		{"ApplyAllOrNothing", testApplyAllOrNothing},
		{"ApplySeesEarlierOps", testApplyInOrder},
		{"ApplyInvalidOps", testApplyInvalid},
		{"BatchPut", testBatchPut},
		{"BatchDelete", testBatchDelete},
		{"ConcurrentDeleteExactlyOneWins", testConcurrentDelete},
		{"ConcurrentCreateExactlyOneWins", testConcurrentCreate},
		{"ConcurrentCompareAndSwap", testCompareAndSwap},
		{"ConcurrentAppliesThatHoldAllSucceed", testConcurrentAppliesHold},
		{"ConcurrentWritersAndReaders", testWritersAndReaders},
		{"TenThousandKeys", testManyKeys},
		{"Closed", testClosed},
		{"CancelledContext", testCancelledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

// put puts value under key and returns the new version.
func put(t *testing.T, s sqlkv.Store, key, value string) int64 {
	t.Helper()
	v, err := sqlkv.PutValue(t.Context(), s, []byte(key), []byte(value))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return v
}

// get returns key's entry and fails the test if it is missing.
func get(t *testing.T, s sqlkv.Store, key string) sqlkv.Entry {
	t.Helper()
	e, err := s.Get(t.Context(), []byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return e
}

// wantValue checks that key holds value.
func wantValue(t *testing.T, s sqlkv.Store, key, value string) {
	t.Helper()
	if got, want := string(get(t, s, key).Value), value; got != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// wantMissing checks that Get of key returns ErrNotFound.
func wantMissing(t *testing.T, s sqlkv.Store, key string) {
	t.Helper()
	e, err := s.Get(t.Context(), []byte(key))
	if !errors.Is(err, sqlkv.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, e.Value, err)
	}
}

// wantErrIs checks that err wraps target.
func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

// valueOf is the value fill gives key.
func valueOf(key string) string { return "v:" + key }

// fill writes every key with valueOf(key) in one BatchPut.
func fill(t *testing.T, s sqlkv.Store, keys ...string) {
	t.Helper()
	entries := make([]sqlkv.Entry, len(keys))
	for i, k := range keys {
		entries[i] = sqlkv.Entry{Key: []byte(k), Value: []byte(valueOf(k))}
	}
	if err := sqlkv.BatchPut(t.Context(), s, entries); err != nil {
		t.Fatalf("BatchPut of %d keys: %v", len(keys), err)
	}
}

// keysOf returns Keys(prefix) as strings.
func keysOf(t *testing.T, s sqlkv.Store, prefix string) []string {
	t.Helper()
	keys, err := sqlkv.Keys(t.Context(), s, []byte(prefix))
	if err != nil {
		t.Fatalf("Keys(%q): %v", prefix, err)
	}
	return strs(keys)
}

// count returns Count(prefix).
func count(t *testing.T, s sqlkv.Store, prefix string) int64 {
	t.Helper()
	n, err := sqlkv.Count(t.Context(), s, []byte(prefix))
	if err != nil {
		t.Fatalf("Count(%q): %v", prefix, err)
	}
	return n
}

func strs(bs [][]byte) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = string(b)
	}
	return out
}

func entryKeys(entries []sqlkv.Entry) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = string(e.Key)
	}
	return out
}

// wantKeys compares two key lists, which must match exactly, order included.
func wantKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s = %s\nwant %s", what, quote(got), quote(want))
	}
}

// withPrefix is the brute-force answer to a prefix query over keys: the keys
// starting with prefix, sorted bytewise (Go compares strings bytewise).
func withPrefix(keys []string, prefix string) []string {
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func quote(keys []string) string {
	q := make([]string, len(keys))
	for i, k := range keys {
		q[i] = fmt.Sprintf("%q", k)
	}
	return "[" + strings.Join(q, " ") + "]"
}
