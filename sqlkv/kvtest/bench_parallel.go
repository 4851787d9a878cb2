package kvtest

import (
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// Clients is how many goroutines the concurrent benchmarks run, whatever
// GOMAXPROCS: the fleet's hot path is many clients at once.
const Clients = 16

// BenchmarkConcurrent runs the hot-path writes and reads with Clients
// goroutines at once: PutPar16 (upsert), HeartbeatPar16 (the registry's
// heartbeat: Apply of a check that one key exists and a put of another) and
// GetPar16. Raw-SQL baselines sit beside them under the same names.
func BenchmarkConcurrent(b *testing.B, open func(b *testing.B) sqlkv.Store) {
	b.Run("PutPar16", func(b *testing.B) {
		s := open(b)
		keys, value := BenchKeySpace(), BenchValue()
		preload(b, s, keys, value)
		RunParallel(b, func(i int) error {
			_, err := sqlkv.PutValue(b.Context(), s, keys[i%len(keys)], value)
			return err
		})
	})
	b.Run("HeartbeatPar16", func(b *testing.B) {
		s := open(b)
		keys, value := BenchKeySpace(), BenchValue()
		preload(b, s, keys, value)
		hb := make([][]byte, len(keys))
		for i, k := range keys {
			hb[i] = append([]byte("hb/"), k...)
		}
		RunParallel(b, func(i int) error {
			_, err := s.Apply(b.Context(),
				sqlkv.Check(keys[i%len(keys)], sqlkv.IfExists()),
				sqlkv.Put(hb[i%len(keys)], value[:64]))
			return err
		})
	})
	b.Run("GetPar16", func(b *testing.B) {
		s := open(b)
		keys := BenchKeySpace()
		preload(b, s, keys, BenchValue())
		RunParallel(b, func(i int) error {
			_, err := s.Get(b.Context(), keys[i%len(keys)])
			return err
		})
	})
}

// RunParallel runs fn from Clients goroutines, each with random keys
// indexes i in [0, BenchKeys); raw-SQL baselines drive their loops with it
// too.
func RunParallel(b *testing.B, fn func(i int) error) {
	b.Helper()
	b.SetParallelism((Clients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(uint64(next.Add(1)), 7))
		for pb.Next() {
			if err := fn(rng.IntN(BenchKeys)); err != nil {
				b.Errorf("%v", err)
				return
			}
		}
	})
}
