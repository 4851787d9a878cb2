package watchstore_test

import (
	"context"
	"reflect"
	"slices"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The backends watchstore serves in cmd/sms: those that cannot watch
// themselves.
var inProcess = []string{"memory", "sqlite"}

func open(t *testing.T, backend string) *watchstore.Store {
	s := watchstore.New(storetest.Open(t, backend))
	t.Cleanup(func() { s.Close() })
	return s
}

// The conformance suite over every backend (cmd/sms wraps only memory and
// SQLite, but nothing in the wrapper depends on which).
func TestStore(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			kvtest.TestStore(t, func(t *testing.T) sqlkv.Store { return open(t, backend) })
		})
	}
}

func TestWatch(t *testing.T) {
	for _, backend := range inProcess {
		t.Run(backend, func(t *testing.T) {
			kvtest.TestWatch(t, func(t *testing.T) sqlkv.Store { return open(t, backend) })
		})
	}
}

type writeOp struct {
	name         string
	setup, write func(ctx context.Context, s sqlkv.Store) error
}

// writes are the write operations of package sqlkv, each writing key "w"
// through s (after setup, if any, has written other keys).
var writes = []writeOp{
	{"Apply", nil, func(ctx context.Context, s sqlkv.Store) error {
		_, err := s.Apply(ctx, sqlkv.Put([]byte("w"), []byte("v")))
		return err
	}},
	{"PutValue", nil, func(ctx context.Context, s sqlkv.Store) error {
		_, err := sqlkv.PutValue(ctx, s, []byte("w"), []byte("v"))
		return err
	}},
	{"BatchPut", nil, func(ctx context.Context, s sqlkv.Store) error {
		return sqlkv.BatchPut(ctx, s, []sqlkv.Entry{{Key: []byte("w"), Value: []byte("v")}})
	}},
	{"DeleteKey", putW, func(ctx context.Context, s sqlkv.Store) error {
		_, err := sqlkv.DeleteKey(ctx, s, []byte("w"))
		return err
	}},
	{"BatchDelete", putW, func(ctx context.Context, s sqlkv.Store) error {
		_, err := sqlkv.BatchDelete(ctx, s, [][]byte{[]byte("w")})
		return err
	}},
	{"DeletePrefix", putW, func(ctx context.Context, s sqlkv.Store) error {
		_, err := sqlkv.DeletePrefix(ctx, s, []byte("w"))
		return err
	}},
}

func putW(ctx context.Context, s sqlkv.Store) error {
	_, err := sqlkv.PutValue(ctx, s, []byte("w"), []byte("old"))
	return err
}

// Every write operation of package sqlkv made through a watchstore is
// published, whichever fast paths the wrapped store has (memory and SQLite
// have different ones): a write the Store has no method for reaches its
// Apply, never the wrapped store directly.
func TestEveryWriteIsPublished(t *testing.T) {
	for _, backend := range inProcess {
		for _, w := range writes {
			t.Run(backend+"/"+w.name, func(t *testing.T) {
				ctx := t.Context()
				s := open(t, backend)
				if w.setup != nil {
					if err := w.setup(ctx, s); err != nil {
						t.Fatal(err)
					}
				}
				sub, err := s.Watch(ctx, []byte("w"))
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				if err := w.write(ctx, s); err != nil {
					t.Fatalf("%s: %v", w.name, err)
				}
				// Published before the write returned: no waiting.
				b, err := sub.Take()
				if err != nil {
					t.Fatal(err)
				}
				if !b.Resync && !slices.ContainsFunc(b.Changes, func(c sqlkv.Change) bool { return string(c.Key) == "w" }) {
					t.Fatalf("%s through a watchstore over %s was not published (batch %+v)", w.name, backend, b)
				}
			})
		}
	}
}

// methods are every method of *watchstore.Store, each either a write that
// TestEveryWriteIsPublished covers or one that writes nothing. A method
// added to the Store fails this test until it is classified here (and, if
// it writes, publishes and is added to writes).
var methods = map[string]string{
	"Apply": "write", "BatchPut": "write", "DeletePrefix": "write",
	"Get": "read", "Range": "read", "RangeFunc": "read", "GetMany": "read", "Count": "read",
	"Watch": "feed", "Fence": "feed", "Ping": "lifecycle", "Close": "lifecycle", "Degraded": "state",
}

func TestMethodsAreClassified(t *testing.T) {
	typ := reflect.TypeFor[*watchstore.Store]()
	for i := range typ.NumMethod() {
		name := typ.Method(i).Name
		kind, ok := methods[name]
		if !ok {
			t.Errorf("(*watchstore.Store).%s is not classified: if it writes, it must publish and be in TestEveryWriteIsPublished", name)
			continue
		}
		if kind == "write" && !slices.ContainsFunc(writes, func(w writeOp) bool { return w.name == name }) {
			t.Errorf("write method %s is not in TestEveryWriteIsPublished", name)
		}
	}
}
