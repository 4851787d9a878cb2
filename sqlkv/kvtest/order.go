package kvtest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// checkPrefix compares Keys, Scan, Count and a reverse Range over
// PrefixRange(prefix) with a brute-force filter of all, the keys in the store.
func checkPrefix(t *testing.T, s sqlkv.Store, all []string, prefix string) {
	t.Helper()
	ctx := t.Context()
	want := withPrefix(all, prefix)
	wantKeys(t, fmt.Sprintf("Keys(%q)", prefix), keysOf(t, s, prefix), want)

	entries, err := sqlkv.Scan(ctx, s, []byte(prefix))
	if err != nil {
		t.Fatalf("Scan(%q): %v", prefix, err)
	}
	wantKeys(t, fmt.Sprintf("Scan(%q)", prefix), entryKeys(entries), want)

	if got, want := count(t, s, prefix), int64(len(want)); got != want {
		t.Fatalf("Count(%q) = %d, want %d", prefix, got, want)
	}

	opts := sqlkv.PrefixRange([]byte(prefix))
	opts.Reverse = true
	entries, err = s.Range(ctx, opts)
	if err != nil {
		t.Fatalf("Range(PrefixRange(%q), reverse): %v", prefix, err)
	}
	reversed := slices.Clone(want)
	slices.Reverse(reversed)
	wantKeys(t, fmt.Sprintf("Range(PrefixRange(%q), reverse)", prefix), entryKeys(entries), reversed)
}

// checkDeletePrefix deletes prefix, checks that exactly the brute-force
// selection went, and puts it back.
func checkDeletePrefix(t *testing.T, s sqlkv.Store, all []string, prefix string) {
	t.Helper()
	doomed := withPrefix(all, prefix)
	n, err := sqlkv.DeletePrefix(t.Context(), s, []byte(prefix))
	if err != nil {
		t.Fatalf("DeletePrefix(%q): %v", prefix, err)
	}
	if got, want := n, int64(len(doomed)); got != want {
		t.Fatalf("DeletePrefix(%q) = %d, want %d", prefix, got, want)
	}
	var kept []string
	for _, k := range slices.Sorted(slices.Values(all)) {
		if !slices.Contains(doomed, k) {
			kept = append(kept, k)
		}
	}
	wantKeys(t, fmt.Sprintf("Keys after DeletePrefix(%q)", prefix), keysOf(t, s, ""), kept)
	if len(doomed) > 0 {
		fill(t, s, doomed...)
	}
}

func testBytewiseOrder(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	fill(t, s, "B", "a-b", "aB", "ab", "é", "\xff", "\x00", "a\x00")
	// Bytewise; a collating database would put "é" near "e", "aB" after "ab"
	// or "a-b" after "ab".
	want := []string{"\x00", "B", "a\x00", "a-b", "aB", "ab", "é", "\xff"}
	if !slices.IsSortedFunc(want, func(a, b string) int { return bytes.Compare([]byte(a), []byte(b)) }) {
		t.Fatalf("test bug: want is not in bytewise order")
	}
	wantKeys(t, `Keys("")`, keysOf(t, s, ""), want)
	entries, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	wantKeys(t, `Scan("")`, entryKeys(entries), want)
	entries, err = s.Range(ctx, sqlkv.RangeOptions{Reverse: true})
	if err != nil {
		t.Fatalf("Range(reverse): %v", err)
	}
	reversed := slices.Clone(want)
	slices.Reverse(reversed)
	wantKeys(t, "Range(reverse)", entryKeys(entries), reversed)
}

// testPrefixSuccessor covers prefixes whose upper bound needs care: empty,
// ending in 0xFF, and all 0xFF (no upper bound at all).
func testPrefixSuccessor(t *testing.T, s sqlkv.Store) {
	all := []string{
		"", "\x00", "a", "a\x00", "a\xfe", "a\xfe\xff", "a\xff", "a\xff\x00",
		"a\xff\xff", "a\xff\xff\xff", "b", "b\x00", "\xfe", "\xfe\xff",
		"\xff", "\xff\x00", "\xff\xfe", "\xff\xff", "\xff\xff\x00", "\xff\xff\xff", "\xff\xff\xff\xff",
	}
	fill(t, s, all...)
	prefixes := []string{
		"", "\x00", "a", "a\xfe", "a\xff", "a\xff\xff", "b", "\xfe", "\xff",
		"\xff\xff", "\xff\xff\xff", "\xff\xff\xff\xff\xff", "c",
	}
	for _, p := range prefixes {
		checkPrefix(t, s, all, p)
	}
	for _, p := range prefixes {
		checkDeletePrefix(t, s, all, p)
	}
}

// testOverlappingPrefixes checks that prefixes nest correctly and that
// LIKE's wildcards and escape character are plain bytes.
func testOverlappingPrefixes(t *testing.T, s sqlkv.Store) {
	all := []string{
		"a", "aa", "aaa", "ab", "abb", "b", "ba",
		"prefi", "prefiy", "prefix", "prefixA", "prefixx", "prefix_1", "prefix_12",
		"prefix_x", "prefix%", "prefix%x", `prefix\`, `prefix\_`, "%", "_", `\`, "x%y", "x_y", "xay",
	}
	fill(t, s, all...)
	wantKeys(t, `Keys("prefix_")`, keysOf(t, s, "prefix_"), []string{"prefix_1", "prefix_12", "prefix_x"})
	wantKeys(t, `Keys("prefix%")`, keysOf(t, s, "prefix%"), []string{"prefix%", "prefix%x"})
	wantKeys(t, `Keys("x_")`, keysOf(t, s, "x_"), []string{"x_y"})
	prefixes := []string{
		"a", "aa", "aaa", "ab", "b", "prefi", "prefix", "prefix_", "prefix_1",
		"prefix%", `prefix\`, "%", "_", `\`, "x", "x%", "x_", "zzz",
	}
	for _, p := range prefixes {
		checkPrefix(t, s, all, p)
	}
	for _, p := range prefixes {
		checkDeletePrefix(t, s, all, p)
	}
}

func testNamespaces(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	fill(t, s,
		"nod", "node", "node:", "node:1", "node:2", "node:\xff", "node;", "node_1", "nodes:1",
		"resource:1", "resource:node:1",
	)
	entries, err := sqlkv.Scan(ctx, s, []byte("node:"))
	if err != nil {
		t.Fatalf("Scan(node:): %v", err)
	}
	wantKeys(t, "Scan(node:)", entryKeys(entries), []string{"node:", "node:1", "node:2", "node:\xff"})
	for _, e := range entries {
		if got, want := string(e.Value), valueOf(string(e.Key)); got != want {
			t.Fatalf("Scan value of %q = %q, want %q", e.Key, got, want)
		}
	}
	wantKeys(t, "Keys(resource:)", keysOf(t, s, "resource:"), []string{"resource:1", "resource:node:1"})
	if got, want := count(t, s, "node:"), int64(4); got != want {
		t.Fatalf("Count(node:) = %d, want %d", got, want)
	}
	n, err := sqlkv.DeletePrefix(ctx, s, []byte("node:"))
	if err != nil {
		t.Fatalf("DeletePrefix(node:): %v", err)
	}
	if got, want := n, int64(4); got != want {
		t.Fatalf("DeletePrefix(node:) = %d, want %d", got, want)
	}
	wantKeys(t, "Keys after DeletePrefix(node:)", keysOf(t, s, ""),
		[]string{"nod", "node", "node;", "node_1", "nodes:1", "resource:1", "resource:node:1"})
}

func testRange(t *testing.T, s sqlkv.Store) {
	rangeTable(t, s, "Range", s.Range)
}

// rangeTable checks read, which is Range or reads like it, on a table of
// ranges of five keys.
func rangeTable(t *testing.T, s sqlkv.Store, name string, read func(context.Context, sqlkv.RangeOptions) ([]sqlkv.Entry, error)) {
	keys := []string{"a", "b", "c", "d", "e"}
	versions := map[string]int64{}
	for _, k := range keys {
		versions[k] = put(t, s, k, valueOf(k))
	}
	type opts = sqlkv.RangeOptions
	tests := []struct {
		name string
		opts opts
		want []string
	}{
		{"Everything", opts{}, keys},
		{"EmptyStart", opts{Start: b("")}, keys},
		{"StartEqualsEnd", opts{Start: b("b"), End: b("b")}, nil},
		{"StartAfterEnd", opts{Start: b("d"), End: b("b")}, nil},
		{"EndExcluded", opts{Start: b("b"), End: b("d")}, []string{"b", "c"}},
		{"BoundsBetweenKeys", opts{Start: b("bb"), End: b("dd")}, []string{"c", "d"}},
		{"NilStart", opts{End: b("c")}, []string{"a", "b"}},
		{"NilEnd", opts{Start: b("c")}, []string{"c", "d", "e"}},
		{"StartAfterLastKey", opts{Start: b("f")}, nil},
		{"EndBeforeFirstKey", opts{End: b("a")}, nil},
		{"Limit0Unlimited", opts{Limit: 0}, keys},
		{"LimitNegativeUnlimited", opts{Limit: -1}, keys},
		{"Limit1", opts{Limit: 1}, []string{"a"}},
		{"Limit2WithStart", opts{Start: b("b"), Limit: 2}, []string{"b", "c"}},
		{"LimitNPlus1", opts{Limit: len(keys) + 1}, keys},
		{"Reverse", opts{Reverse: true}, []string{"e", "d", "c", "b", "a"}},
		{"ReverseLimit2IsLastTwo", opts{Reverse: true, Limit: 2}, []string{"e", "d"}},
		{"ReverseBounds", opts{Start: b("b"), End: b("e"), Reverse: true}, []string{"d", "c", "b"}},
		{"ReverseBoundsLimit", opts{Start: b("b"), End: b("e"), Reverse: true, Limit: 2}, []string{"d", "c"}},
		{"ReverseBoundsBetweenKeys", opts{Start: b("bb"), End: b("dd"), Reverse: true}, []string{"d", "c"}},
		{"ReverseNilStart", opts{End: b("c"), Reverse: true}, []string{"b", "a"}},
		{"ReverseNilEndLimit", opts{Start: b("b"), Reverse: true, Limit: 1}, []string{"e"}},
		{"ReverseLimitNPlus1", opts{Reverse: true, Limit: len(keys) + 1}, []string{"e", "d", "c", "b", "a"}},
		{"ReverseStartEqualsEnd", opts{Start: b("c"), End: b("c"), Reverse: true}, nil},
		{"ReverseStartAfterEnd", opts{Start: b("d"), End: b("b"), Reverse: true}, nil},
		{"KeysOnly", opts{Start: b("b"), End: b("d"), KeysOnly: true}, []string{"b", "c"}},
		{"KeysOnlyReverseLimit", opts{KeysOnly: true, Reverse: true, Limit: 3}, []string{"e", "d", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			entries, err := read(t.Context(), tt.opts)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			wantKeys(t, name+" keys", entryKeys(entries), tt.want)
			for _, e := range entries {
				if got, want := e.Version, versions[string(e.Key)]; got != want {
					t.Fatalf("%s version of %q = %d, want %d", name, e.Key, got, want)
				}
				if tt.opts.KeysOnly {
					if e.Value != nil {
						t.Fatalf("KeysOnly: value of %q = %q, want nil", e.Key, e.Value)
					}
					continue
				}
				if got, want := string(e.Value), valueOf(string(e.Key)); got != want {
					t.Fatalf("%s value of %q = %q, want %q", name, e.Key, got, want)
				}
			}
		})
	}
}

func testCount(t *testing.T, s sqlkv.Store) {
	if got, want := count(t, s, ""), int64(0); got != want {
		t.Fatalf(`Count("") of an empty store = %d, want %d`, got, want)
	}
	fill(t, s, "p/1", "p/2", "p/3", "q/1", "p")
	put(t, s, "p/4", "") // empty values count too
	for _, c := range []struct {
		prefix string
		want   int64
	}{{"", 6}, {"p", 5}, {"p/", 4}, {"p/1", 1}, {"q/", 1}, {"zzz", 0}} {
		if got := count(t, s, c.prefix); got != c.want {
			t.Fatalf("Count(%q) = %d, want %d", c.prefix, got, c.want)
		}
	}
}

func testDeletePrefix(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	fill(t, s, "p/1", "p/2", "p/3", "p", "q/1", "r")
	n, err := sqlkv.DeletePrefix(ctx, s, []byte("p/"))
	if err != nil {
		t.Fatalf("DeletePrefix(p/): %v", err)
	}
	if got, want := n, int64(3); got != want {
		t.Fatalf("DeletePrefix(p/) = %d, want %d", got, want)
	}
	wantKeys(t, "Keys after DeletePrefix(p/)", keysOf(t, s, ""), []string{"p", "q/1", "r"})

	n, err = sqlkv.DeletePrefix(ctx, s, []byte("zzz"))
	if err != nil || n != 0 {
		t.Fatalf("DeletePrefix(zzz) = %d, %v; want 0, nil", n, err)
	}

	last := put(t, s, "latest", "v")
	n, err = sqlkv.DeletePrefix(ctx, s, nil)
	if err != nil {
		t.Fatalf(`DeletePrefix(""): %v`, err)
	}
	if got, want := n, int64(4); got != want {
		t.Fatalf(`DeletePrefix("") = %d, want %d`, got, want)
	}
	if got, want := count(t, s, ""), int64(0); got != want {
		t.Fatalf(`Count("") after clearing = %d, want %d`, got, want)
	}
	wantKeys(t, "Keys after clearing", keysOf(t, s, ""), nil)
	if v := put(t, s, "latest", "v"); v <= last {
		t.Fatalf("Put after clearing returned version %d, not above %d from before: versions repeat", v, last)
	}
}
