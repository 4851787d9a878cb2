package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	sms "github.com/spear-next/sms/gen/sms"
)

const (
	// soakWindow is the length of the soak's report windows.
	soakWindow = 10 * time.Second
	// soakConns is how many grpc-go connections carry the heartbeats.
	soakConns = 4
	// soakWorkers bounds the calls in flight: at 10k/s, a server stall of
	// 100 ms before the schedule itself falls behind.
	soakWorkers = 1024
	// soakCallTimeout is each heartbeat's deadline; a call that exceeds it
	// counts as an error ("timeout").
	soakCallTimeout = 10 * time.Second
	// soakMaxLag is how late the client may send a heartbeat; later ones
	// are dropped and count as failed ("unsent": the client could not
	// offer the rate).
	soakMaxLag = 10 * time.Second
)

// soakWorkload is --workload soak: an open-loop heartbeat load of c.rate
// calls per second spread round-robin over the fleet (every node
// heartbeats every nodes/rate), for c.duration, against the service in a
// server process of its own (see soakServe: the run's store, seeded, and
// its liveness sweeper every c.sweepInterval, whose sweeps it reports) or
// against --addr; then, as the baseline, the same load for the baseline
// duration against a no-op Heartbeat handler behind the same grpc-go stack
// in another process. The client is grpc-go's over soakConns connections,
// with the requests built beforehand; latencies go to HDR histograms and
// count from each call's due time. It prints, per soakWindow, p50, p99,
// p99.9 and max, the calls' send lag, the server's CPU and the sweeps that
// ran in it, then the whole run, windows with and without a sweep apart,
// and service/no-op ratios.
func soakWorkload(ctx context.Context, c config, out io.Writer) error {
	if c.rate <= 0 {
		return errors.New("--workload soak needs --rate (heartbeats per second)")
	}
	if c.silentNodes < 0 || c.silentNodes >= c.nodes {
		return fmt.Errorf("--silent-nodes %d: want 0 up to --nodes-1", c.silentNodes)
	}
	baseDur := c.duration
	if c.baselineDuration > 0 {
		baseDur = c.baselineDuration
	}
	where := fmt.Sprintf("backend %s (sync %s), server process of its own", c.backend, c.sync)
	if c.addr != "" {
		where = "server " + c.addr
	}
	active := c.nodes - c.silentNodes
	fmt.Fprintf(out, "smsbench: soak workload, Heartbeat at %s/s open loop (%d nodes, %d silent: each active node every %s), grpc-go client over %d connections, %s, %s; no-op baseline %s\n",
		fmtRate(c.rate), c.nodes, c.silentNodes, (time.Duration(float64(active) / c.rate * float64(time.Second))).Round(time.Millisecond),
		soakConns, where, c.duration, baselineNote(c, baseDur))
	fmt.Fprintf(out, "load average at start: %s\n", loadAverage())

	var base *soakPhase
	if c.baselines {
		srv, err := startSoakServer(ctx, c, "noop")
		if err != nil {
			return fmt.Errorf("no-op server: %w", err)
		}
		bc := c
		bc.duration = baseDur
		base, err = runSoakPhase(ctx, bc, srv.url, srv.pid, seedIDs(active), nil)
		srv.stop()
		if err != nil {
			return fmt.Errorf("no-op baseline: %w", err)
		}
		base.print(out, "no-op Heartbeat handler, grpc-go server with SMS's policy (the RPC limit):", bc)
	}

	url, pid := c.addr, c.serverPID
	var srv *soakServer
	if c.addr == "" {
		var err error
		if srv, err = startSoakServer(ctx, c, "service"); err != nil {
			return fmt.Errorf("service server: %w", err)
		}
		defer srv.stop()
		url, pid = srv.url, srv.pid
	}
	client, err := newClient(url, "grpc", 1)
	if err != nil {
		return err
	}
	var ids []string
	switch c.register {
	case "rpc":
		ids, err = register(ctx, client, c)
	default: // seed (by the server process) or none: the seeded fleet
		ids = seedIDs(c.nodes)
	}
	if err != nil {
		return err
	}
	if err := waitReady(ctx, client, out); err != nil {
		return err
	}
	svc, err := runSoakPhase(ctx, c, url, pid, ids[c.silentNodes:], srv)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	svc.print(out, "service (Heartbeat through the registry into the store):", c)
	svc.printSweeps(out, c)
	if base != nil {
		svc.compare(out, base)
	}
	fmt.Fprintf(out, "load average at the end: %s\n", loadAverage())
	if n := svc.total.failed(); n > 0 {
		return fmt.Errorf("%d heartbeats failed: %v", n, svc.total.errs)
	}
	return nil
}

func baselineNote(c config, d time.Duration) string {
	if !c.baselines {
		return "off"
	}
	return d.String() + " before it"
}

// soakPhase is one open-loop run and the CPU the server and client used.
type soakPhase struct {
	loop      openLoop
	res       *loopResult
	total     *loopWindow
	serverCPU []time.Duration // at each window boundary of real time; nil: unknown
	cpuServer time.Duration   // whole phase; -1: unknown
	cpuClient time.Duration
	sweeps    []sweepRecord
}

// runSoakPhase runs the open-loop heartbeats against url, spreading them
// round-robin over ids, and samples the CPU of process pid (0: unknown) at
// every window boundary. Sweeps come from srv, if not nil.
func runSoakPhase(ctx context.Context, c config, url string, pid int, ids []string, srv *soakServer) (*soakPhase, error) {
	var clients []sms.NodeServiceClient
	for range soakConns {
		conn, err := grpc.NewClient(strings.TrimPrefix(url, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return nil, err
		}
		defer conn.Close()
		clients = append(clients, sms.NewNodeServiceClient(conn))
	}
	reqs := make([]*sms.HeartbeatRequest, len(ids))
	for i, id := range ids {
		reqs[i] = &sms.HeartbeatRequest{Uuid: id, HealthInfo: health}
	}
	// One call per connection first, so that dialing is not in the first
	// window.
	for _, cl := range clients {
		if _, err := cl.Heartbeat(ctx, reqs[0]); err != nil {
			return nil, fmt.Errorf("first heartbeat: %w", err)
		}
	}
	p := &soakPhase{
		loop: openLoop{rate: c.rate, duration: c.duration, workers: soakWorkers, window: soakWindow, timeout: soakCallTimeout, maxLag: soakMaxLag},
	}
	cpu := func() time.Duration {
		if pid == 0 {
			return -1
		}
		d, err := processCPU(pid)
		if err != nil {
			return -1
		}
		return d
	}
	clientStart, _ := processCPU(0)
	serverStart := cpu()
	// CPU at each window boundary of real time, from a goroutine of its
	// own so that sampling never waits for a slow window.
	sampled := make(chan []time.Duration, 1)
	phaseCtx, stopSampling := context.WithCancel(ctx)
	go func() {
		samples := []time.Duration{serverStart}
		start := time.Now()
		for k := 1; ; k++ {
			select {
			case <-phaseCtx.Done():
				sampled <- samples
				return
			case <-time.After(time.Until(start.Add(time.Duration(k) * soakWindow))):
			}
			samples = append(samples, cpu())
		}
	}()
	p.res = p.loop.run(ctx, func(ctx context.Context, i int64) error {
		_, err := clients[i%soakConns].Heartbeat(ctx, reqs[i%int64(len(reqs))])
		return err
	}, soakProgress)
	serverEnd := cpu()
	clientEnd, _ := processCPU(0)
	stopSampling()
	p.serverCPU = append(<-sampled, serverEnd)
	p.cpuServer, p.cpuClient = -1, clientEnd-clientStart
	if serverStart >= 0 && serverEnd >= 0 {
		p.cpuServer = serverEnd - serverStart
	} else {
		p.serverCPU = nil
	}
	p.total = p.res.total()
	if srv != nil {
		p.sweeps = srv.sweepsBetween(p.res.start, p.res.end)
	}
	return p, ctx.Err()
}

// soakProgress prints window i of a running phase to stderr, as soon as
// its calls are done (the table at the end also has the CPU and sweeps).
func soakProgress(r *loopResult, i int) {
	w := r.windows[i]
	w.mu.Lock()
	defer w.mu.Unlock()
	fmt.Fprintf(stderr, "soak: window %d: %d ok, %d failed, p50 %s p99 %s p99.9 %s max %s, send lag p99 %s\n", i+1,
		w.ok(), w.failed(), usDur(w.lat.ValueAtQuantile(50)), usDur(w.lat.ValueAtQuantile(99)),
		usDur(w.lat.ValueAtQuantile(99.9)), usDur(w.lat.Max()), usDur(w.lag.ValueAtQuantile(99)))
}

func usDur(us int64) string { return fmtDur(time.Duration(us) * time.Microsecond) }

// windowSweeps returns the sweeps that ran (in due time) during window i.
func (p *soakPhase) windowSweeps(i int) []sweepRecord {
	from := p.res.start.Add(time.Duration(i) * p.loop.window)
	to := from.Add(p.res.windowLen(p.loop, i))
	var in []sweepRecord
	for _, s := range p.sweeps {
		if s.start.Before(to) && !s.start.Add(s.took).Before(from) {
			in = append(in, s)
		}
	}
	return in
}

// cores is the server's CPU in window i, in cores, or "n/a".
func (p *soakPhase) cores(i int) string {
	if p.serverCPU == nil || i+1 >= len(p.serverCPU) {
		return "n/a"
	}
	d := p.serverCPU[i+1] - p.serverCPU[i]
	return fmt.Sprintf("%.2f", d.Seconds()/p.res.windowLen(p.loop, i).Seconds())
}

func (p *soakPhase) print(out io.Writer, title string, c config) {
	fmt.Fprintf(out, "\n%s\n", title)
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', tabwriter.AlignRight)
	line(tw, "window", "due", "ok/s", "failed", "p50", "p99", "p99.9", "max", "lag p99", "server cores", "sweeps", "")
	for i, w := range p.res.windows {
		from := time.Duration(i) * p.loop.window
		sw := "-"
		switch in := p.windowSweeps(i); len(in) {
		case 0:
		case 1:
			sw = in[0].String()
		default:
			slowest := slices.MaxFunc(in, func(a, b sweepRecord) int { return cmp.Compare(a.took, b.took) })
			sw = fmt.Sprintf("%d, slowest %s", len(in), slowest)
		}
		line(tw, fmt.Sprint(i+1), fmt.Sprintf("%s-%s", from, from+p.res.windowLen(p.loop, i)),
			fmtRate(float64(w.ok())/p.res.windowLen(p.loop, i).Seconds()), fmt.Sprint(w.failed()),
			usDur(w.lat.ValueAtQuantile(50)), usDur(w.lat.ValueAtQuantile(99)), usDur(w.lat.ValueAtQuantile(99.9)),
			usDur(w.lat.Max()), usDur(w.lag.ValueAtQuantile(99)), p.cores(i), sw, "")
	}
	tw.Flush()
	t := p.total
	took := p.res.end.Sub(p.res.start)
	fmt.Fprintf(out, "whole run: offered %s/s (%d calls due over %s), achieved %s/s (%d ok in %s, the last answer included), failed %d %v\n",
		fmtRate(p.loop.rate), p.res.calls, p.loop.duration, fmtRate(float64(t.ok())/took.Seconds()), t.ok(), took.Round(time.Millisecond), t.failed(), t.errs)
	if n := t.errs["unsent"]; n > 0 {
		fmt.Fprintf(out, "  the client could not offer the rate: %d calls (%.1f %%) were more than %s late and not sent; the latencies count them at that lag\n",
			n, 100*float64(n)/float64(p.res.calls), p.loop.maxLag)
	}
	fmt.Fprintf(out, "  latency from due time: p50 %s, p99 %s, p99.9 %s, max %s; send lag (due to sent) p50 %s, p99 %s, max %s\n",
		usDur(t.lat.ValueAtQuantile(50)), usDur(t.lat.ValueAtQuantile(99)), usDur(t.lat.ValueAtQuantile(99.9)), usDur(t.lat.Max()),
		usDur(t.lag.ValueAtQuantile(50)), usDur(t.lag.ValueAtQuantile(99)), usDur(t.lag.Max()))
	server := "n/a (no --server-pid)"
	if p.cpuServer >= 0 {
		server = fmt.Sprintf("%.2f cores, %.0f µs per call", p.cpuServer.Seconds()/took.Seconds(), float64(p.cpuServer.Microseconds())/float64(max(t.ok(), 1)))
	}
	fmt.Fprintf(out, "  CPU: server %s; client %.2f cores, %.0f µs per call\n", server,
		p.cpuClient.Seconds()/took.Seconds(), float64(p.cpuClient.Microseconds())/float64(max(t.ok(), 1)))
}

// printSweeps compares the windows in which a sweep ran with the others,
// and the calls due while a sweep ran with the whole run.
func (p *soakPhase) printSweeps(out io.Writer, c config) {
	if c.addr != "" {
		fmt.Fprintln(out, "sweeps: not observed (the server at --addr runs its own)")
		return
	}
	if len(p.sweeps) == 0 {
		fmt.Fprintf(out, "sweeps: none ran (--sweep-interval %s)\n", c.sweepInterval)
		return
	}
	var took []time.Duration
	var marked, deleted, deletedResources, failed int
	var during []float64
	for _, s := range p.sweeps {
		took = append(took, s.took)
		marked, deleted, deletedResources = marked+s.marked, deleted+s.deleted, deletedResources+s.deletedResources
		if s.err != "" {
			failed++
		}
		if m, ok := p.res.maxDuring(s.start, s.start.Add(s.took)); ok {
			during = append(during, ms(m))
		}
	}
	slices.Sort(took)
	fmt.Fprintf(out, "\nsweeps: %d every %s (heartbeat timeout %s), wall time median %s, max %s; %d failed; marked unhealthy %d, deleted %d nodes and %d resource reports\n",
		len(p.sweeps), c.sweepInterval, c.heartbeatTimeout, took[len(took)/2].Round(time.Microsecond), took[len(took)-1].Round(time.Microsecond),
		failed, marked, deleted, deletedResources)
	var with99, with999, without99, without999 []float64
	for i, w := range p.res.windows {
		p99, p999 := float64(w.lat.ValueAtQuantile(99))/1000, float64(w.lat.ValueAtQuantile(99.9))/1000
		if len(p.windowSweeps(i)) > 0 {
			with99, with999 = append(with99, p99), append(with999, p999)
		} else {
			without99, without999 = append(without99, p99), append(without999, p999)
		}
	}
	group := func(name string, v99, v999 []float64) {
		if len(v99) == 0 {
			fmt.Fprintf(out, "  %-24s none\n", name)
			return
		}
		fmt.Fprintf(out, "  %-24s %2d: p99 median %.2fms max %.2fms; p99.9 median %.2fms max %.2fms\n",
			name, len(v99), median(v99), slices.Max(v99), median(v999), slices.Max(v999))
	}
	group("windows with a sweep", with99, with999)
	group("windows without", without99, without999)
	if len(with999) > 0 && len(without999) > 0 {
		fmt.Fprintf(out, "  p99.9, windows with a sweep / without (medians): %.2fx\n", median(with999)/median(without999))
	}
	if len(during) > 0 {
		fmt.Fprintf(out, "  slowest call due while a sweep ran (%s slices): median over sweeps %.2fms, max %.2fms; whole-run p99.9 %s\n",
			sliceLen, median(during), slices.Max(during), usDur(p.total.lat.ValueAtQuantile(99.9)))
	}
}

// compare prints the service's latencies and CPU as ratios of the no-op
// baseline's.
func (p *soakPhase) compare(out io.Writer, base *soakPhase) {
	q := func(h *loopWindow, q float64) float64 { return float64(h.lat.ValueAtQuantile(q)) }
	fmt.Fprintf(out, "\nservice / no-op baseline: p50 %.2fx, p99 %.2fx, p99.9 %.2fx; achieved rate %.2fx",
		q(p.total, 50)/q(base.total, 50), q(p.total, 99)/q(base.total, 99), q(p.total, 99.9)/q(base.total, 99.9),
		(float64(p.total.ok())/p.res.end.Sub(p.res.start).Seconds())/(float64(base.total.ok())/base.res.end.Sub(base.res.start).Seconds()))
	if p.cpuServer >= 0 && base.cpuServer >= 0 {
		per := func(s *soakPhase) float64 { return s.cpuServer.Seconds() / float64(max(s.total.ok(), 1)) }
		fmt.Fprintf(out, "; server CPU per call %.2fx", per(p)/per(base))
	}
	fmt.Fprintln(out)
}
