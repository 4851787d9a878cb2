package registry

import (
	"testing"

	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkGetNode is the GetNode throughput: two point reads (node and
// heartbeat record) per call.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench GetNode -cpu 16 ./service/registry/
func BenchmarkGetNode(b *testing.B) {
	for _, backend := range []string{"sqlite", "postgres"} {
		b.Run(backend, func(b *testing.B) {
			store := storetest.Open(b, backend)
			fillNodes(b, store, 1000)
			r := NewView(store).Nodes()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := r.Get(b.Context(), benchUUID(i%1000)); err != nil {
						b.Error(err)
						return
					}
					i += 7
				}
			})
		})
	}
}
