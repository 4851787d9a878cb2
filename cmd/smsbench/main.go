// Command smsbench is SMS's load generator. It simulates a fleet against a
// server (one it starts in-process, or a running one with --addr): --nodes
// nodes register, then heartbeat and report resources while --readers call
// GetNode, ListNodes and GetNodeWithResource. It prints per-RPC throughput,
// p50/p99/p99.9 latency, errors by code and the database size before and
// after.
//
// With --workload watchers it measures GetNode with and without --watchers
// WatchNodes streams open, and the memory they take and give back.
//
// With --workload load it times loading the registry view of a seeded store
// (and, with --sms-bin, an sms process's start until /healthz answers 200)
// against a raw SQL read of the same rows in the same run.
//
// With --workload heartbeat, get or list it runs one RPC in a closed loop
// from --concurrency clients and, in the same run, its baselines: the same
// writes or reads as plain SQL through the same driver and pool settings
// (the storage limit), a no-op handler of the same protocol in-process (the
// RPC limit), and their combination 1/(1/storage + 1/rpc), the most the
// service could do if it added nothing.
//
// With --workload soak it offers --rate heartbeats per second, open loop,
// from a --nodes fleet, to a server process of its own, and reports
// latency from each call's due time per 10 s window, the sweeps and the
// server's CPU, next to a no-op baseline. See BENCHMARKS.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/spear-next/sms/service/registry"
)

type config struct {
	addr        string
	protocol    string
	listener    string // grpc or http: where --protocol grpc goes in-process
	concurrency int
	readers     int
	duration    time.Duration
	nodes       int
	interval    time.Duration
	rate        float64
	workload    string
	watchers    int
	// snapshotBatch is --snapshot-batch: on, off or both.
	snapshotBatch string
	pageSize      int
	baselines     bool
	repeat        int
	serverPID     int
	smsBin        string

	register      string
	storageNodes  int
	sweepInterval time.Duration

	backend, path, dsn, sync string
	groupLanes               int
	cpuProfile               string
	reportEvery              time.Duration

	silentNodes      int           // soak: nodes that never heartbeat
	baselineDuration time.Duration // soak: of the no-op phase (0: --duration)
	heartbeatTimeout time.Duration // soak: the server process's sweeper's
	args             []string      // as given: the soak's server process gets them too
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "smsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c := config{args: args}
	fs := flag.NewFlagSet("smsbench", flag.ContinueOnError)
	fs.StringVar(&c.addr, "addr", "", "server URL (http://host:port); empty starts one in-process with the --kv-* flags")
	fs.StringVar(&c.protocol, "protocol", "connect", "connect, connect-h2c (Connect over cleartext HTTP/2), grpc (grpc-go's client) or grpcweb")
	fs.StringVar(&c.listener, "listener", "grpc", "--protocol grpc in-process: grpc (grpc-go's server, --grpc-addr) or http (connect-go's, --addr/--http-addr)")
	fs.IntVar(&c.concurrency, "concurrency", 16, "concurrent writer clients (and clients of a single-RPC workload)")
	fs.IntVar(&c.readers, "readers", 4, "concurrent reader clients in the fleet workload")
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "how long each phase runs")
	fs.IntVar(&c.nodes, "nodes", 1000, "nodes in the fleet")
	fs.DurationVar(&c.interval, "interval", 0, "fleet: each node heartbeats and reports resources every interval; 0 = as fast as possible")
	fs.Float64Var(&c.rate, "rate", 0, "single-RPC workloads: total calls per second (open loop); 0 = as fast as possible; soak: heartbeats per second (required)")
	fs.IntVar(&c.silentNodes, "silent-nodes", 0, "soak: this many of the --nodes nodes never heartbeat, so that a sweep marks them unhealthy mid-run (after --heartbeat-timeout)")
	fs.DurationVar(&c.heartbeatTimeout, "heartbeat-timeout", registry.DefaultHeartbeatTimeout, "soak: the heartbeat timeout of the server process's sweeper (cmd/sms's default): silent nodes become unhealthy, and resource reports are deleted, after it")
	fs.DurationVar(&c.baselineDuration, "baseline-duration", 0, "soak: how long the no-op baseline runs (0: --duration)")
	fs.StringVar(&c.workload, "workload", "fleet", "fleet, heartbeat, get, list, watchers, stats, watch, idle, load (time loading the registry view of the --kv-* store, against a raw read of its rows), soak (open-loop heartbeats at --rate from a server process of its own), or seed (write --nodes nodes into the --kv-* store and exit)")
	fs.IntVar(&c.watchers, "watchers", 0, "watchers workload: WatchNodes streams to open (0: 2000; an in-process server admits them all; start a remote one with --max-watchers); watch workload: idle watchers to open after the snapshot rounds, their memory measured (0: 10)")
	fs.StringVar(&c.snapshotBatch, "snapshot-batch", "both", "watch workload: measure snapshots with batch_snapshot (on), one node per message (off), or both")
	fs.StringVar(&c.register, "register", "rpc", "how the --nodes nodes get there: rpc (RegisterNode and UpdateNodeResource calls), seed (BatchPut straight into the in-process server's store; see --workload seed), none (already there: seeded by --workload seed)")
	fs.IntVar(&c.storageNodes, "storage-nodes", 0, "rows of the raw-SQL storage baseline's table (0: --nodes); a point read or range of a B-tree barely depends on it, and filling 1M rows takes minutes")
	fs.DurationVar(&c.sweepInterval, "sweep-interval", 30*time.Second, "idle, in-process server, and soak: how often the sweeper runs (cmd/sms's default is 30s)")
	fs.IntVar(&c.pageSize, "page-size", 500, "ListNodes page size")
	fs.BoolVar(&c.baselines, "baselines", true, "single-RPC workloads: also measure the storage and RPC limits")
	fs.IntVar(&c.repeat, "repeat", 3, "single-RPC workloads: rounds of service, storage and RPC phases, interleaved")
	fs.IntVar(&c.serverPID, "server-pid", 0, "with --addr: report this process's RSS")
	fs.StringVar(&c.smsBin, "sms-bin", "", "load workload: also time this sms binary (or these, comma-separated: before and after in one run) from start to /healthz 200 on the store, and report its RSS")
	fs.StringVar(&c.backend, "kv-backend", "memory", "in-process server and storage baseline: memory, sqlite or postgres")
	fs.StringVar(&c.path, "kv-path", "", "SQLite file (default: a new file in a temporary directory)")
	fs.StringVar(&c.dsn, "kv-dsn", "", "Postgres URL")
	fs.StringVar(&c.sync, "sqlite-synchronous", "normal", "full or normal")
	fs.IntVar(&c.groupLanes, "group-lanes", 0, "group commit lanes (SQLite: 0 = on, -1 = off; Postgres: 0 = default, -1 = off, n = lanes)")
	fs.DurationVar(&c.reportEvery, "report-every", 0, "print the database size this often during the run (soak tests)")
	fs.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run (in-process server included) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch c.protocol {
	case "connect", "connect-h2c", "grpc", "grpcweb":
	default:
		return fmt.Errorf("--protocol %q: want connect, connect-h2c, grpc or grpcweb", c.protocol)
	}
	switch c.listener {
	case "grpc", "http":
	default:
		return fmt.Errorf("--listener %q: want grpc or http", c.listener)
	}
	switch c.workload {
	case "fleet", "heartbeat", "get", "list", "watchers", "stats", "watch", "idle", "load", "soak", "seed":
	default:
		return fmt.Errorf("--workload %q: want fleet, heartbeat, get, list, watchers, stats, watch, idle, load, soak or seed", c.workload)
	}
	switch c.snapshotBatch {
	case "on", "off", "both":
	default:
		return fmt.Errorf("--snapshot-batch %q: want on, off or both", c.snapshotBatch)
	}
	switch c.register {
	case "rpc", "none":
	case "seed":
		if c.addr != "" {
			return errors.New("--register seed writes into the in-process server's store; with --addr, seed first with --workload seed and pass --register none")
		}
	default:
		return fmt.Errorf("--register %q: want rpc, seed or none", c.register)
	}
	if (c.workload == "seed" || c.workload == "load") && c.addr != "" {
		return fmt.Errorf("--workload %s works on the --kv-* store, not on a server: drop --addr", c.workload)
	}
	if c.watchers == 0 {
		c.watchers = 10
		if c.workload == "watchers" {
			c.watchers = 2000
		}
	}
	if c.concurrency < 1 || c.nodes < 1 || c.duration <= 0 || c.repeat < 1 {
		return errors.New("--concurrency, --nodes, --duration and --repeat must be positive")
	}
	if role := os.Getenv(soakRoleEnv); role != "" && c.cpuProfile != "" {
		c.cpuProfile += "." + role // the soak's server process
	}
	if c.cpuProfile != "" {
		stopProfile, err := startProfile(c.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	if c.workload == "soak" {
		if role := os.Getenv(soakRoleEnv); role != "" {
			return soakServe(ctx, c, role)
		}
		return soakWorkload(ctx, c, out)
	}
	return bench(ctx, c, out)
}

// fmtRate formats calls per second.
func fmtRate(r float64) string {
	switch {
	case r >= 10_000:
		return fmt.Sprintf("%.1fk", r/1000)
	case r >= 1000:
		return fmt.Sprintf("%.2fk", r/1000)
	}
	return fmt.Sprintf("%.0f", r)
}

func fmtBytes(n int64) string {
	if n < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

func line(out io.Writer, cols ...string) { fmt.Fprintln(out, strings.Join(cols, "\t")) }
