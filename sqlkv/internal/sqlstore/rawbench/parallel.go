package rawbench

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv/internal/sqlstore"
)

// clients is kvtest.Clients: goroutines of the concurrent benchmarks.
const clients = 16

// BenchmarkConcurrent is the baseline of kvtest.BenchmarkConcurrent:
// PutPar16 as one upsert statement per call (autocommit: one commit each),
// GetPar16 as one point read per call, each from 16 goroutines.
func BenchmarkConcurrent(b *testing.B, d sqlstore.Dialect, open Open) {
	b.Run("PutPar16", func(b *testing.B) {
		reader, writer := open(b)
		r := newRaw(b, d, reader, writer)
		keys, value := benchKeySpace(), benchValue()
		r.preload(b, keys, value)
		parallel(b, func(i int) error {
			var v int64
			return r.put.QueryRowContext(b.Context(), keys[i], value, time.Now().UnixNano()).Scan(&v)
		})
	})
	b.Run("GetPar16", func(b *testing.B) {
		reader, writer := open(b)
		r := newRaw(b, d, reader, writer)
		keys := benchKeySpace()
		r.preload(b, keys, benchValue())
		parallel(b, func(i int) error {
			var value []byte
			var version int64
			return r.get.QueryRowContext(b.Context(), keys[i]).Scan(&value, &version)
		})
	})
}

func parallel(b *testing.B, fn func(i int) error) {
	b.Helper()
	b.SetParallelism((clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(next.Add(1)), 7))
		for pb.Next() {
			if err := fn(rng.IntN(benchKeys)); err != nil {
				b.Errorf("%v", err)
				return
			}
		}
	})
}
