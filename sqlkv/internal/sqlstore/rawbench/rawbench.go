// Package rawbench is the baseline for the SQL backends' benchmarks: the work
// of kvtest.BenchmarkStore's sub-benchmarks (same names, same data) done with
// a dialect's own statements directly through database/sql, with no store in
// between. A backend runs it next to kvtest.BenchmarkStore, on databases
// opened with its own driver and pool settings, so the ratio of the two is the
// store's overhead.
package rawbench

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/spear-next/sms/sqlkv/internal/sqlstore"
	"github.com/spear-next/sms/sqlkv/kvtest"
)

// Open returns the reader and writer databases of a new, empty, migrated
// store (the same *sql.DB twice where the backend has one pool).
type Open func(b *testing.B) (reader, writer *sql.DB)

// Benchmark runs Put, Get, Scan1000of100k, Batch100 and PutIf with d's
// statements.
func Benchmark(b *testing.B, d sqlstore.Dialect, open Open) {
	run := func(name string, fn func(b *testing.B, r *raw)) {
		b.Run(name, func(b *testing.B) {
			reader, writer := open(b)
			fn(b, newRaw(b, d, reader, writer))
		})
	}
	run("Put", benchPut)
	run("Get", benchGet)
	run("Scan1000of100k", benchScan)
	run("Batch100", benchBatch)
	run("PutIf", benchPutIf)
}

// raw holds the statements the benchmarks use, prepared like the store's.
type raw struct {
	d                                 sqlstore.Dialect
	writer                            *sql.DB
	get, rangeFromTo, put, putVersion *sql.Stmt
	putMany                           *sql.Stmt // nil if the dialect has none
}

func newRaw(b *testing.B, d sqlstore.Dialect, reader, writer *sql.DB) *raw {
	prep := func(db *sql.DB, q string) *sql.Stmt {
		stmt, err := db.Prepare(q)
		if err != nil {
			b.Fatalf("prepare: %v", err)
		}
		b.Cleanup(func() { stmt.Close() })
		return stmt
	}
	var putMany *sql.Stmt
	if d.Queries.PutMany != "" {
		putMany = prep(writer, d.Queries.PutMany)
	}
	return &raw{
		putMany:     putMany,
		d:           d,
		writer:      writer,
		get:         prep(reader, d.Queries.Get),
		rangeFromTo: prep(reader, d.Queries.RangeFromTo),
		put:         prep(writer, d.Queries.Put),
		putVersion:  prep(writer, d.Queries.PutIfVersion),
	}
}

// batch upserts keys with value in one transaction, in one statement if the
// dialect has PutMany (keys are sorted and distinct here, as the store
// makes them).
func (r *raw) batch(b *testing.B, keys [][]byte, value []byte) {
	ctx := b.Context()
	tx, err := r.writer.BeginTx(ctx, nil)
	if err != nil {
		b.Fatalf("begin: %v", err)
	}
	defer tx.Rollback()
	at := time.Now().UnixNano()
	if r.putMany != nil {
		values := make([][]byte, len(keys))
		for i := range values {
			values[i] = value
		}
		if _, err := tx.StmtContext(ctx, r.putMany).ExecContext(ctx, keys, values, at); err != nil {
			b.Fatalf("put many: %v", err)
		}
	} else {
		put := tx.StmtContext(ctx, r.put)
		for _, k := range keys {
			var v int64
			if err := put.QueryRowContext(ctx, k, value, at).Scan(&v); err != nil {
				b.Fatalf("put: %v", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatalf("commit: %v", err)
	}
}

func (r *raw) preload(b *testing.B, keys [][]byte, value []byte) {
	for start := 0; start < len(keys); start += 1_000 {
		r.batch(b, keys[start:min(start+1_000, len(keys))], value)
	}
}

func benchPut(b *testing.B, r *raw) {
	keys, value := kvtest.BenchKeySpace(), kvtest.BenchValue()
	r.preload(b, keys, value)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		var v int64
		if err := r.put.QueryRowContext(b.Context(), keys[i%len(keys)], value, time.Now().UnixNano()).Scan(&v); err != nil {
			b.Fatalf("put: %v", err)
		}
		i++
	}
}

func benchGet(b *testing.B, r *raw) {
	keys := kvtest.BenchKeySpace()
	r.preload(b, keys, kvtest.BenchValue())
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		var value []byte
		var version int64
		if err := r.get.QueryRowContext(b.Context(), keys[rng.IntN(len(keys))]).Scan(&value, &version); err != nil {
			b.Fatalf("get: %v", err)
		}
	}
}

func benchScan(b *testing.B, r *raw) {
	const prefixes, perPrefix = 100, 1_000
	keys := make([][]byte, 0, prefixes*perPrefix)
	for p := range prefixes {
		for i := range perPrefix {
			keys = append(keys, fmt.Appendf(nil, "scan/%03d/%04d", p, i))
		}
	}
	r.preload(b, keys, kvtest.BenchValue())
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		p := rng.IntN(prefixes)
		lo, hi := fmt.Appendf(nil, "scan/%03d/", p), fmt.Appendf(nil, "scan/%03d0", p) // '/'+1 == '0'
		rows, err := r.rangeFromTo.QueryContext(b.Context(), lo, hi, r.d.NoLimit)
		if err != nil {
			b.Fatalf("scan: %v", err)
		}
		type entry struct {
			key, value []byte
			version    int64
		}
		var entries []entry
		for rows.Next() {
			var e entry
			if err := rows.Scan(&e.key, &e.value, &e.version); err != nil {
				b.Fatalf("scan: %v", err)
			}
			entries = append(entries, e)
		}
		if err := rows.Err(); err != nil {
			b.Fatalf("scan: %v", err)
		}
		rows.Close()
		if len(entries) != perPrefix {
			b.Fatalf("scan returned %d entries, want %d", len(entries), perPrefix)
		}
	}
}

func benchBatch(b *testing.B, r *raw) {
	const size = 100
	keys, value := kvtest.BenchKeySpace(), kvtest.BenchValue()
	r.preload(b, keys, value)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		start := (i * size) % len(keys)
		r.batch(b, keys[start:start+size], value)
		i++
	}
}

// benchPutIf is a read, then the conditional update on its own: a single-op
// Apply needs no transaction.
func benchPutIf(b *testing.B, r *raw) {
	keys, value := kvtest.BenchKeySpace(), kvtest.BenchValue()
	r.preload(b, keys, value)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := keys[i%len(keys)]
		var old []byte
		var version int64
		if err := r.get.QueryRowContext(b.Context(), k).Scan(&old, &version); err != nil {
			b.Fatalf("get: %v", err)
		}
		var v int64
		if err := r.putVersion.QueryRowContext(b.Context(), k, value, time.Now().UnixNano(), version).Scan(&v); err != nil {
			b.Fatalf("put if version: %v", err)
		}
		i++
	}
}
