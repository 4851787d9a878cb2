package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// openFDs counts this process's open file descriptors, apart from those of
// files under dbDir: the SQLite store's connection pools open files per
// connection and never shrink, up to a fixed bound (checked separately).
func openFDs(t *testing.T, dbDir string) (other, db int) {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		if strings.HasPrefix(target, dbDir) {
			db++
		} else {
			other++
		}
	}
	return other, db
}

// After 10,000 calls and 1,000 watch streams opened and cancelled, over
// every protocol, the server (run in this process on SQLite) is back to
// the goroutines and file descriptors it had before, once the clients
// closed their connections.
func TestNoLeaks(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 calls; skipped with -short")
	}
	dbDir := t.TempDir()
	// SPEAR's layout: calls and watches go through both servers.
	grpcAddr, httpAddr, logs := startSplit(t, nil, "--kv-path", filepath.Join(dbDir, "sms.db"), "--sqlite-synchronous", "normal")
	ctx := context.Background()

	var transports []*clientTransport
	newClient := func(p protocol) smspbconnect.NodeServiceClient {
		c := cleartextClient(p)
		transports = append(transports, &clientTransport{c})
		return nodeClient(p, c, "http", grpcAddr, httpAddr)
	}
	// Every client's, also earlier ones': an HTTP/2 connection whose last
	// stream was still being reset when its client closed idle connections
	// becomes idle only afterwards, and neither server closes idle
	// connections soon (grpc-go's never does: agents keep theirs).
	closeClients := func() {
		for _, tr := range transports {
			tr.CloseIdleConnections()
		}
	}

	// Warm up: the store's pools and the first connections exist.
	warm := newClient(protocols[0])
	reg, err := warm.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
	if err != nil {
		t.Fatal(err)
	}
	id := reg.GetNodeUuid()
	closeClients()
	settle := func() (int, int) {
		runtime.GC()
		time.Sleep(100 * time.Millisecond)
		other, db := openFDs(t, dbDir)
		// The SQLite pools: one writer and max(4, GOMAXPROCS) readers,
		// each with at most the database file, its WAL and its shared-memory
		// file open.
		if bound := 3 * (1 + max(4, runtime.GOMAXPROCS(0))); db > bound {
			t.Fatalf("%d file descriptors on the database, more than its connection pools may hold (%d)", db, bound)
		}
		return runtime.NumGoroutine(), other
	}

	const calls, watches, workers = 10_000, 1_000, 10
	// Warm up: as many concurrent calls as the test makes, so the store's
	// connection pools reach the size they will have (pooled connections
	// are not leaks, and their number is bounded).
	run := func(calls, watches int) {
		var wg sync.WaitGroup
		for w := range workers {
			client := newClient(protocols[w%len(protocols)])
			wg.Go(func() { drive(t, client, id, calls/workers, watches/workers) })
		}
		wg.Wait()
		if t.Failed() {
			t.Fatalf("logs:\n%s", logs)
		}
		closeClients()
	}
	run(workers*20, workers)
	// Saturate the SQLite reader pool, which never shrinks: more concurrent
	// reads than it has connections.
	var wg sync.WaitGroup
	saturate := newClient(protocols[0])
	for range 32 {
		wg.Go(func() {
			for range 10 {
				if _, err := saturate.ListNodes(ctx, &smspb.ListNodesRequest{}); err != nil {
					t.Errorf("ListNodes: %v", err)
				}
			}
		})
	}
	wg.Wait()
	closeClients()
	baseG, baseFD := settle()
	baseNames := fdNames()
	run(calls, watches)

	deadline := time.Now().Add(10 * time.Second)
	for {
		closeClients()
		g, fd := settle()
		if g <= baseG && fd <= baseFD {
			t.Logf("after %d calls and %d watches: %d goroutines (baseline %d), %d file descriptors besides the database's (baseline %d)",
				calls, watches, g, baseG, fd, baseFD)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("10s after %d calls and %d watches: %d goroutines (baseline %d), %d file descriptors besides the database's (baseline %d: %v, now: %v)\n%s",
				calls, watches, g, baseG, fd, baseFD, baseNames, fdNames(), buf)
		}
	}
}

// drive makes calls unary calls (reads, heartbeats, an error path) and then
// opens watches WatchNodes streams, cancelling each after its snapshot.
func drive(t *testing.T, client smspbconnect.NodeServiceClient, id string, calls, watches int) {
	ctx := context.Background()
	for i := range calls {
		var err error
		switch i % 4 {
		case 0:
			_, err = client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: id})
		case 1:
			_, err = client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: id})
		case 2:
			_, err = client.ListNodes(ctx, &smspb.ListNodesRequest{})
		case 3:
			_, err = client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: "not-a-uuid"}) // an error path
			if connect.CodeOf(err) == connect.CodeInvalidArgument {
				err = nil
			}
		}
		if err != nil {
			t.Errorf("call %d: %v", i, err)
			return
		}
	}
	for i := range watches {
		wctx, cancel := context.WithCancel(ctx)
		stream, err := client.WatchNodes(wctx, &smspb.WatchNodesRequest{})
		if err != nil {
			cancel()
			t.Errorf("watch %d: %v", i, err)
			return
		}
		for stream.Receive() {
			if stream.Msg().GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
				break
			}
		}
		cancel()
		stream.Close()
	}
}

// fdNames lists what this process's file descriptors point to, for a
// failure message.
func fdNames() []string {
	fds, _ := os.ReadDir("/proc/self/fd")
	var names []string
	for _, fd := range fds {
		target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
		names = append(names, target)
	}
	return names
}

// clientTransport lets the test close a client's idle connections.
type clientTransport struct {
	c interface{ CloseIdleConnections() }
}

func (t *clientTransport) CloseIdleConnections() { t.c.CloseIdleConnections() }
