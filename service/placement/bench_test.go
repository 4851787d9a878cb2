package placement_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// BenchmarkPlaceInvocation places over 10,000 active nodes with resource
// reports (100 of them penalised) and reports, besides ns/op, calls/s (one
// caller), the p99 latency, and the ratio to the store scans alone: each
// iteration also times the range reads a Place needs (nodes, heartbeats,
// resources, penalties) without decoding or ranking, interleaved, so the
// ratio compares like with like on a shared machine. Place reads the whole
// registry per call until the in-memory registry view serves it.
//
//	KV_TEST_POSTGRES_DSN=... go test -run '^$' -bench PlaceInvocation -benchtime 3s ./service/placement/
func BenchmarkPlaceInvocation(b *testing.B) {
	const nodes = 10000
	for _, backend := range storetest.Backends {
		b.Run(fmt.Sprintf("%s/nodes=%d", backend, nodes), func(b *testing.B) {
			store := watchable(storetest.Open(b, backend))
			c := testutil.NewClock(time.Now())
			r := newReplica(b, store, c)
			ids := seed(b, r, nodes)
			for _, id := range ids[:100] {
				if err := r.placer.Report(b.Context(), placement.Report{DecisionID: "d", RequestID: "r", TaskID: "t",
					NodeUUID: id, Outcome: placement.OutcomeTimeout}); err != nil {
					b.Fatal(err)
				}
			}
			// The key layout of package registry and of the placer (see
			// their package docs): the reads Place cannot avoid today.
			prefixes := [][]byte{[]byte("node:"), []byte("heartbeat:"), []byte("resource:"), []byte("placement-penalty:")}
			req := placement.Request{RequestID: "r", TaskID: "t"}
			var place, scan []time.Duration
			b.ResetTimer()
			for b.Loop() {
				start := time.Now()
				d, err := r.placer.Place(b.Context(), req)
				if err != nil || len(d.Candidates) != placement.DefaultMaxCandidates {
					b.Fatalf("Place = %d candidates, %v", len(d.Candidates), err)
				}
				place = append(place, time.Since(start))
				start = time.Now()
				for _, p := range prefixes {
					if _, err := sqlkv.Scan(b.Context(), store, p); err != nil {
						b.Fatal(err)
					}
				}
				scan = append(scan, time.Since(start))
			}
			b.StopTimer()
			slices.Sort(place)
			mean := func(ds []time.Duration) float64 {
				var sum time.Duration
				for _, d := range ds {
					sum += d
				}
				return float64(sum) / float64(len(ds))
			}
			b.ReportMetric(float64(place[len(place)*99/100])/1e6, "p99-ms")
			b.ReportMetric(1e9/mean(place), "calls/s")
			b.ReportMetric(mean(place)/mean(scan), "x-scan")
		})
	}
}

// seed registers n nodes with resource reports of varied load, with 32
// writers, and returns their uuids.
func seed(b *testing.B, r *replica, n int) []string {
	b.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for w := range 32 {
		wg.Go(func() {
			for i := w; i < n; i += 32 {
				node, err := r.nodes.Register(context.Background(), registry.Node{IPAddress: "10.0.0.1", Port: 8080,
					Metadata: map[string]string{"zone": fmt.Sprint(i % 4)}})
				if err == nil {
					ids[i] = node.UUID
					_, err = r.resources.Update(context.Background(), registry.Resource{NodeUUID: node.UUID,
						CPUUsagePercent: float64(i % 100), MemoryUsagePercent: float64(i % 77), LoadAverage1m: float64(i%9) / 2})
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return ids
}
