package sqlkv_test

import (
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// coreOnly hides every fast path of the store it holds: only the five core
// methods are promoted from the embedded interface.
type coreOnly struct{ sqlkv.Store }

// The derived forms of PutValue, Count, DeletePrefix, BatchPut, BatchDelete,
// GetMany and RangeFunc (the others have no fast path) pass the conformance suites on
// their own, over each backend's core: a wrapper that forwards nothing but
// the core is a correct store.
func TestDerivedFromCore(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			open := func(t *testing.T) sqlkv.Store {
				s := coreOnly{storetest.Open(t, backend)}
				for name, ok := range map[string]bool{
					"Putter":        is[sqlkv.Putter](s),
					"Counter":       is[sqlkv.Counter](s),
					"PrefixDeleter": is[sqlkv.PrefixDeleter](s),
					"BatchPutter":   is[sqlkv.BatchPutter](s),
					"BatchDeleter":  is[sqlkv.BatchDeleter](s),
					"MultiGetter":   is[sqlkv.MultiGetter](s),
					"RangeStreamer": is[sqlkv.RangeStreamer](s),
				} {
					if ok {
						t.Fatalf("coreOnly is a %s: the test would not exercise the derived form", name)
					}
				}
				return s
			}
			t.Run("Store", func(t *testing.T) { kvtest.TestStore(t, open) })
			t.Run("GetMany", func(t *testing.T) { kvtest.TestGetMany(t, open) })
		})
	}
}

func is[I any](s sqlkv.Store) bool {
	_, ok := s.(I)
	return ok
}

// Exists, derived from a Range that starts at the key, is true only for the
// key itself: not for a key before another, nor for a prefix of one.
func TestExistsIsExact(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			s := coreOnly{storetest.Open(t, backend)}
			ctx := t.Context()
			maxKey := []byte(strings.Repeat("k", sqlkv.MaxKeySize))
			for _, k := range [][]byte{[]byte("b"), maxKey} {
				if _, err := sqlkv.PutValue(ctx, s, k, nil); err != nil {
					t.Fatal(err)
				}
			}
			for _, tc := range []struct {
				key  []byte
				want bool
			}{
				{[]byte("a"), false}, {[]byte("b"), true}, {[]byte("ba"), false}, {[]byte(""), false},
				{maxKey, true}, {maxKey[1:], false}, {[]byte("z"), false},
			} {
				got, err := sqlkv.Exists(ctx, s, tc.key)
				if err != nil || got != tc.want {
					t.Errorf("Exists(%.8q... %d bytes) = %v, %v; want %v, nil", tc.key, len(tc.key), got, err, tc.want)
				}
			}
		})
	}
}
