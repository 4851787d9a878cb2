package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// seedUUID is the uuid of seeded node i: deterministic, so that a later run
// against a server on the seeded store (--register none) knows the fleet,
// and in key order.
func seedUUID(i int) string { return fmt.Sprintf("5eed0000-0000-4000-8000-%012d", i) }

func seedIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = seedUUID(i)
	}
	return ids
}

// seedBatch is how many nodes one BatchPut writes (three records each).
const seedBatch = 2000

// seed writes c.nodes nodes, each with a heartbeat at the current time and
// a resource report, straight into store with registry.BulkPut, seedBatch
// nodes per BatchPut: not through the RPCs, so no validation of requests,
// no group commit of single writes and no per-node round trip. It is the
// fast way to give a benchmark a big fleet; a server started on the store
// afterwards sees ordinary registered nodes.
func seed(ctx context.Context, store sqlkv.Store, c config, out io.Writer) ([]string, error) {
	ids := seedIDs(c.nodes)
	start := time.Now()
	now := start.UTC()
	nodes := make([]registry.Node, 0, seedBatch)
	res := make([]registry.Resource, 0, seedBatch)
	rng := rand.New(rand.NewPCG(1, 1))
	for lo := 0; lo < len(ids); lo += seedBatch {
		nodes, res = nodes[:0], res[:0]
		for _, id := range ids[lo:min(len(ids), lo+seedBatch)] {
			nodes = append(nodes, registry.Node{
				UUID: id, IPAddress: "10.0.0.1", Port: 8080, HTTPPort: 8081, Status: registry.StatusActive,
				RegisteredAt: now, LastHeartbeat: now,
				Metadata: map[string]string{"zone": "a", "rack": "r1"}, HealthInfo: health,
			})
			res = append(res, registry.Resource{
				CPUUsagePercent: rng.Float64() * 100, MemoryUsagePercent: rng.Float64() * 100,
				TotalMemoryBytes: 64 << 30, UsedMemoryBytes: 27 << 30, AvailableMemoryBytes: 37 << 30,
				DiskUsagePercent: 61, TotalDiskBytes: 1 << 40, UsedDiskBytes: 600 << 30,
				NetworkRxBytesPerSec: 1 << 20, NetworkTxBytesPerSec: 2 << 20,
				LoadAverage1m: 1.5, LoadAverage5m: 1.2, LoadAverage15m: 1.0, UpdatedAt: now,
			})
		}
		if err := registry.BulkPut(ctx, store, nodes, res); err != nil {
			return nil, fmt.Errorf("seed: %w", err)
		}
	}
	d := time.Since(start)
	fmt.Fprintf(out, "seeded %d nodes with heartbeats and resources in %s (%.0f nodes/s, BatchPut of %d nodes)\n",
		len(ids), d.Round(time.Millisecond), float64(len(ids))/d.Seconds(), seedBatch)
	return ids, nil
}

// watchBench measures WatchNodes: how fast one client receives the
// snapshot of the whole fleet (c.repeat times, against the service and a
// no-op handler streaming as many pre-built nodes, on grpc-go's server for
// --protocol grpc --listener grpc and connect-go's otherwise), then what
// each further
// idle watcher costs the server: c.watchers watchers take their snapshot
// and stay open, and the server's memory is compared before and after.
func watchBench(ctx context.Context, client smspbconnect.NodeServiceClient, c config, out io.Writer) error {
	var noopURL string
	var stop func()
	var err error
	if c.protocol == "grpc" && c.listener == "grpc" {
		noopURL, stop, err = serveGRPC(noopGRPCServer(c.pageSize, c.nodes, false))
	} else {
		noopURL, stop, err = serveOne(newNoopHandler(c.pageSize, c.nodes))
	}
	if err != nil {
		return err
	}
	defer stop()
	noop := watchClient(noopURL, c.protocol, 1)
	var svc, base []float64
	for round := range c.repeat {
		n, d, err := snapshot(ctx, client)
		if err != nil {
			return fmt.Errorf("service watch: %w", err)
		}
		bn, bd, err := snapshot(ctx, noop)
		if err != nil {
			return fmt.Errorf("no-op watch: %w", err)
		}
		svc, base = append(svc, float64(n)/d.Seconds()), append(base, float64(bn)/bd.Seconds())
		fmt.Fprintf(out, "round %d: snapshot of %d nodes in %s (%s nodes/s); no-op %d nodes in %s (%s nodes/s)\n",
			round+1, n, d.Round(time.Millisecond), fmtRate(svc[round]), bn, bd.Round(time.Millisecond), fmtRate(base[round]))
	}
	fmt.Fprintf(out, "\nWatchNodes snapshot, median of %d [min-max]:\n  service %s nodes\n  no-op   %s nodes   service/no-op %.2f\n",
		c.repeat, spread(svc), spread(base), median(svc)/median(base))

	if c.watchers == 0 {
		return nil
	}
	before := serverMemory(c)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	ready := make(chan error, c.watchers)
	start := time.Now()
	for range c.watchers {
		wg.Go(func() { idleWatch(wctx, client, ready) })
	}
	for range c.watchers {
		if err := <-ready; err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("idle watcher: %w", err)
		}
	}
	took := time.Since(start)
	after := serverMemory(c)
	fmt.Fprintf(out, "\n%d idle watchers (each took its snapshot of %d nodes; all in %s):\n", c.watchers, c.nodes, took.Round(time.Millisecond))
	fmt.Fprintf(out, "  %s: %s before, %s with the watchers open: %.1f KiB per watcher\n",
		before.what, fmtBytes(before.bytes), fmtBytes(after.bytes), float64(after.bytes-before.bytes)/float64(c.watchers)/1024)
	cancel()
	wg.Wait()
	return nil
}

// snapshot opens a watch, reads its snapshot and closes it.
func snapshot(ctx context.Context, client smspbconnect.NodeServiceClient) (int, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	stream, err := client.WatchNodes(ctx, &sms.WatchNodesRequest{})
	if err != nil {
		return 0, 0, err
	}
	defer stream.Close()
	n := 0
	for stream.Receive() {
		switch stream.Msg().Kind {
		case sms.WatchNodesResponse_KIND_SNAPSHOT:
			n++
		case sms.WatchNodesResponse_KIND_SNAPSHOT_END:
			return n, time.Since(start), nil
		}
	}
	if err := stream.Err(); err != nil {
		return 0, 0, err
	}
	return 0, 0, errors.New("stream ended before its snapshot did")
}

// idleWatch takes a snapshot, reports on ready and then reads (nothing, on
// an idle fleet) until ctx ends.
func idleWatch(ctx context.Context, client smspbconnect.NodeServiceClient, ready chan<- error) {
	stream, err := client.WatchNodes(ctx, &sms.WatchNodesRequest{})
	if err != nil {
		ready <- err
		return
	}
	defer stream.Close()
	reported := false
	for stream.Receive() {
		if !reported && stream.Msg().Kind == sms.WatchNodesResponse_KIND_SNAPSHOT_END {
			reported = true
			ready <- nil
		}
	}
	if !reported {
		err := stream.Err()
		if err == nil {
			err = errors.New("stream ended before its snapshot did")
		}
		ready <- err
	}
}

// memSample is a measurement of the server's memory.
type memSample struct {
	what  string
	bytes int64
}

// serverMemory is the RSS of the server process with --server-pid, and
// otherwise the live heap of this process (in-process server and clients)
// after a full garbage collection: RSS moves in big steps and keeps freed
// pages, which would hide a few KiB per watcher.
func serverMemory(c config) memSample {
	if c.addr != "" && c.serverPID > 0 {
		time.Sleep(time.Second) // let the server settle
		return memSample{"server RSS", rss(c.serverPID)}
	}
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{"live heap of the process (in-process server and clients)", int64(ms.HeapAlloc)}
}

// idleBench measures the cost of an idle server: nothing but its liveness
// sweeps. With --addr and --server-pid it reads the server process's CPU
// time; in-process it runs the sweeper itself (one Sweep every
// --sweep-interval, as cmd/sms does) and reads this process's.
func idleBench(ctx context.Context, nodes *registry.NodeRegistry, c config, out io.Writer) error {
	cpu := func() (time.Duration, error) { return processCPU(c.serverPID) }
	var sweeps []time.Duration
	var sweepErr error
	done := make(chan struct{})
	ctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	if c.addr == "" {
		cpu = func() (time.Duration, error) { return processCPU(0) }
		go func() {
			defer close(done)
			t := time.NewTicker(c.sweepInterval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				start := time.Now()
				res, err := nodes.Sweep(ctx, registry.Liveness{})
				if err != nil {
					if ctx.Err() == nil {
						sweepErr = err
					}
					return
				}
				sweeps = append(sweeps, time.Since(start))
				if res != (registry.SweepResult{}) {
					fmt.Fprintf(out, "sweep changed nodes on an idle fleet: %+v\n", res)
				}
			}
		}()
	} else {
		if c.serverPID == 0 {
			return errors.New("--workload idle with --addr needs --server-pid")
		}
		close(done)
	}
	before, err := cpu()
	if err != nil {
		return err
	}
	start := time.Now()
	<-ctx.Done()
	<-done
	after, err := cpu()
	if err != nil {
		return err
	}
	if sweepErr != nil {
		return fmt.Errorf("sweep: %w", sweepErr)
	}
	elapsed := time.Since(start)
	used := after - before
	fmt.Fprintf(out, "idle %s with %d nodes: %.2f CPU-seconds = %.2f %% of one core\n",
		elapsed.Round(time.Second), c.nodes, used.Seconds(), 100*used.Seconds()/elapsed.Seconds())
	if len(sweeps) > 0 {
		slices.Sort(sweeps)
		fmt.Fprintf(out, "%d sweeps every %s: wall time median %s, max %s; at the default 30s interval that is %.2f %% of one core\n",
			len(sweeps), c.sweepInterval, sweeps[len(sweeps)/2].Round(time.Millisecond), sweeps[len(sweeps)-1].Round(time.Millisecond),
			100*used.Seconds()/float64(len(sweeps))/30)
	}
	return nil
}

// processCPU returns the user and system CPU time of process pid (0: this
// one).
func processCPU(pid int) (time.Duration, error) {
	if pid == 0 {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			return 0, err
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: utime and stime are the 12th and 13th.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	const clockTicks = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// statsCall is one GetClusterStats call, for the stats workload.
func statsCall(ctx context.Context, client nodeClient) error {
	_, err := client.GetClusterStats(ctx, &sms.GetClusterStatsRequest{})
	return err
}
