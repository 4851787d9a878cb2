package memory_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/memory"
)

func open(t testing.TB) sqlkv.Store {
	s := memory.New()
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) sqlkv.Store { return open(t) })
}

func BenchmarkStore(b *testing.B) {
	kvtest.BenchmarkStore(b, func(b *testing.B) sqlkv.Store { return open(b) })
}

func TestZeroValue(t *testing.T) {
	ctx := context.Background()
	var s memory.Store
	if _, err := s.Get(ctx, []byte("k")); !errors.Is(err, sqlkv.ErrNotFound) {
		t.Fatalf("Get on zero Store: err = %v, want ErrNotFound", err)
	}
	if n, err := s.Count(ctx, nil); err != nil || n != 0 {
		t.Fatalf("Count on zero Store = %d, %v; want 0, nil", n, err)
	}
	v, err := s.Put(ctx, []byte("k"), []byte("v"))
	if err != nil {
		t.Fatalf("Put on zero Store: %v", err)
	}
	e, err := s.Get(ctx, []byte("k"))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got, want := string(e.Value), "v"; got != want {
		t.Fatalf("Get = %q, want %q", got, want)
	}
	if got, want := e.Version, v; got != want {
		t.Fatalf("Get version = %d, want %d", got, want)
	}
}

// BenchmarkScan1000 shows that a prefix scan costs O(log n + k): the time per
// scan of 1,000 keys should barely move as the store grows a thousandfold.
func BenchmarkScan1000(b *testing.B) {
	ctx := context.Background()
	for _, total := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("total=%d", total), func(b *testing.B) {
			s := memory.New()
			b.Cleanup(func() { s.Close() })
			value := make([]byte, 64)
			batch := make([]sqlkv.Entry, 0, 1000)
			for i := range total {
				key := fmt.Appendf(nil, "p%04d/%04d", i/1000, i%1000)
				batch = append(batch, sqlkv.Entry{Key: key, Value: value})
				if len(batch) == cap(batch) {
					if err := s.BatchPut(ctx, batch); err != nil {
						b.Fatal(err)
					}
					batch = batch[:0]
				}
			}
			prefix := fmt.Appendf(nil, "p%04d/", total/1000/2)
			for b.Loop() {
				entries, err := sqlkv.Scan(ctx, s, prefix)
				if err != nil {
					b.Fatal(err)
				}
				if len(entries) != 1000 {
					b.Fatalf("Scan returned %d entries, want 1000", len(entries))
				}
			}
		})
	}
}

// TestEmptyValueIsNotNil pins the documented convention: an empty value
// reads back as a non-nil, zero-length slice.
func TestEmptyValueIsNotNil(t *testing.T) {
	s := open(t)
	if _, err := sqlkv.PutValue(t.Context(), s, []byte("k"), nil); err != nil {
		t.Fatalf("Put: %v", err)
	}
	e, err := s.Get(t.Context(), []byte("k"))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if e.Value == nil || len(e.Value) != 0 {
		t.Fatalf("Get of an empty value = %#v, want a non-nil empty slice", e.Value)
	}
}

func TestGetMany(t *testing.T) {
	kvtest.TestGetMany(t, func(t *testing.T) sqlkv.Store { return open(t) })
}
