package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/spear-next/sms/sqlkv/internal/sqlstore/rawbench"
)

// BenchmarkRawSQL is the baseline of BenchmarkStore: the same work with the
// same statements, driver and pool settings, straight through database/sql.
func BenchmarkRawSQL(b *testing.B) {
	for _, sync := range []string{SynchronousNormal, SynchronousFull} {
		b.Run("sync="+sync, func(b *testing.B) {
			open := func(b *testing.B) (*sql.DB, *sql.DB) {
				s, err := Open(b.Context(), filepath.Join(b.TempDir(), "kv.db"), Options{Synchronous: sync})
				if err != nil {
					b.Fatalf("Open: %v", err)
				}
				b.Cleanup(func() { s.Close() })
				return s.reader, s.writer
			}
			rawbench.Benchmark(b, dialect, open)
			rawbench.BenchmarkConcurrent(b, dialect, open)
		})
	}
}
