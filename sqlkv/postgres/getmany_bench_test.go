package postgres_test

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkGetManyPair reads two keys at once, a registry node's record and
// its heartbeat's shape, 16 goroutines: through the store's GetMany (one
// key = ANY($1) statement), and, as same-run baselines on the same pool,
// the two raw statements it could be: that one, and the pair-shaped
// key IN ($1, $2) it replaced. ns/op is the wall time of the three reads
// together; ns/read-<name> one read's mean latency among the 16 goroutines.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench GetManyPair -count 3 ./sqlkv/postgres/
func BenchmarkGetManyPair(b *testing.B) {
	s := open(b, storetest.PostgresDSN(b))
	const n = 1000
	value := kvtest.BenchValue()
	entries := make([]sqlkv.Entry, 0, 2*n)
	for i := range n {
		entries = append(entries,
			sqlkv.Entry{Key: fmt.Appendf(nil, "node:%04d", i), Value: value},
			sqlkv.Entry{Key: fmt.Appendf(nil, "heartbeat:%04d", i), Value: value[:64]})
	}
	if err := sqlkv.BatchPut(b.Context(), s, entries); err != nil {
		b.Fatal(err)
	}
	pair := func(i int) (node, heartbeat []byte) { return entries[2*(i%n)].Key, entries[2*(i%n)+1].Key }
	raw := func(query string, args func(k1, k2 []byte) []any) func(b *testing.B, i int) {
		stmt, err := s.DB().PrepareContext(b.Context(), query)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { stmt.Close() })
		return func(b *testing.B, i int) {
			rows, err := stmt.QueryContext(b.Context(), args(pair(i))...)
			if err != nil {
				b.Error(err)
				return
			}
			defer rows.Close()
			got := 0
			for rows.Next() {
				var k, v []byte
				var version int64
				if err := rows.Scan(&k, &v, &version); err != nil {
					b.Error(err)
					return
				}
				got++
			}
			if err := rows.Err(); err != nil || got != 2 {
				b.Errorf("read %d rows, %v; want 2", got, err)
			}
		}
	}
	variants := []struct {
		name string
		read func(b *testing.B, i int)
	}{
		{"store", func(b *testing.B, i int) {
			got, err := sqlkv.GetMany(b.Context(), s, sqlkvPair(pair(i))...)
			if err != nil || len(got) != 2 {
				b.Errorf("GetMany = %d entries, %v; want 2", len(got), err)
			}
		}},
		{"raw-any", raw(`SELECT key, value, version FROM kv WHERE key = ANY ($1::bytea[])`,
			func(k1, k2 []byte) []any { return []any{[][]byte{k1, k2}} })},
		{"raw-in-pair", raw(`SELECT key, value, version FROM kv WHERE key IN ($1, $2)`,
			func(k1, k2 []byte) []any { return []any{k1, k2} })},
	}
	// Interleaved: every iteration reads with each variant in turn (the
	// first rotating), so a load swing on the shared machine hits all three
	// alike; each one's mean latency is reported, and the ratios.
	var nanos [3]atomic.Int64
	b.SetParallelism(16 / max(1, runtime.GOMAXPROCS(0)))
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			for j := range variants {
				v := (i + j) % len(variants)
				start := time.Now()
				variants[v].read(b, i)
				nanos[v].Add(int64(time.Since(start)))
			}
			i += 7
		}
	})
	mean := func(v int) float64 { return float64(nanos[v].Load()) / float64(b.N) }
	for v, bm := range variants {
		b.ReportMetric(mean(v), "ns/read-"+bm.name)
	}
	b.ReportMetric(mean(1)/mean(2), "any/in-pair")
	b.ReportMetric(mean(0)/mean(2), "store/in-pair")
}

func sqlkvPair(k1, k2 []byte) [][]byte { return [][]byte{k1, k2} }
