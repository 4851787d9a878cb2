package registry

import (
	"os"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/sqlite"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// BenchmarkViewLoadFile loads the view of the SQLite file at
// SMS_BENCH_LOAD_DB (seeded beforehand, e.g. by smsbench --workload seed;
// the benchmark is skipped without it), as cmd/sms does at start, and
// reports the CPU-seconds and the live heap per node. For a profile of the
// load:
//
//	SMS_BENCH_LOAD_DB=/tmp/1m.db go test -run '^$' -bench ViewLoadFile -benchtime 1x -cpuprofile cpu.prof ./service/registry/
func BenchmarkViewLoadFile(b *testing.B) {
	path := os.Getenv("SMS_BENCH_LOAD_DB")
	if path == "" {
		b.Skip("SMS_BENCH_LOAD_DB is not set")
	}
	benchViewLoad(b, func() (sqlkv.Store, func()) {
		store, err := sqlite.Open(b.Context(), path, sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return watchstore.New(store), func() { store.Close() }
	})
}
