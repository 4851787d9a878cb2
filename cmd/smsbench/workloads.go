package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	sms "github.com/spear-next/sms/gen/sms"
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
