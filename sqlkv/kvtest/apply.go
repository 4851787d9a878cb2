package kvtest

import (
	"errors"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// apply runs ops and fails the test on any error.
func apply(t *testing.T, s sqlkv.Store, ops ...sqlkv.Op) []sqlkv.OpResult {
	t.Helper()
	res, err := s.Apply(t.Context(), ops...)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if got, want := len(res), len(ops); got != want {
		t.Fatalf("Apply returned %d results for %d ops", got, want)
	}
	return res
}

// wantConflict runs ops and checks that Apply fails with ErrConflict.
func wantConflict(t *testing.T, s sqlkv.Store, ops ...sqlkv.Op) {
	t.Helper()
	_, err := s.Apply(t.Context(), ops...)
	wantErrIs(t, "Apply", err, sqlkv.ErrConflict)
}

// wantVersion checks key's current version.
func wantVersion(t *testing.T, s sqlkv.Store, key string, version int64) {
	t.Helper()
	if got, want := get(t, s, key).Version, version; got != want {
		t.Fatalf("version of %q = %d, want %d", key, got, want)
	}
}

func b(s string) []byte { return []byte(s) }

func testVersions(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	a1 := put(t, s, "a", "1")
	if a1 <= 0 {
		t.Fatalf("Put version = %d, want > 0", a1)
	}
	a2 := put(t, s, "a", "2")
	if a2 <= a1 {
		t.Fatalf("second Put of a: version %d, want > %d", a2, a1)
	}
	wantVersion(t, s, "a", a2)

	// b now holds the highest version in the store; deleting it and putting
	// it again must not hand that version out again (as a max(version)+1
	// scheme would).
	b1 := put(t, s, "b", "1")
	if b1 == a1 || b1 == a2 {
		t.Fatalf("version of b = %d, same as a version of a (%d, %d)", b1, a1, a2)
	}
	if _, err := sqlkv.DeleteKey(ctx, s, b("b")); err != nil {
		t.Fatalf("Delete(b): %v", err)
	}
	b2 := put(t, s, "b", "2")
	if b2 <= b1 {
		t.Fatalf("Put of b after Delete: version %d, want > %d from before the delete", b2, b1)
	}

	res := apply(t, s, sqlkv.Put(b("a"), b("3")))
	if res[0].Version <= a2 {
		t.Fatalf("Apply(Put(a)) version %d, want > %d", res[0].Version, a2)
	}
	wantVersion(t, s, "a", res[0].Version)

	// Every key written by one BatchPut gets its own, new version.
	fill(t, s, "a", "c", "d")
	seen := map[int64]string{}
	for _, k := range []string{"a", "b", "c", "d"} {
		v := get(t, s, k).Version
		if other, dup := seen[v]; dup {
			t.Fatalf("keys %q and %q share version %d", other, k, v)
		}
		seen[v] = k
		if k != "b" && v <= b2 {
			t.Fatalf("version of %q after BatchPut = %d, want > %d", k, v, b2)
		}
	}

	entries, err := sqlkv.Scan(ctx, s, nil)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	for _, e := range entries {
		wantVersion(t, s, string(e.Key), e.Version)
	}
}

func testApplyIfVersion(t *testing.T, s sqlkv.Store) {
	v1 := put(t, s, "k", "one")
	res := apply(t, s, sqlkv.Put(b("k"), b("two")).If(sqlkv.IfVersion(v1)))
	v2 := res[0].Version
	if v2 <= v1 {
		t.Fatalf("conditional Put version %d, want > %d", v2, v1)
	}
	if !res[0].Existed {
		t.Fatalf("conditional Put of an existing key: Existed = false")
	}
	wantValue(t, s, "k", "two")
	wantVersion(t, s, "k", v2)

	wantConflict(t, s, sqlkv.Put(b("k"), b("three")).If(sqlkv.IfVersion(v1)))
	wantConflict(t, s, sqlkv.Put(b("k"), b("three")).If(sqlkv.IfVersion(v2+1000)))
	wantValue(t, s, "k", "two")
	wantVersion(t, s, "k", v2)

	wantConflict(t, s, sqlkv.Put(b("missing"), b("x")).If(sqlkv.IfVersion(v2)))
	wantMissing(t, s, "missing")
}

func testApplyIfNotExists(t *testing.T, s sqlkv.Store) {
	res := apply(t, s, sqlkv.Put(b("k"), b("first")).If(sqlkv.IfNotExists()))
	if res[0].Existed || res[0].Version <= 0 {
		t.Fatalf("create result = %+v, want Existed false and a positive version", res[0])
	}
	wantVersion(t, s, "k", res[0].Version)

	wantConflict(t, s, sqlkv.Put(b("k"), b("second")).If(sqlkv.IfNotExists()))
	wantConflict(t, s, sqlkv.Put(b("k"), b("second")).If(sqlkv.IfVersion(0)))
	wantValue(t, s, "k", "first")

	apply(t, s, sqlkv.Put(b("k2"), b("v")).If(sqlkv.IfVersion(0)))
	wantValue(t, s, "k2", "v")

	if _, err := sqlkv.DeleteKey(t.Context(), s, b("k")); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	apply(t, s, sqlkv.Put(b("k"), b("again")).If(sqlkv.IfNotExists()))
	wantValue(t, s, "k", "again")
}

func testApplyIfExists(t *testing.T, s sqlkv.Store) {
	wantConflict(t, s, sqlkv.Put(b("k"), b("v")).If(sqlkv.IfExists()))
	wantMissing(t, s, "k")

	put(t, s, "k", "one")
	res := apply(t, s, sqlkv.Put(b("k"), b("two")).If(sqlkv.IfExists()))
	if !res[0].Existed {
		t.Fatalf("Put.If(IfExists) result: Existed = false")
	}
	wantValue(t, s, "k", "two")

	apply(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfExists()))
	wantMissing(t, s, "k")
	wantConflict(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfExists()))
}

func testApplyDelete(t *testing.T, s sqlkv.Store) {
	v1 := put(t, s, "k", "one")
	v2 := put(t, s, "k", "two")
	wantConflict(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfVersion(v1)))
	wantConflict(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfNotExists()))
	wantVersion(t, s, "k", v2)

	res := apply(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfVersion(v2)))
	if got, want := res[0], (sqlkv.OpResult{Existed: true, Version: 0}); got != want {
		t.Fatalf("conditional Delete result = %+v, want %+v", got, want)
	}
	wantMissing(t, s, "k")

	res = apply(t, s, sqlkv.Delete(b("k")))
	if got, want := res[0], (sqlkv.OpResult{}); got != want {
		t.Fatalf("Delete of a missing key: result = %+v, want %+v", got, want)
	}
	wantConflict(t, s, sqlkv.Delete(b("k")).If(sqlkv.IfVersion(v2)))
}

func testApplyCheck(t *testing.T, s sqlkv.Store) {
	v1 := put(t, s, "guard", "g")
	res := apply(t, s, sqlkv.Check(b("guard"), sqlkv.IfVersion(v1)), sqlkv.Put(b("target"), b("x")))
	if got, want := res[0], (sqlkv.OpResult{Existed: true, Version: v1}); got != want {
		t.Fatalf("Check result = %+v, want %+v", got, want)
	}
	wantValue(t, s, "target", "x")
	wantVersion(t, s, "guard", v1) // a check writes nothing

	v2 := put(t, s, "guard", "g2")
	wantConflict(t, s, sqlkv.Check(b("guard"), sqlkv.IfVersion(v1)), sqlkv.Put(b("target"), b("y")))
	wantValue(t, s, "target", "x")

	res = apply(t, s, sqlkv.Check(b("missing"), sqlkv.IfNotExists()))
	if got, want := res[0], (sqlkv.OpResult{}); got != want {
		t.Fatalf("Check of a missing key: result = %+v, want %+v", got, want)
	}
	wantMissing(t, s, "missing")
	wantConflict(t, s, sqlkv.Check(b("guard"), sqlkv.IfNotExists()))
	wantConflict(t, s, sqlkv.Check(b("missing"), sqlkv.IfExists()))

	res = apply(t, s, sqlkv.Check(b("guard"), sqlkv.Cond{}))
	if got, want := res[0], (sqlkv.OpResult{Existed: true, Version: v2}); got != want {
		t.Fatalf("unconditional Check result = %+v, want %+v", got, want)
	}
}

func testApplyAllOrNothing(t *testing.T, s sqlkv.Store) {
	va := put(t, s, "a", "a0")
	vb := put(t, s, "b", "b0")
	vc := put(t, s, "c", "c0")

	// The failing condition sits in the middle: the writes before it must be
	// rolled back, the ones after it never done.
	wantConflict(t, s,
		sqlkv.Put(b("a"), b("a1")),
		sqlkv.Delete(b("c")),
		sqlkv.Put(b("new"), b("n")),
		sqlkv.Put(b("b"), b("b1")).If(sqlkv.IfVersion(va)),
		sqlkv.Put(b("d"), b("d1")),
	)
	wantValue(t, s, "a", "a0")
	wantVersion(t, s, "a", va)
	wantValue(t, s, "b", "b0")
	wantValue(t, s, "c", "c0")
	wantMissing(t, s, "new")
	wantMissing(t, s, "d")

	res := apply(t, s,
		sqlkv.Put(b("a"), b("a1")).If(sqlkv.IfVersion(va)),
		sqlkv.Put(b("new"), b("n")).If(sqlkv.IfNotExists()),
		sqlkv.Delete(b("c")).If(sqlkv.IfVersion(vc)),
		sqlkv.Check(b("b"), sqlkv.IfVersion(vb)),
		sqlkv.Delete(b("never")),
	)
	if !res[0].Existed || res[0].Version <= vc {
		t.Fatalf("result of Put(a) = %+v, want Existed and a version > %d", res[0], vc)
	}
	if res[1].Existed || res[1].Version <= vc || res[1].Version == res[0].Version {
		t.Fatalf("result of Put(new) = %+v, want not Existed and a new version", res[1])
	}
	if got, want := res[2], (sqlkv.OpResult{Existed: true}); got != want {
		t.Fatalf("result of Delete(c) = %+v, want %+v", got, want)
	}
	if got, want := res[3], (sqlkv.OpResult{Existed: true, Version: vb}); got != want {
		t.Fatalf("result of Check(b) = %+v, want %+v", got, want)
	}
	if got, want := res[4], (sqlkv.OpResult{}); got != want {
		t.Fatalf("result of Delete(never) = %+v, want %+v", got, want)
	}
	wantVersion(t, s, "a", res[0].Version)
	wantVersion(t, s, "new", res[1].Version)
	wantMissing(t, s, "c")
}

// testApplyInOrder checks that each op sees the writes of the ops before it
// in the same Apply.
func testApplyInOrder(t *testing.T, s sqlkv.Store) {
	res := apply(t, s,
		sqlkv.Put(b("k"), b("1")).If(sqlkv.IfNotExists()),
		sqlkv.Check(b("k"), sqlkv.IfExists()),
		sqlkv.Put(b("k"), b("2")).If(sqlkv.IfExists()),
	)
	if res[0].Existed {
		t.Fatalf("first Put: Existed = true, want false")
	}
	if got, want := res[1], (sqlkv.OpResult{Existed: true, Version: res[0].Version}); got != want {
		t.Fatalf("Check after Put in one Apply = %+v, want %+v", got, want)
	}
	if !res[2].Existed || res[2].Version <= res[0].Version {
		t.Fatalf("second Put = %+v, want Existed and a version > %d", res[2], res[0].Version)
	}
	wantValue(t, s, "k", "2")
	wantVersion(t, s, "k", res[2].Version)

	apply(t, s, sqlkv.Delete(b("k")), sqlkv.Put(b("k"), b("3")).If(sqlkv.IfNotExists()))
	wantValue(t, s, "k", "3")

	wantConflict(t, s,
		sqlkv.Put(b("k2"), b("x")).If(sqlkv.IfNotExists()),
		sqlkv.Put(b("k2"), b("y")).If(sqlkv.IfNotExists()),
	)
	wantMissing(t, s, "k2")
}

func testApplyInvalid(t *testing.T, s sqlkv.Store) {
	res, err := s.Apply(t.Context())
	if err != nil || len(res) != 0 {
		t.Fatalf("Apply() = %v, %v; want no results and no error", res, err)
	}
	for _, kind := range []sqlkv.OpKind{0, 99} {
		_, err := s.Apply(t.Context(), sqlkv.Put(b("a"), b("v")), sqlkv.Op{Kind: kind, Key: b("b")})
		if err == nil {
			t.Fatalf("Apply with an op of kind %v: err = nil, want an error", kind)
		}
		if errors.Is(err, sqlkv.ErrConflict) {
			t.Fatalf("Apply with an op of kind %v: err = %v, want an error other than a conflict", kind, err)
		}
		wantMissing(t, s, "a")
	}
}

func testBatchPut(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	if err := sqlkv.BatchPut(ctx, s, nil); err != nil {
		t.Fatalf("BatchPut(nil): %v", err)
	}
	old := put(t, s, "e", "old")
	err := sqlkv.BatchPut(ctx, s, []sqlkv.Entry{
		{Key: b("a"), Value: b("1")},
		{Key: b("e"), Value: b("new"), Version: 12345}, // Version is ignored
		{Key: b("b"), Value: b("2")},
		{Key: b("a"), Value: b("3")}, // a key listed twice: the last one wins
	})
	if err != nil {
		t.Fatalf("BatchPut: %v", err)
	}
	wantValue(t, s, "a", "3")
	wantValue(t, s, "b", "2")
	wantValue(t, s, "e", "new")
	if v := get(t, s, "e").Version; v <= old {
		t.Fatalf("version of e after BatchPut = %d, want > %d", v, old)
	}
	wantKeys(t, "Keys", keysOf(t, s, ""), []string{"a", "b", "e"})

	// Failing part-way leaves nothing written (see also the size tests).
	err = sqlkv.BatchPut(ctx, s, []sqlkv.Entry{
		{Key: b("a"), Value: b("4")},
		{Key: b("c"), Value: b("c")},
		{Key: b(strings.Repeat("x", sqlkv.MaxKeySize+1)), Value: b("x")},
		{Key: b("d"), Value: b("d")},
	})
	wantErrIs(t, "BatchPut with an oversized key", err, sqlkv.ErrKeyTooLarge)
	wantValue(t, s, "a", "3")
	wantMissing(t, s, "c")
	wantMissing(t, s, "d")
}

func testBatchDelete(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	fill(t, s, "a", "b", "c", "d")
	n, err := sqlkv.BatchDelete(ctx, s, [][]byte{b("a"), b("c"), b("missing"), b("a")})
	if err != nil {
		t.Fatalf("BatchDelete: %v", err)
	}
	if got, want := n, int64(2); got != want {
		t.Fatalf("BatchDelete(a, c, missing, a) = %d, want %d", got, want)
	}
	wantKeys(t, "Keys after BatchDelete", keysOf(t, s, ""), []string{"b", "d"})

	for _, keys := range [][][]byte{nil, {b("missing")}} {
		n, err := sqlkv.BatchDelete(ctx, s, keys)
		if err != nil || n != 0 {
			t.Fatalf("BatchDelete(%q) = %d, %v; want 0, nil", keys, n, err)
		}
	}

	_, err = sqlkv.BatchDelete(ctx, s, [][]byte{b("b"), b(strings.Repeat("x", sqlkv.MaxKeySize+1)), b("d")})
	wantErrIs(t, "BatchDelete with an oversized key", err, sqlkv.ErrKeyTooLarge)
	wantKeys(t, "Keys after a failed BatchDelete", keysOf(t, s, ""), []string{"b", "d"})
}
