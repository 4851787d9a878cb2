package sqlite_test

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// fuzzKeys splits data into keys: each starts with a length byte (mod 8),
// so keys may hold any byte, 0x00 and 0xFF included.
func fuzzKeys(data []byte) [][]byte {
	var keys [][]byte
	for len(data) > 0 {
		n := min(int(data[0]%8), len(data)-1)
		keys = append(keys, bytes.Clone(data[1:1+n]))
		data = data[1+n:]
	}
	return keys
}

// model answers a range query over a sorted, de-duplicated key list by brute
// force, as the sqlkv.Store contract describes it.
func model(keys [][]byte, opts sqlkv.RangeOptions) [][]byte {
	var out [][]byte
	for _, k := range keys {
		if bytes.Compare(k, opts.Start) >= 0 && (opts.End == nil || bytes.Compare(k, opts.End) < 0) {
			out = append(out, k)
		}
	}
	if opts.Reverse {
		slices.Reverse(out)
	}
	if opts.Limit > 0 && len(out) > opts.Limit {
		out = out[:opts.Limit]
	}
	return out
}

func entryKeys(es []sqlkv.Entry) [][]byte {
	out := [][]byte{}
	for _, e := range es {
		out = append(out, e.Key)
	}
	return out
}

// FuzzRangeDifferential stores a fuzzed set of keys in a SQLite store and a
// memory store and requires Range, Keys, Scan and Count to agree with each
// other and with a brute-force model, for fuzzed bounds, limits, directions
// and prefixes; and PrefixEnd to bound exactly the keys with the prefix.
// Seeds: testdata/fuzz/FuzzRangeDifferential.
func FuzzRangeDifferential(f *testing.F) {
	f.Add([]byte("\x01a\x02ab\x02a\xff\x01\xff\x02\xff\xff\x00\x01b"), []byte("a"), []byte("b"), false, []byte("a"), 2, true, false)
	f.Add([]byte("\x03a%b\x02a_\x01\\\x02a\x00"), []byte(""), []byte(""), true, []byte("\xff"), 0, false, true)
	ctx := context.Background()
	lite, err := sqlite.Open(ctx, filepath.Join(f.TempDir(), "fuzz.db"), sqlite.Options{Synchronous: sqlite.SynchronousNormal})
	if err != nil {
		f.Fatal(err)
	}
	defer lite.Close()
	f.Fuzz(func(t *testing.T, keyData, start, end []byte, noEnd bool, prefix []byte, limit int, reverse, keysOnly bool) {
		if len(start) > sqlkv.MaxKeySize || len(end) > sqlkv.MaxKeySize || len(prefix) > sqlkv.MaxKeySize {
			return // ErrKeyTooLarge, tested by the conformance suite
		}
		keys := fuzzKeys(keyData)
		mem := memory.New()
		if _, err := lite.DeletePrefix(ctx, nil); err != nil {
			t.Fatal(err)
		}
		var entries []sqlkv.Entry
		for _, k := range keys {
			entries = append(entries, sqlkv.Entry{Key: k, Value: []byte("v")})
		}
		for _, s := range []sqlkv.Store{mem, lite} {
			if err := sqlkv.BatchPut(ctx, s, entries); err != nil {
				t.Fatal(err)
			}
		}
		slices.SortFunc(keys, bytes.Compare)
		keys = slices.CompactFunc(keys, bytes.Equal)

		opts := sqlkv.RangeOptions{Start: start, End: end, Limit: limit % 16, Reverse: reverse, KeysOnly: keysOnly}
		if noEnd {
			opts.End = nil
		}
		want := model(keys, opts)
		for name, s := range map[string]sqlkv.Store{"memory": mem, "sqlite": lite} {
			got, err := s.Range(ctx, opts)
			if err != nil {
				t.Fatalf("%s: Range(%+v): %v", name, opts, err)
			}
			if gk := entryKeys(got); !slices.EqualFunc(gk, want, bytes.Equal) && len(gk)+len(want) > 0 {
				t.Fatalf("%s: Range(%+v) = %q, want %q", name, opts, gk, want)
			}

			byPrefix := model(keys, sqlkv.PrefixRange(prefix))
			ks, err := sqlkv.Keys(ctx, s, prefix)
			if err != nil {
				t.Fatalf("%s: Keys(%q): %v", name, prefix, err)
			}
			if !slices.EqualFunc(ks, byPrefix, bytes.Equal) {
				t.Fatalf("%s: Keys(%q) = %q, want %q", name, prefix, ks, byPrefix)
			}
			es, err := sqlkv.Scan(ctx, s, prefix)
			if err != nil {
				t.Fatalf("%s: Scan(%q): %v", name, prefix, err)
			}
			if sk := entryKeys(es); !slices.EqualFunc(sk, byPrefix, bytes.Equal) && len(sk)+len(byPrefix) > 0 {
				t.Fatalf("%s: Scan(%q) = %q, want %q", name, prefix, sk, byPrefix)
			}
			n, err := sqlkv.Count(ctx, s, prefix)
			if err != nil || n != int64(len(byPrefix)) {
				t.Fatalf("%s: Count(%q) = %d, %v; want %d", name, prefix, n, err, len(byPrefix))
			}
		}

		// PrefixEnd bounds exactly the keys that start with prefix.
		pend := sqlkv.PrefixEnd(prefix)
		for _, k := range keys {
			in := bytes.Compare(k, prefix) >= 0 && (pend == nil || bytes.Compare(k, pend) < 0)
			if in != bytes.HasPrefix(k, prefix) {
				t.Fatalf("PrefixEnd(%q) = %q: key %q in range = %v, has prefix = %v", prefix, pend, k, in, !in)
			}
		}
	})
}
