package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spear-next/sms/internal/procstat"
	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// loadBench measures how long SMS takes to load the registry view of the
// store at --kv-* (seeded beforehand by --workload seed, or now with
// --register seed), against the baseline of reading the same rows in the
// same run: in each of c.repeat rounds,
//
//   - raw: every row under the view's four prefixes, one plain SQL range
//     query per prefix through the store's own statements (sqlstore's
//     Baseline), nothing decoded: the storage limit of a load;
//   - view: from opening the store to registry.View.WaitLoaded returning,
//     in this process, with the heap the loaded view holds per node
//     (runtime.MemStats after a GC);
//   - process, with --sms-bin: from starting that sms binary on the store
//     to its /healthz answering 200, and its RSS then. --sms-bin may list
//     several binaries, comma-separated (say, main's and a branch's), which
//     each round starts one after the other: a before and after in one run.
//
// It prints each round and the medians, and each time as a ratio of the
// raw read's, per round.
func loadBench(ctx context.Context, c config, path string, out io.Writer) error {
	if c.backend == "memory" {
		return errors.New("--workload load reads a store that outlives the process: --kv-backend sqlite or postgres")
	}
	if c.register == "seed" {
		store, err := openStore(ctx, c, path)
		if err != nil {
			return err
		}
		_, err = seed(ctx, store, c, out)
		store.Close()
		if err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "smsbench: load workload, backend %s, %d rounds\n", c.backend, c.repeat)
	var bins []string
	if c.smsBin != "" {
		bins = strings.Split(c.smsBin, ",")
	}
	var raws, views, ratios, heaps, rawCPUs, viewCPUs []float64
	procs, procRatios, rsss, procCPUs := make([][]float64, len(bins)), make([][]float64, len(bins)), make([][]float64, len(bins)), make([][]float64, len(bins))
	for round := range c.repeat {
		rawCPU := cpuNow()
		rows, raw, err := rawLoad(ctx, c, path)
		if err != nil {
			return fmt.Errorf("raw read: %w", err)
		}
		rawCPU = cpuNow() - rawCPU
		viewCPU := cpuNow()
		nodes, view, heap, err := viewLoad(ctx, c, path)
		viewCPU = cpuNow() - viewCPU
		if err != nil {
			return fmt.Errorf("view load: %w", err)
		}
		if nodes == 0 {
			return errors.New("the store holds no nodes: seed it first (--workload seed, or --register seed)")
		}
		raws, views = append(raws, raw.Seconds()), append(views, view.Seconds())
		rawCPUs, viewCPUs = append(rawCPUs, rawCPU.Seconds()), append(viewCPUs, viewCPU.Seconds())
		ratios, heaps = append(ratios, view.Seconds()/raw.Seconds()), append(heaps, heap/float64(nodes))
		msg := fmt.Sprintf("round %d: raw read of %d rows %s (%.1f CPU-s); view of %d nodes loaded in %s (%.2fx raw, %.1f CPU-s), %.0f heap bytes/node",
			round+1, rows, raw.Round(time.Millisecond), rawCPU.Seconds(), nodes, view.Round(time.Millisecond), view.Seconds()/raw.Seconds(), viewCPU.Seconds(), heap/float64(nodes))
		for i, bin := range bins {
			ready, rss, cpu, err := processLoad(ctx, c, bin, path)
			if err != nil {
				return fmt.Errorf("%s: %w", bin, err)
			}
			procs[i], rsss[i], procCPUs[i] = append(procs[i], ready.Seconds()), append(rsss[i], float64(rss)), append(procCPUs[i], cpu.Seconds())
			procRatios[i] = append(procRatios[i], ready.Seconds()/raw.Seconds())
			msg += fmt.Sprintf("; %s ready (/healthz 200) after %s (%.2fx raw), %.1f CPU-s, RSS %s", bin, ready.Round(time.Millisecond), ready.Seconds()/raw.Seconds(), cpu.Seconds(), fmtBytes(rss))
		}
		fmt.Fprintln(out, msg)
	}
	fmt.Fprintf(out, "\nload, median of %d rounds [min-max]:\n", c.repeat)
	fmt.Fprintf(out, "  raw read of the rows        %s\n", spreadSeconds(raws))
	fmt.Fprintf(out, "  view loaded (in process)    %s\n", spreadSeconds(views))
	fmt.Fprintf(out, "  view/raw, per round         %.2f [%.2f-%.2f]\n", median(ratios), slices.Min(ratios), slices.Max(ratios))
	fmt.Fprintf(out, "  CPU: raw read, view load    %s, %s\n", spreadSeconds(rawCPUs), spreadSeconds(viewCPUs))
	fmt.Fprintf(out, "  view heap per node          %.0f B [%.0f-%.0f]\n", median(heaps), slices.Min(heaps), slices.Max(heaps))
	for i, bin := range bins {
		fmt.Fprintf(out, "  %s\n", bin)
		fmt.Fprintf(out, "    start to /healthz 200     %s\n", spreadSeconds(procs[i]))
		fmt.Fprintf(out, "    /raw, per round           %.2f [%.2f-%.2f]\n", median(procRatios[i]), slices.Min(procRatios[i]), slices.Max(procRatios[i]))
		fmt.Fprintf(out, "    CPU until ready           %s\n", spreadSeconds(procCPUs[i]))
		fmt.Fprintf(out, "    RSS when ready            %s [%s-%s]\n", fmtBytes(int64(median(rsss[i]))), fmtBytes(int64(slices.Min(rsss[i]))), fmtBytes(int64(slices.Max(rsss[i]))))
	}
	return nil
}

// cpuNow is the CPU time this process has used, user and system.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time process pid has used, user and system, from
// /proc (0 where it cannot tell).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}

func spreadSeconds(v []float64) string {
	return fmt.Sprintf("%7.2fs [%.2f-%.2f]", median(v), slices.Min(v), slices.Max(v))
}

// loadPrefixes are the key prefixes the view reads at load.
var loadPrefixes = []string{records.NodePrefix, records.HeartbeatPrefix, records.ResourcePrefix, records.ExpiredPrefix}

// rawLoad reads every row under loadPrefixes with the store's raw-SQL
// baseline, one query per prefix, and returns the rows and the time taken
// (opening the store excluded).
func rawLoad(ctx context.Context, c config, path string) (int, time.Duration, error) {
	store, err := openStore(ctx, c, path)
	if err != nil {
		return 0, 0, err
	}
	defer store.Close()
	raw := rawOf(store)
	if raw == nil {
		return 0, 0, fmt.Errorf("backend %s has no raw-SQL baseline", c.backend)
	}
	start := time.Now()
	rows := 0
	for _, p := range loadPrefixes {
		n, err := raw.Range(ctx, []byte(p), sqlkv.PrefixEnd([]byte(p)), 0)
		if err != nil {
			return 0, 0, fmt.Errorf("range %s: %w", p, err)
		}
		rows += n
	}
	return rows, time.Since(start), nil
}

// viewLoad opens the store and loads its view, as cmd/sms does at start,
// and returns the nodes loaded, the time from opening to loaded, and the
// heap the view holds (live heap after a GC, less the live heap before).
func viewLoad(ctx context.Context, c config, path string) (int64, time.Duration, float64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	store, err := openStore(ctx, c, path)
	if err != nil {
		return 0, 0, 0, err
	}
	store = watchable(store)
	defer store.Close()
	view := registry.NewView(store)
	defer view.Close()
	if err := view.WaitLoaded(ctx); err != nil {
		return 0, 0, 0, err
	}
	took := time.Since(start)
	st, err := view.Resources().ClusterStats(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(view)
	return st.TotalNodes, took, float64(int64(after.HeapAlloc) - int64(before.HeapAlloc)), nil
}

// processLoad starts the sms binary bin on the store and returns the time
// until its /healthz answers 200, its RSS then and the CPU time it used; it stops the process before
// returning. The heartbeat timeout is a day, so that the sweeper finds
// nothing to do in a seeded fleet whose heartbeats are old.
func processLoad(ctx context.Context, c config, bin, path string) (time.Duration, int64, time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	args := []string{"--addr", addr, "--kv-backend", c.backend, "--heartbeat-timeout", "24h", "--log-level", "warn"}
	switch c.backend {
	case "sqlite":
		args = append(args, "--kv-path", path, "--sqlite-synchronous", c.sync)
	case "postgres":
		args = append(args, "--kv-dsn", c.dsn)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.After(10 * time.Minute)
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), procstat.RSS(cmd.Process.Pid), procCPU(cmd.Process.Pid), nil
			}
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case err := <-exited:
			exited <- err // for the deferred stop
			return 0, 0, 0, fmt.Errorf("exited before ready: %v", err)
		case <-deadline:
			return 0, 0, 0, errors.New("/healthz not 200 after 10 minutes")
		case <-ctx.Done():
			return 0, 0, 0, ctx.Err()
		}
	}
}
