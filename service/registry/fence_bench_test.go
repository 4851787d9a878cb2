package registry

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkViewGetNodeUnderWrites is GetNode from the view on SQLite, 16
// goroutines, 1,000 nodes, while 4 goroutines send heartbeats without
// pause: a read fence that waited for every write in flight would cost a
// read a SQLite commit here (see sqlkv/watchstore's inflight.go for why it
// need not). Its baseline, in the same run, is the view read without the
// fence under the same writes; the heartbeats done per read are reported
// as hb/op.
//
//	go test -run '^$' -bench ViewGetNodeUnderWrites -benchtime 2s ./service/registry/
func BenchmarkViewGetNodeUnderWrites(b *testing.B) {
	v, _ := openFilled(b, "sqlite", 1000)
	r := v.Nodes()
	run := func(b *testing.B, get func(ctx context.Context, id string) error) {
		ctx, cancel := context.WithCancel(b.Context())
		var beats atomic.Int64
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Go(func() {
				for i := w; ctx.Err() == nil; i += 4 {
					if _, err := r.Heartbeat(ctx, benchUUID(i%1000), nil); err == nil {
						beats.Add(1)
					}
				}
			})
		}
		b.ResetTimer()
		parallelReads(b, get)
		b.StopTimer()
		cancel()
		wg.Wait()
		b.ReportMetric(float64(beats.Load())/float64(b.N), "hb/op")
	}
	b.Run("view", func(b *testing.B) {
		run(b, func(ctx context.Context, id string) error { _, err := r.Get(ctx, id); return err })
	})
	b.Run("view-unfenced", func(b *testing.B) {
		run(b, func(ctx context.Context, id string) error {
			e := v.get(id)
			if e == nil {
				return ErrNotFound
			}
			_ = e.toNode()
			return nil
		})
	})
}

// BenchmarkViewHeartbeatSpread is heartbeat throughput on SQLite, 16
// goroutines each sending for nodes of its own (as agents do), so that no
// two writes in flight share a key; BenchmarkHeartbeat's goroutines walk
// the same nodes in step, which is the contended case.
//
//	go test -run '^$' -bench ViewHeartbeatSpread -cpu 16 ./service/registry/
func BenchmarkViewHeartbeatSpread(b *testing.B) {
	v, _ := openFilled(b, "sqlite", 1024)
	r := v.Nodes()
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		g := int(next.Add(1))
		for i := g; pb.Next(); i += 64 {
			if _, err := r.Heartbeat(b.Context(), benchUUID(i%1024), nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
