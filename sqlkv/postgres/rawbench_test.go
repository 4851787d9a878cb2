package postgres_test

import (
	"database/sql"
	"testing"

	"github.com/spear-next/sms/sqlkv/internal/sqlstore/rawbench"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkRawSQL is the baseline of BenchmarkStore: the same work with the
// same statements, driver and pool settings, straight through database/sql.
func BenchmarkRawSQL(b *testing.B) {
	open := func(b *testing.B) (*sql.DB, *sql.DB) {
		s := open(b, storetest.PostgresDSN(b))
		return s.DB(), s.DB()
	}
	rawbench.Benchmark(b, postgres.Dialect, open)
	rawbench.BenchmarkConcurrent(b, postgres.Dialect, open)
}
