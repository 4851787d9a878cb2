package kvtest

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// BenchmarkStore runs the store benchmarks; open as for TestStore but with
// *testing.B. The sub-benchmarks are serial and named Put, Get,
// Scan1000of100k, Batch100 and PutIf, so raw-SQL baselines can sit beside
// them under the same names.
func BenchmarkStore(b *testing.B, open func(b *testing.B) sqlkv.Store) {
	b.Run("Put", func(b *testing.B) { benchPut(b, open(b)) })
	b.Run("Get", func(b *testing.B) { benchGet(b, open(b)) })
	b.Run("Scan1000of100k", func(b *testing.B) { benchScan(b, open(b)) })
	b.Run("Batch100", func(b *testing.B) { benchBatch(b, open(b)) })
	b.Run("PutIf", func(b *testing.B) { benchPutIf(b, open(b)) })
}

// BenchKeys is the key space of the point benchmarks.
const BenchKeys = 10_000

// BenchValue returns the 256-byte value every benchmark writes; raw-SQL
// baselines use it too, so both sides move the same bytes.
func BenchValue() []byte {
	v := make([]byte, 256)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

// BenchKeySpace returns the BenchKeys keys of the point benchmarks.
func BenchKeySpace() [][]byte {
	keys := make([][]byte, BenchKeys)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "bench/%05d", i)
	}
	return keys
}

// preload writes every key with value in BatchPuts of 1,000.
func preload(b *testing.B, s sqlkv.Store, keys [][]byte, value []byte) {
	b.Helper()
	const chunk = 1_000
	for start := 0; start < len(keys); start += chunk {
		entries := make([]sqlkv.Entry, 0, chunk)
		for _, k := range keys[start:min(start+chunk, len(keys))] {
			entries = append(entries, sqlkv.Entry{Key: k, Value: value})
		}
		if err := sqlkv.BatchPut(b.Context(), s, entries); err != nil {
			b.Fatalf("preload: BatchPut: %v", err)
		}
	}
}

// benchPut overwrites keys of an existing key space: the upsert path.
func benchPut(b *testing.B, s sqlkv.Store) {
	keys, value := BenchKeySpace(), BenchValue()
	preload(b, s, keys, value)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := sqlkv.PutValue(b.Context(), s, keys[i%len(keys)], value); err != nil {
			b.Fatalf("Put: %v", err)
		}
		i++
	}
}

func benchGet(b *testing.B, s sqlkv.Store) {
	keys := BenchKeySpace()
	preload(b, s, keys, BenchValue())
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Get(b.Context(), keys[rng.IntN(len(keys))]); err != nil {
			b.Fatalf("Get: %v", err)
		}
	}
}

// benchScan scans one prefix of 1,000 keys in a store of 100,000.
func benchScan(b *testing.B, s sqlkv.Store) {
	const prefixes, perPrefix = 100, 1_000
	keys := make([][]byte, 0, prefixes*perPrefix)
	for p := range prefixes {
		for i := range perPrefix {
			keys = append(keys, fmt.Appendf(nil, "scan/%03d/%04d", p, i))
		}
	}
	preload(b, s, keys, BenchValue())
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		prefix := fmt.Appendf(nil, "scan/%03d/", rng.IntN(prefixes))
		entries, err := sqlkv.Scan(b.Context(), s, prefix)
		if err != nil {
			b.Fatalf("Scan: %v", err)
		}
		if len(entries) != perPrefix {
			b.Fatalf("Scan(%q) returned %d entries, want %d", prefix, len(entries), perPrefix)
		}
	}
}

// benchBatch writes 100 entries per BatchPut, cycling over the key space.
func benchBatch(b *testing.B, s sqlkv.Store) {
	const size = 100
	keys, value := BenchKeySpace(), BenchValue()
	preload(b, s, keys, value)
	batches := make([][]sqlkv.Entry, len(keys)/size)
	for i := range batches {
		batches[i] = make([]sqlkv.Entry, size)
		for j := range size {
			batches[i][j] = sqlkv.Entry{Key: keys[i*size+j], Value: value}
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := sqlkv.BatchPut(b.Context(), s, batches[i%len(batches)]); err != nil {
			b.Fatalf("BatchPut: %v", err)
		}
		i++
	}
}

// benchPutIf is a compare-and-swap without contention: Get, then a put
// conditional on the version read.
func benchPutIf(b *testing.B, s sqlkv.Store) {
	keys, value := BenchKeySpace(), BenchValue()
	preload(b, s, keys, value)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		e, err := s.Get(b.Context(), k)
		if err != nil {
			b.Fatalf("Get: %v", err)
		}
		if _, err := s.Apply(b.Context(), sqlkv.Put(k, value).If(sqlkv.IfVersion(e.Version))); err != nil {
			b.Fatalf("Apply(Put.If(IfVersion)): %v", err)
		}
		i++
	}
}
