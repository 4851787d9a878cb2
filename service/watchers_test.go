package service_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service"
)

// openWatchers opens n WatchNodes streams and reads each to its
// SNAPSHOT_END; stop ends them.
func openWatchers(t *testing.T, e *env, n int) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var streams []*connect.ServerStreamForClient[smspb.WatchNodesResponse]
	stop = func() {
		cancel()
		for _, s := range streams {
			s.Close()
		}
		streams = nil
	}
	t.Cleanup(stop)
	for range n {
		stream, err := e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		streams = append(streams, stream)
		for receive(t, stream).GetKind() != smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
		}
	}
	return stop
}

// In SPEAR's layout the two stacks share one limit: a stream open on
// connect-go's counts against grpc-go's, and the other way round.
func TestMaxWatchersAcrossStacks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, watchableStore(t, "memory"), connectHTTP, func(c *service.Config) { c.MaxWatchers = 1 })
	e.register(t, nodeA, "")
	stop := openWatchers(t, e, 1) // on connect-go's stack
	defer stop()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := newClient(e, grpcGo).WatchNodes(ctx, &smspb.WatchNodesRequest{})
	if err == nil {
		for stream.Receive() {
		}
		err = stream.Err()
	}
	if got, want := connect.CodeOf(err), connect.CodeResourceExhausted; got != want {
		t.Fatalf("a stream on grpc-go's stack beyond the shared limit: %v, want %v", err, want)
	}
}

// Beyond --max-watchers a new stream is resource_exhausted; a slot frees
// when a stream ends.
func TestMaxWatchers(t *testing.T) {
	t.Parallel()
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, watchableStore(t, "memory"), p, func(c *service.Config) { c.MaxWatchers = 2 })
			e.register(t, nodeA, "")
			stopFirst := openWatchers(t, e, 1)
			stopSecond := openWatchers(t, e, 1)
			defer stopSecond()

			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			stream, err := e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
			if err == nil {
				for stream.Receive() {
				}
				err = stream.Err()
			}
			wantCode(t, err, connect.CodeResourceExhausted)

			// The server notices the first stream's end shortly after the
			// client cancels it; then the third is admitted.
			stopFirst()
			for {
				stream, err := e.client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
				if err == nil && stream.Receive() {
					stream.Close()
					break
				}
				if err == nil {
					err = stream.Err()
				}
				if connect.CodeOf(err) != connect.CodeResourceExhausted {
					t.Fatalf("watch after a slot freed: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// The memory of watch streams is given back when their clients leave: the
// live heap returns to (near) its baseline.
func TestWatcherMemoryIsReleased(t *testing.T) {
	e := newEnv(t, watchableStore(t, "memory"), connectHTTP, nil)
	for range 1000 {
		e.register(t, "", "")
	}
	baseline := heapInUse()
	stop := openWatchers(t, e, 50)
	during := heapInUse()
	stop()
	// The server ends each stream shortly after its client cancelled it.
	var after uint64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = heapInUse()
		if after < baseline+(during-baseline)/10 || time.Now().After(deadline) {
			break
		}
	}
	t.Logf("heap in use: %.1f MiB before, %.1f MiB with 50 watchers of 1,000 nodes, %.1f MiB after they left",
		float64(baseline)/(1<<20), float64(during)/(1<<20), float64(after)/(1<<20))
	if during <= baseline {
		t.Fatalf("the watchers took no memory (%d -> %d bytes): the test measures nothing", baseline, during)
	}
	if after >= baseline+(during-baseline)/10 {
		t.Errorf("heap in use %d bytes after the watchers left, want back within 10%% of their %d bytes of the %d baseline",
			after, during-baseline, baseline)
	}
}
