package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// noopBatchNodes is how many nodes the no-op handler puts in one batch of a
// batch_snapshot watch: as many as the service does.
const noopBatchNodes = 1024

// watchModes are the snapshot forms the watch workload measures for
// --snapshot-batch: one node per message, batches, or both.
func watchModes(c config) []bool {
	switch c.snapshotBatch {
	case "on":
		return []bool{true}
	case "off":
		return []bool{false}
	}
	return []bool{false, true}
}

func modeName(batch bool) string {
	if batch {
		return "batch_snapshot"
	}
	return "one node per message"
}

// watchBench measures WatchNodes: how fast one client receives the
// snapshot of the whole fleet (c.repeat rounds; in each, for every form of
// --snapshot-batch, the service and then a no-op handler streaming as many
// pre-built nodes in the same form, on grpc-go's server for --protocol grpc
// --listener grpc and connect-go's otherwise), then what each further idle
// watcher costs the server: c.watchers watchers take their snapshot and
// stay open, and the server's memory is compared before and after.
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
	modes := watchModes(c)
	svc, base := make([][]float64, len(modes)), make([][]float64, len(modes))
	svcCPU, baseCPU := make([][]float64, len(modes)), make([][]float64, len(modes))
	for round := range c.repeat {
		for i, batch := range modes {
			n, d, cpu, err := snapshot(ctx, client, batch)
			if err != nil {
				return fmt.Errorf("service watch (%s): %w", modeName(batch), err)
			}
			bn, bd, bcpu, err := snapshot(ctx, noop, batch)
			if err != nil {
				return fmt.Errorf("no-op watch (%s): %w", modeName(batch), err)
			}
			svc[i], base[i] = append(svc[i], float64(n)/d.Seconds()), append(base[i], float64(bn)/bd.Seconds())
			svcCPU[i], baseCPU[i] = append(svcCPU[i], float64(n)/cpu.Seconds()), append(baseCPU[i], float64(bn)/bcpu.Seconds())
			fmt.Fprintf(out, "round %d, %s: snapshot of %d nodes in %s (%s nodes/s, %s CPU); no-op %d nodes in %s (%s nodes/s, %s CPU)\n",
				round+1, modeName(batch), n, d.Round(time.Millisecond), fmtRate(svc[i][round]), cpu.Round(time.Millisecond),
				bn, bd.Round(time.Millisecond), fmtRate(base[i][round]), bcpu.Round(time.Millisecond))
		}
	}
	cpuOf := "of this process (client and in-process server)"
	if c.addr != "" {
		cpuOf = "of this process (the client only)"
	}
	for i, batch := range modes {
		fmt.Fprintf(out, "\nWatchNodes snapshot, %s, median of %d [min-max]:\n  service %s nodes\n  no-op   %s nodes   service/no-op %.2f\n",
			modeName(batch), c.repeat, spread(svc[i]), spread(base[i]), median(svc[i])/median(base[i]))
		fmt.Fprintf(out, "  nodes per CPU-second %s: service %s, no-op %s, service/no-op %.2f\n",
			cpuOf, spread(svcCPU[i]), spread(baseCPU[i]), median(svcCPU[i])/median(baseCPU[i]))
	}
	if len(modes) == 2 {
		fmt.Fprintf(out, "\nservice batch_snapshot / one node per message: %.2fx\n", median(svc[1])/median(svc[0]))
	}

	if c.watchers == 0 {
		return nil
	}
	before := serverMemory(c)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	ready := make(chan error, c.watchers)
	start := time.Now()
	batch := modes[len(modes)-1]
	for range c.watchers {
		wg.Go(func() { idleWatch(wctx, client, batch, ready) })
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
	fmt.Fprintf(out, "\n%d idle watchers (each took its snapshot of %d nodes, %s; all in %s):\n", c.watchers, c.nodes, modeName(batch), took.Round(time.Millisecond))
	fmt.Fprintf(out, "  %s: %s before, %s with the watchers open: %.1f KiB per watcher\n",
		before.what, fmtBytes(before.bytes), fmtBytes(after.bytes), float64(after.bytes-before.bytes)/float64(c.watchers)/1024)
	cancel()
	wg.Wait()
	return nil
}

// snapshotNodes is how many nodes a snapshot event carries.
func snapshotNodes(ev *sms.WatchNodesResponse) int {
	if ev.GetNode() != nil {
		return 1
	}
	return len(ev.GetSnapshotNodes())
}

// snapshot opens a watch, reads its snapshot (batched or not) and closes
// it; it returns the nodes received, how long that took and the CPU time
// this process spent meanwhile (the in-process server's included; on a
// machine this loaded, the comparable figure).
func snapshot(ctx context.Context, client smspbconnect.NodeServiceClient, batch bool) (int, time.Duration, time.Duration, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cpu0, err := processCPU(0)
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	stream, err := client.WatchNodes(ctx, &sms.WatchNodesRequest{BatchSnapshot: batch})
	if err != nil {
		return 0, 0, 0, err
	}
	defer stream.Close()
	n := 0
	for stream.Receive() {
		switch ev := stream.Msg(); ev.Kind {
		case sms.WatchNodesResponse_KIND_SNAPSHOT:
			n += snapshotNodes(ev)
		case sms.WatchNodesResponse_KIND_SNAPSHOT_END:
			d := time.Since(start)
			cpu1, err := processCPU(0)
			return n, d, cpu1 - cpu0, err
		}
	}
	if err := stream.Err(); err != nil {
		return 0, 0, 0, err
	}
	return 0, 0, 0, errors.New("stream ended before its snapshot did")
}

// idleWatch takes a snapshot, reports on ready and then reads (nothing, on
// an idle fleet) until ctx ends.
func idleWatch(ctx context.Context, client smspbconnect.NodeServiceClient, batch bool, ready chan<- error) {
	stream, err := client.WatchNodes(ctx, &sms.WatchNodesRequest{BatchSnapshot: batch})
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

// sendSnapshot is the no-op handlers' WatchNodes: the snapshot (the same
// node watchNodes times, one per message or in batches of noopBatchNodes
// as the request asks), its end, and then nothing until ctx ends. The node
// is the size of a seeded one: h.node with the seed's health info.
func (h *noop) sendSnapshot(ctx context.Context, req *sms.WatchNodesRequest, send func(*sms.WatchNodesResponse) error) error {
	node := proto.CloneOf(h.node)
	node.HealthInfo = health
	if req.GetBatchSnapshot() {
		batch := make([]*sms.Node, noopBatchNodes)
		for i := range batch {
			batch[i] = node
		}
		for left := h.watchNodes; left > 0; left -= noopBatchNodes {
			ev := &sms.WatchNodesResponse{Kind: sms.WatchNodesResponse_KIND_SNAPSHOT, SnapshotNodes: batch[:min(left, noopBatchNodes)]}
			if err := send(ev); err != nil {
				return err
			}
		}
	} else {
		ev := &sms.WatchNodesResponse{Kind: sms.WatchNodesResponse_KIND_SNAPSHOT, Node: node}
		for range h.watchNodes {
			if err := send(ev); err != nil {
				return err
			}
		}
	}
	if err := send(&sms.WatchNodesResponse{Kind: sms.WatchNodesResponse_KIND_SNAPSHOT_END}); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// WatchNodes is sendSnapshot on connect-go.
func (h *noop) WatchNodes(ctx context.Context, req *sms.WatchNodesRequest, stream *connect.ServerStream[sms.WatchNodesResponse]) error {
	return h.sendSnapshot(ctx, req, stream.Send)
}

// WatchNodes is sendSnapshot on grpc-go.
func (h grpcNoop) WatchNodes(req *sms.WatchNodesRequest, stream grpc.ServerStreamingServer[sms.WatchNodesResponse]) error {
	return h.sendSnapshot(stream.Context(), req, stream.Send)
}
