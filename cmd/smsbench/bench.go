package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
)

// stats collects one RPC's latencies and errors, from many goroutines.
type stats struct {
	mu      sync.Mutex
	lat     []time.Duration
	errs    map[string]int
	elapsed time.Duration
}

func (s *stats) add(lat []time.Duration, errs map[string]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lat = append(s.lat, lat...)
	if s.errs == nil {
		s.errs = map[string]int{}
	}
	for k, v := range errs {
		s.errs[k] += v
	}
}

func (s *stats) rate() float64 { return float64(len(s.lat)) / s.elapsed.Seconds() }

func (s *stats) pct(p float64) time.Duration {
	if len(s.lat) == 0 {
		return 0
	}
	return s.lat[min(len(s.lat)-1, int(float64(len(s.lat))*p))]
}

// recorder is one goroutine's share of a stats, merged at the end.
type recorder struct {
	lat   []time.Duration
	errs  map[string]int
	phase context.Context // ends with the phase
}

func (r *recorder) call(fn func() error) {
	start := time.Now()
	err := fn()
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return // the phase's end cutting a call short
	}
	if err != nil && r.phase != nil && r.phaseCut(start) {
		// The phase's end cut this call short too: its deadline is the
		// phase's, and the server answers unavailable when its handler's
		// deadline, a little earlier than the client's, ends a call.
		return
	}
	if err != nil {
		if r.errs == nil {
			r.errs = map[string]int{}
		}
		r.errs[errCode(err).String()]++
		return
	}
	r.lat = append(r.lat, time.Since(start))
}

// phaseCut reports whether a call that started at start and failed now
// was cut short by the phase's end. The server ends a handler a tenth of
// the call's remaining time (at most 250 ms, service's maxReserve) before
// the client's deadline, which is the phase's, and answers unavailable: that
// answer arrives before the phase's context reports its end.
func (r *recorder) phaseCut(start time.Time) bool {
	if r.phase.Err() != nil {
		return true
	}
	d, ok := r.phase.Deadline()
	if !ok {
		return false
	}
	reserve := min(d.Sub(start)/10, 250*time.Millisecond)
	return !time.Now().Before(d.Add(-reserve))
}

// phase runs workers goroutines, each calling fn(worker, recorders) until
// the duration is over, and returns the stats by name.
func phase(ctx context.Context, d time.Duration, workers int, names []string, fn func(ctx context.Context, w int, rec map[string]*recorder)) map[string]*stats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	out := map[string]*stats{}
	for _, n := range names {
		out[n] = &stats{}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rec := map[string]*recorder{}
			for _, n := range names {
				rec[n] = &recorder{phase: ctx}
			}
			fn(ctx, w, rec)
			for n, r := range rec {
				out[n].add(r.lat, r.errs)
			}
		})
	}
	wg.Wait()
	for _, s := range out {
		s.elapsed = time.Since(start)
		slices.Sort(s.lat)
		for code := range s.errs {
			if code == connect.CodeDeadlineExceeded.String() || code == connect.CodeCanceled.String() {
				delete(s.errs, code) // the phase's end cutting calls short
			}
		}
	}
	return out
}

func printStats(out io.Writer, title string, names []string, st map[string]*stats) {
	fmt.Fprintf(out, "\n%s\n", title)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	line(tw, "rpc", "calls", "calls/s", "p50", "p99", "p99.9", "errors", "")
	for _, n := range names {
		s := st[n]
		errs := "-"
		if len(s.errs) > 0 {
			errs = fmt.Sprint(s.errs)
		}
		line(tw, n, fmt.Sprint(len(s.lat)), fmtRate(s.rate()), fmtDur(s.pct(0.5)), fmtDur(s.pct(0.99)), fmtDur(s.pct(0.999)), errs, "")
	}
	tw.Flush()
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// bench runs the configured workload.
func bench(ctx context.Context, c config, out io.Writer) error {
	dir, err := os.MkdirTemp("", "smsbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := c.path
	if path == "" {
		path = dir + "/sms.db"
	}

	if c.workload == "seed" {
		store, err := openStore(ctx, c, path)
		if err != nil {
			return err
		}
		defer store.Close()
		_, err = seed(ctx, store, c, out)
		return err
	}
	if c.workload == "load" {
		return loadBench(ctx, c, path, out)
	}

	url := c.addr
	var store sqlkv.Store
	var nodes *registry.NodeRegistry
	if url == "" {
		s, err := openStore(ctx, c, path)
		if err != nil {
			return err
		}
		store = watchable(s)
		defer store.Close()
		// Two more than --watchers: the watch workload's snapshot watch may
		// still be closing when its idle watchers open.
		u, n, stop, err := startServer(store, c.watchers+2, c.protocol == "grpc" && c.listener == "grpc")
		if err != nil {
			return err
		}
		defer stop()
		url, nodes = u, n
	}
	client, err := newClient(url, c.protocol, c.concurrency+c.readers)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("backend %s (sync %s)", c.backend, c.sync)
	if c.addr != "" {
		where = "server " + c.addr
	}
	fmt.Fprintf(out, "smsbench: %s workload, protocol %s%s, %s, %d nodes (register: %s), %d clients, %d readers, %s per phase\n",
		c.workload, c.protocol, listenerNote(c), where, c.nodes, c.register, c.concurrency, c.readers, c.duration)

	sizeBefore := dbSize(ctx, c, path)
	var ids []string
	switch c.register {
	case "rpc":
		ids, err = register(ctx, client, c)
	case "seed":
		ids, err = seed(ctx, store, c, out)
	case "none":
		ids = seedIDs(c.nodes)
	}
	if err != nil {
		return err
	}
	sizeAfterRegister := dbSize(ctx, c, path)
	if err := waitReady(ctx, client, out); err != nil {
		return err
	}

	switch c.workload {
	case "watch":
		return watchBench(ctx, watchClient(url, c.protocol, c.concurrency+c.readers), c, out)
	case "idle":
		err := idleBench(ctx, nodes, c, out)
		printSizes(ctx, out, c, path, sizeBefore, sizeAfterRegister)
		return err
	}

	var names []string
	var st map[string]*stats
	runSingle := func() map[string]*stats {
		return phase(ctx, c.duration, c.concurrency, names, func(ctx context.Context, w int, rec map[string]*recorder) {
			single(ctx, client, c, ids, w, rec[c.workload])
		})
	}
	if c.reportEvery > 0 {
		// The soak's evidence: the database size as the run goes on.
		t := time.NewTicker(c.reportEvery)
		defer t.Stop()
		start := time.Now()
		go func() {
			for range t.C {
				fmt.Fprintf(out, "t=%s database size %s%s\n", time.Since(start).Round(time.Second), fmtBytes(dbSize(ctx, c, path)), sizeDetail(c, path))
			}
		}()
	}
	switch c.workload {
	case "watchers":
		return watchersWorkload(ctx, c, url, ids, out)
	case "fleet":
		names, st = fleet(ctx, client, c, ids)
	default:
		names = []string{c.workload}
		if c.workload == "list" {
			pageTokens(ctx, client, c)
		}
		st = runSingle()
	}
	printStats(out, "service:", names, st)
	printSizes(ctx, out, c, path, sizeBefore, sizeAfterRegister)

	failed := 0
	for _, s := range st {
		for _, n := range s.errs {
			failed += n
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d calls failed", failed)
	}
	if c.workload == "fleet" || !c.baselines {
		return nil
	}
	fmt.Fprintln(out)
	return baselines(ctx, c, dir, out, func() *stats { return runSingle()[c.workload] })
}

// waitReady makes one small read, so that a server still loading its
// registry (a view of a million nodes takes a while) has loaded before the
// first timed phase, and says how long that took.
func waitReady(ctx context.Context, client nodeClient, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := client.ListNodes(ctx, &sms.ListNodesRequest{PageSize: 1}); err != nil {
		return fmt.Errorf("first read: %w", err)
	}
	fmt.Fprintf(out, "first read (ListNodes of 1) answered after %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

func printSizes(ctx context.Context, out io.Writer, c config, path string, before, afterRegister int64) {
	fmt.Fprintf(out, "\ndatabase size: %s before, %s after registering, %s after the run%s\n",
		fmtBytes(before), fmtBytes(afterRegister), fmtBytes(dbSize(ctx, c, path)), sizeDetail(c, path))
	if c.addr == "" {
		fmt.Fprintf(out, "process RSS (client and in-process server): %s\n", fmtBytes(rss(0)))
	} else if c.serverPID > 0 {
		fmt.Fprintf(out, "server RSS: %s\n", fmtBytes(rss(c.serverPID)))
	}
}

// register registers c.nodes nodes, each with a resource report, from
// c.concurrency clients.
func register(ctx context.Context, client nodeClient, c config) ([]string, error) {
	ids := make([]string, c.nodes)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	slices.Sort(ids)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for range c.concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) || ctx.Err() != nil {
					return
				}
				if _, err := client.RegisterNode(ctx, &sms.RegisterNodeRequest{Node: fakeNode(ids[i])}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("register: %w", err) })
					return
				}
				if _, err := client.UpdateNodeResource(ctx, &sms.UpdateNodeResourceRequest{Resource: fakeResource(ids[i])}); err != nil {
					once.Do(func() { firstErr = fmt.Errorf("report resources: %w", err) })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	fmt.Fprintf(os.Stderr, "registered %d nodes with resources in %s\n", len(ids), time.Since(start).Round(time.Millisecond))
	return ids, nil
}

func fakeResource(id string) *sms.NodeResource {
	return &sms.NodeResource{
		NodeUuid: id, CpuUsagePercent: rand.Float64() * 100, MemoryUsagePercent: 42,
		TotalMemoryBytes: 64 << 30, UsedMemoryBytes: 27 << 30, AvailableMemoryBytes: 37 << 30,
		DiskUsagePercent: 61, TotalDiskBytes: 1 << 40, UsedDiskBytes: 600 << 30,
		NetworkRxBytesPerSec: 1 << 20, NetworkTxBytesPerSec: 2 << 20,
		LoadAverage_1M: 1.5, LoadAverage_5M: 1.2, LoadAverage_15M: 1.0,
	}
}

var health = map[string]string{"disk": "ok", "agent": "1.4.2"}

// single is one client of a single-RPC workload: closed loop, or paced to
// its share of c.rate.
func single(ctx context.Context, client nodeClient, c config, ids []string, w int, rec *recorder) {
	rng := rand.New(rand.NewPCG(uint64(w), 1))
	var tick <-chan time.Time
	if c.rate > 0 {
		t := time.NewTicker(time.Duration(float64(c.concurrency) / c.rate * float64(time.Second)))
		defer t.Stop()
		tick = t.C
	}
	for ctx.Err() == nil {
		if tick != nil {
			select {
			case <-ctx.Done():
				return
			case <-tick:
			}
		}
		id := ids[rng.IntN(len(ids))]
		switch c.workload {
		case "heartbeat":
			rec.call(func() error {
				_, err := client.Heartbeat(ctx, &sms.HeartbeatRequest{Uuid: id, HealthInfo: health})
				return err
			})
		case "get":
			rec.call(func() error {
				_, err := client.GetNode(ctx, &sms.GetNodeRequest{Uuid: id})
				return err
			})
		case "stats":
			rec.call(func() error { return statsCall(ctx, client) })
		case "list":
			// A page starting at a random node: the page token is opaque,
			// so walk from the start to a random page once, then reuse it.
			rec.call(func() error {
				_, err := client.ListNodes(ctx, &sms.ListNodesRequest{PageSize: int32(c.pageSize), PageToken: tokens[rng.IntN(len(tokens))]})
				return err
			})
		}
	}
}

var (
	tokensOnce sync.Once
	tokens     []string
)

// pageTokens returns the tokens of every page of the node list ("" first).
func pageTokens(ctx context.Context, client nodeClient, c config) []string {
	tokensOnce.Do(func() {
		tokens = []string{""}
		for {
			resp, err := client.ListNodes(ctx, &sms.ListNodesRequest{PageSize: int32(c.pageSize), PageToken: tokens[len(tokens)-1]})
			if err != nil || resp.NextPageToken == "" {
				return
			}
			tokens = append(tokens, resp.NextPageToken)
		}
	})
	return tokens
}

// fleet runs the fleet: writers heartbeat and report resources for their
// share of the nodes, every c.interval or as fast as they can, while
// readers mix GetNode, ListNodes pages and GetNodeWithResource.
func fleet(ctx context.Context, client nodeClient, c config, ids []string) ([]string, map[string]*stats) {
	names := []string{"Heartbeat", "UpdateNodeResource", "GetNode", "ListNodes", "GetNodeWithResource"}
	pageTokens(ctx, client, c)
	st := phase(ctx, c.duration, c.concurrency+c.readers, names, func(ctx context.Context, w int, rec map[string]*recorder) {
		rng := rand.New(rand.NewPCG(uint64(w), 2))
		if w >= c.concurrency {
			for ctx.Err() == nil {
				id := ids[rng.IntN(len(ids))]
				switch rng.IntN(3) {
				case 0:
					rec["GetNode"].call(func() error {
						_, err := client.GetNode(ctx, &sms.GetNodeRequest{Uuid: id})
						return err
					})
				case 1:
					rec["ListNodes"].call(func() error {
						_, err := client.ListNodes(ctx, &sms.ListNodesRequest{PageSize: int32(c.pageSize), PageToken: tokens[rng.IntN(len(tokens))]})
						return err
					})
				case 2:
					rec["GetNodeWithResource"].call(func() error {
						_, err := client.GetNodeWithResource(ctx, &sms.GetNodeWithResourceRequest{Uuid: id})
						return err
					})
				}
			}
			return
		}
		// Writer w owns nodes w, w+concurrency, ...; each round it
		// heartbeats and reports for all of them, spread over the interval.
		var mine []string
		for i := w; i < len(ids); i += c.concurrency {
			mine = append(mine, ids[i])
		}
		if len(mine) == 0 {
			return
		}
		var tick <-chan time.Time
		if c.interval > 0 {
			t := time.NewTicker(c.interval / time.Duration(len(mine)))
			defer t.Stop()
			tick = t.C
		}
		for i := 0; ctx.Err() == nil; i++ {
			if tick != nil {
				select {
				case <-ctx.Done():
					return
				case <-tick:
				}
			}
			id := mine[i%len(mine)]
			rec["Heartbeat"].call(func() error {
				_, err := client.Heartbeat(ctx, &sms.HeartbeatRequest{Uuid: id, HealthInfo: health})
				return err
			})
			rec["UpdateNodeResource"].call(func() error {
				_, err := client.UpdateNodeResource(ctx, &sms.UpdateNodeResourceRequest{Resource: fakeResource(id)})
				return err
			})
		}
	})
	return names, st
}
