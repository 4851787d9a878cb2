package registry

import (
	"database/sql"
	"fmt"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkListPage reads one page of 500 nodes from the middle of 1,000
// and of 50,000: keyset pages cost the same however many nodes there are.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench ListPage ./service/registry/
func BenchmarkListPage(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, total := range []int{1000, 50000} {
			b.Run(fmt.Sprintf("%s/of=%d", backend, total), func(b *testing.B) {
				store := storetest.Open(b, backend)
				fillNodes(b, store, total)
				r := NewView(store).Nodes()
				// Start halfway: the token of the node before the middle.
				token := pageToken(newNodeFilterHash(b), benchUUID(total/2-1))
				b.ResetTimer()
				for b.Loop() {
					nodes, _, err := r.ListPage(b.Context(), ListOptions{PageSize: 500, PageToken: token})
					if err != nil || len(nodes) != 500 {
						b.Fatalf("ListPage = %d nodes, %v", len(nodes), err)
					}
				}
			})
		}
	}
}

func benchUUID(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }

func newNodeFilterHash(b *testing.B) uint32 {
	f, err := newNodeFilter(nil, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	return f.hash()
}

// fillNodes writes n nodes with heartbeat records, in batches.
func fillNodes(b *testing.B, store sqlkv.Store, n int) {
	b.Helper()
	const batch = 2000
	for lo := 0; lo < n; lo += batch {
		var entries []sqlkv.Entry
		for i := lo; i < min(n, lo+batch); i++ {
			id := benchUUID(i)
			entries = append(entries,
				sqlkv.Entry{Key: nodeKey(id), Value: encode(nodeRecord{IP: "10.0.0.1", Port: 8080, Status: StatusActive, RegisteredAt: 1, Metadata: map[string]string{"zone": "a"}})},
				sqlkv.Entry{Key: heartbeatKey(id), Value: encode(heartbeatRecord{LastHeartbeat: 1, HealthInfo: map[string]string{"cpu": "ok"}})},
			)
		}
		if err := sqlkv.BatchPut(b.Context(), store, entries); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHeartbeat is the heartbeat throughput, to compare Postgres with
// and without the change notification trigger (postgres-without-notify
// drops it).
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench Heartbeat -cpu 16 ./service/registry/
func BenchmarkHeartbeat(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres", "postgres-without-notify"} {
		b.Run(backend, func(b *testing.B) {
			var store sqlkv.Store
			if backend == "postgres-without-notify" {
				dsn := storetest.PostgresDSN(b)
				s, err := kvstore.Open(b.Context(), kvstore.Postgres(dsn))
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				db, err := sql.Open("pgx", dsn)
				if err != nil {
					b.Fatal(err)
				}
				defer db.Close()
				if _, err := db.ExecContext(b.Context(), "DROP TRIGGER kv_notify ON kv"); err != nil {
					b.Fatal(err)
				}
				store = s
			} else {
				store = storetest.Open(b, backend)
			}
			fillNodes(b, store, 1000)
			r := NewView(store).Nodes()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := r.Heartbeat(b.Context(), benchUUID(i%1000), nil); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	}
}
