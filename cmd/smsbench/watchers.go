package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// streamsPerConn is how many watch streams share one HTTP/2 connection:
// below net/http's default limit of 250 concurrent streams per connection.
const streamsPerConn = 100

// watchersWorkload is --workload watchers, the soak of issue 11: with
// c.nodes registered, GetNode from c.readers clients for c.duration (the
// same-run baseline), then again while c.watchers WatchNodes streams (gRPC,
// streamsPerConn per connection) are open and drained, then the streams
// close. It reports RSS (and, in-process, the Go heap) before, with the
// streams, and after they left, and GetNode p50/p99 both times.
func watchersWorkload(ctx context.Context, c config, url string, ids []string, out io.Writer) error {
	getNode := func() *stats {
		client, err := newClient(url, c.protocol, c.readers)
		if err != nil {
			return &stats{errs: map[string]int{err.Error(): 1}}
		}
		return phase(ctx, c.duration, c.readers, []string{"get"}, func(ctx context.Context, w int, rec map[string]*recorder) {
			for ctx.Err() == nil {
				id := ids[rand.IntN(len(ids))]
				rec["get"].call(func() error {
					_, err := client.GetNode(ctx, &sms.GetNodeRequest{Uuid: id})
					return err
				})
			}
		})["get"]
	}
	// memory prints, and returns, the RSS and (in-process) the Go heap.
	memory := func(label string) (rssBytes, heap int64) {
		if c.addr == "" {
			runtime.GC()
			debug.FreeOSMemory()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			rssBytes, heap = rss(0), int64(m.HeapInuse)
			fmt.Fprintf(out, "%-28s RSS %s, Go heap in use %s (client and in-process server)\n", label+":", fmtBytes(rssBytes), fmtBytes(heap))
		} else if c.serverPID > 0 {
			rssBytes = rss(c.serverPID)
			fmt.Fprintf(out, "%-28s server RSS %s\n", label+":", fmtBytes(rssBytes))
		}
		return rssBytes, heap
	}

	rssBefore, heapBefore := memory("before the watchers")
	base := getNode()

	wctx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	var clients []smspbconnect.NodeServiceClient
	for range (c.watchers + streamsPerConn - 1) / streamsPerConn {
		clients = append(clients, connectGRPCClient(url))
	}
	start := time.Now()
	var ready, done sync.WaitGroup
	var mu sync.Mutex
	errs := map[string]int{}
	firstErr := map[string]string{} // the first message of each code
	var syncTimes []time.Duration   // when each stream's snapshot ended, from the start
	fail := func(err error) {
		code := connect.CodeOf(err).String()
		mu.Lock()
		if errs[code] == 0 {
			firstErr[code] = fmt.Sprintf("%s after %s", err, time.Since(start).Round(time.Millisecond))
		}
		errs[code]++
		mu.Unlock()
	}
	for i := range c.watchers {
		ready.Add(1)
		done.Go(func() {
			stream, err := clients[i/streamsPerConn].WatchNodes(wctx, &sms.WatchNodesRequest{})
			if err != nil {
				fail(err)
				ready.Done()
				return
			}
			defer stream.Close()
			synced := false
			for stream.Receive() {
				if !synced && stream.Msg().GetKind() == sms.WatchNodesResponse_KIND_SNAPSHOT_END {
					synced = true
					mu.Lock()
					syncTimes = append(syncTimes, time.Since(start))
					mu.Unlock()
					ready.Done()
				}
			}
			if !synced {
				fail(stream.Err())
				ready.Done()
			} else if wctx.Err() == nil {
				fail(stream.Err())
			}
		})
	}
	ready.Wait()
	fmt.Fprintf(out, "%d watch streams over %d nodes synced in %s; failed: %v\n", c.watchers, len(ids), time.Since(start).Round(time.Millisecond), errs)
	if len(syncTimes) > 0 {
		slices.Sort(syncTimes)
		first := syncTimes[0]
		fmt.Fprintf(out, "snapshot ends, from the first stream's open: first %s, median %s, last %s (%s nodes/s over all streams)\n",
			first.Round(time.Millisecond), syncTimes[len(syncTimes)/2].Round(time.Millisecond), syncTimes[len(syncTimes)-1].Round(time.Millisecond),
			fmtRate(float64(len(syncTimes))*float64(len(ids))/syncTimes[len(syncTimes)-1].Seconds()))
	}
	rssWith, heapWith := memory("with the watchers")
	perWatcher := func(a, b int64) string { return fmt.Sprintf("%.1f KiB", float64(a-b)/float64(c.watchers)/1024) }
	if rssWith > 0 && rssBefore > 0 {
		fmt.Fprintf(out, "%-28s RSS %s", "per open watcher:", perWatcher(rssWith, rssBefore))
		if c.addr == "" {
			fmt.Fprintf(out, ", Go heap %s (client's stream included)", perWatcher(heapWith, heapBefore))
		}
		fmt.Fprintln(out)
	}
	during := getNode()
	memory("after GetNode under watch")
	stopWatching()
	done.Wait()
	// The server ends each stream shortly after its client left.
	time.Sleep(time.Second)
	memory("after the watchers left")

	printStats(out, "GetNode, no watchers (baseline):", []string{"get"}, map[string]*stats{"get": base})
	printStats(out, fmt.Sprintf("GetNode, %d watchers open:", c.watchers), []string{"get"}, map[string]*stats{"get": during})
	if p := base.pct(0.99); p > 0 {
		fmt.Fprintf(out, "\nGetNode p99 with watchers / without: %.2fx; calls/s %.2fx\n",
			float64(during.pct(0.99))/float64(p), during.rate()/base.rate())
	}
	if len(errs) > 0 {
		for code, msg := range firstErr {
			fmt.Fprintf(out, "first %s: %s\n", code, msg)
		}
		return fmt.Errorf("watch streams failed, by code: %v", errs)
	}
	return nil
}
