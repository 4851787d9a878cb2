package rawbench

import (
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv/internal/sqlstore"
	"github.com/spear-next/sms/sqlkv/kvtest"
)

// BenchmarkConcurrent is the baseline of kvtest.BenchmarkConcurrent:
// PutPar16 as one upsert statement per call (autocommit: one commit each),
// GetPar16 as one point read per call, each from 16 goroutines.
func BenchmarkConcurrent(b *testing.B, d sqlstore.Dialect, open Open) {
	b.Run("PutPar16", func(b *testing.B) {
		reader, writer := open(b)
		r := newRaw(b, d, reader, writer)
		keys, value := kvtest.BenchKeySpace(), kvtest.BenchValue()
		r.preload(b, keys, value)
		kvtest.RunParallel(b, func(i int) error {
			var v int64
			return r.put.QueryRowContext(b.Context(), keys[i], value, time.Now().UnixNano()).Scan(&v)
		})
	})
	b.Run("GetPar16", func(b *testing.B) {
		reader, writer := open(b)
		r := newRaw(b, d, reader, writer)
		keys := kvtest.BenchKeySpace()
		r.preload(b, keys, kvtest.BenchValue())
		kvtest.RunParallel(b, func(i int) error {
			var value []byte
			var version int64
			return r.get.QueryRowContext(b.Context(), keys[i]).Scan(&value, &version)
		})
	})
}
