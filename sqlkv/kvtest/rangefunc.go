package kvtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// rangeFuncEntries reads opts with sqlkv.RangeFunc, copying each entry it is given
// (they are valid only during the call).
func rangeFuncEntries(ctx context.Context, s sqlkv.Store, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
	var out []sqlkv.Entry
	err := sqlkv.RangeFunc(ctx, s, opts, func(e sqlkv.Entry) error {
		c := sqlkv.Entry{Key: bytes.Clone(e.Key), Version: e.Version}
		if e.Value != nil {
			c.Value = bytes.Clone(e.Value)
			if c.Value == nil {
				c.Value = []byte{}
			}
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// testRangeFunc checks sqlkv.RangeFunc (the store's RangeStreamer, or the
// derived form over Range): the entries Range returns for the same options,
// in the same order, also over more entries than one chunk of the derived
// form with a key of MaxKeySize at a chunk's end; an empty value that is
// not nil; fn's error returned as is, fn not called again; Range's errors.
func testRangeFunc(t *testing.T, s sqlkv.Store) {
	ctx := t.Context()
	rangeTable(t, s, "RangeFunc", func(ctx context.Context, opts sqlkv.RangeOptions) ([]sqlkv.Entry, error) {
		return rangeFuncEntries(ctx, s, opts)
	})

	t.Run("ManyEntries", func(t *testing.T) {
		// 999 keys, then one of MaxKeySize (the 1000th), then 201 more.
		var keys []string
		for i := range 1201 {
			keys = append(keys, fmt.Sprintf("m/%04d", i))
		}
		keys[999] = "m/0999" + strings.Repeat("x", sqlkv.MaxKeySize-len("m/0999"))
		var entries []sqlkv.Entry
		for _, k := range keys {
			entries = append(entries, sqlkv.Entry{Key: b(k), Value: b(valueOf(k))})
		}
		if err := sqlkv.BatchPut(ctx, s, entries); err != nil {
			t.Fatal(err)
		}
		for _, opts := range []sqlkv.RangeOptions{
			sqlkv.PrefixRange(b("m/")),
			{Start: b("m/")},
			{Start: b("m/"), Limit: 1000},
			{Start: b("m/"), Limit: 1001},
			{Start: b("m/0500"), End: b("m/1100"), Limit: 550},
			{Start: b("m/"), End: b("m0"), Reverse: true},
			{Start: b("m/"), End: b("m0"), Reverse: true, Limit: 202},
			{Start: b("m/"), End: b("m0"), Reverse: true, KeysOnly: true, Limit: 1100},
		} {
			want, err := s.Range(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			got, err := rangeFuncEntries(ctx, s, opts)
			if err != nil {
				t.Fatalf("RangeFunc(%s): %v", describe(opts), err)
			}
			if !slices.EqualFunc(got, want, func(a, b sqlkv.Entry) bool {
				return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value) && (a.Value == nil) == (b.Value == nil) && a.Version == b.Version
			}) {
				t.Fatalf("RangeFunc(%s): %d entries, Range %d; first keys %.12q, %.12q", describe(opts), len(got), len(want), entryKeys(got[:min(3, len(got))]), entryKeys(want[:min(3, len(want))]))
			}
		}
	})

	t.Run("EmptyValue", func(t *testing.T) {
		put(t, s, "e/empty", "")
		err := sqlkv.RangeFunc(ctx, s, sqlkv.PrefixRange(b("e/")), func(e sqlkv.Entry) error {
			if e.Value == nil || len(e.Value) != 0 {
				t.Errorf("value of %q = %#v, want empty, not nil", e.Key, e.Value)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("StopsOnError", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := sqlkv.RangeFunc(ctx, s, sqlkv.PrefixRange(b("m/")), func(sqlkv.Entry) error {
			calls++
			if calls == 3 {
				return stop
			}
			return nil
		})
		if err != stop || calls != 3 {
			t.Fatalf("RangeFunc with fn failing on the third entry = %v after %d calls, want %v (as is) after 3", err, calls, stop)
		}
	})

	t.Run("Errors", func(t *testing.T) {
		fn := func(sqlkv.Entry) error { return nil }
		long := b(strings.Repeat("k", sqlkv.MaxKeySize+1))
		for _, opts := range []sqlkv.RangeOptions{{Start: long}, {End: long}} {
			if err := sqlkv.RangeFunc(ctx, s, opts, fn); !errors.Is(err, sqlkv.ErrKeyTooLarge) {
				t.Errorf("RangeFunc with a bound of %d bytes = %v, want ErrKeyTooLarge", len(long), err)
			}
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		if err := sqlkv.RangeFunc(cancelled, s, sqlkv.PrefixRange(b("m/")), fn); err == nil {
			t.Error("RangeFunc with a cancelled context = nil, want an error")
		}
	})
}

func describe(o sqlkv.RangeOptions) string {
	return fmt.Sprintf("{Start %.8q End %.8q Limit %d Reverse %v KeysOnly %v}", o.Start, o.End, o.Limit, o.Reverse, o.KeysOnly)
}
