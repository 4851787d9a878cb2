package kvtest

import (
	"slices"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// TestGetMany checks sqlkv.GetMany on a store (with one query where the
// store is a sqlkv.MultiGetter): the entries of the keys that exist, in the
// order asked, an empty value kept distinct from a missing key.
func TestGetMany(t *testing.T, open func(t *testing.T) sqlkv.Store) {
	s := open(t)
	ctx := t.Context()
	if _, err := sqlkv.PutValue(ctx, s, []byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	if _, err := sqlkv.PutValue(ctx, s, []byte("b"), []byte{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		keys []string
		want []string // key=value
	}{
		{[]string{"b", "a"}, []string{"b=", "a=1"}},
		{[]string{"a", "missing"}, []string{"a=1"}},
		{[]string{"missing", "b"}, []string{"b="}},
		{[]string{"x", "y"}, nil},
		{[]string{"a", "a"}, []string{"a=1", "a=1"}},
		{[]string{"a", "b", "missing"}, []string{"a=1", "b="}},
	} {
		var keys [][]byte
		for _, k := range tc.keys {
			keys = append(keys, []byte(k))
		}
		got, err := sqlkv.GetMany(ctx, s, keys...)
		if err != nil {
			t.Fatalf("GetMany(%q): %v", tc.keys, err)
		}
		var pairs []string
		for _, e := range got {
			if e.Value == nil || e.Version <= 0 {
				t.Errorf("GetMany(%q): entry %q has value %v, version %d", tc.keys, e.Key, e.Value, e.Version)
			}
			pairs = append(pairs, string(e.Key)+"="+string(e.Value))
		}
		if !slices.Equal(pairs, tc.want) {
			t.Errorf("GetMany(%q) = %q, want %q", tc.keys, pairs, tc.want)
		}
	}
}
