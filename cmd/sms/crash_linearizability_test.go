package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spear-next/sms/internal/nodehistory"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestCrashLinearizable runs the binary with concurrent clients calling
// RegisterNode, UpdateNode, DeleteNode and GetNode on a few nodes, SIGKILLs
// it twice in the middle of the history and restarts it on the same
// database, and checks the whole history, across the kills, with
// porcupine. A write that got no answer is in doubt: it is recorded as
// returning after every other operation, so that porcupine may place it
// anywhere after its call, including never having happened. A read that got
// no answer is left out.
func TestCrashLinearizable(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	ops := nodehistory.OpsPerClient(t, 150)
	for _, sync := range []string{"full", "normal"} {
		t.Run("sqlite-"+sync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sms.db")
			runCrashHistory(t, bin, ops, "--kv-path", path, "--sqlite-synchronous", sync)
		})
	}
	t.Run("postgres", func(t *testing.T) {
		runCrashHistory(t, bin, ops, "--kv-backend", "postgres", "--kv-dsn", storetest.PostgresDSN(t))
	})
}

// crashServer is the running process and whether it is being killed and
// restarted: down from just before the kill until the new process is
// healthy, when up is closed and gen counts one more.
type crashServer struct {
	mu   sync.Mutex
	gen  int
	down bool
	up   chan struct{}
}

// failed handles a call, made while gen was gen, that got no answer. It
// reports whether that is expected (the process was killed since), and
// waits until it serves again.
func (s *crashServer) failed(gen int) bool {
	s.mu.Lock()
	expected, up := s.down || s.gen != gen, s.up
	s.mu.Unlock()
	if expected {
		<-up
	}
	return expected
}

func (s *crashServer) generation() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

func runCrashHistory(t *testing.T, bin string, opsPerClient int, storeArgs ...string) {
	const clients, kills = 6, 2
	// SPEAR's layout, so that clients call through every protocol, gRPC on
	// grpc-go's server included.
	grpcAddr, httpAddr := testutil.HoldPort(t), testutil.HoldPort(t)
	baseURL := "http://" + httpAddr
	args := append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--heartbeat-timeout", "24h", "--cleanup-interval", "1h"}, storeArgs...)

	p := testutil.StartProcess(t, bin, args...)
	p.WaitHealthy(t, baseURL)
	srv := &crashServer{up: make(chan struct{})}
	close(srv.up)

	start := time.Now()
	var (
		mu        sync.Mutex
		history   []porcupine.Operation
		inDoubt   []porcupine.Operation
		readsLost int
		done      atomic.Int64 // calls made, answered or not
		running   atomic.Int64 // clients not finished
	)
	var wg sync.WaitGroup
	for c := range clients {
		running.Add(1)
		wg.Go(func() {
			defer running.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(c), 3))
			proto := protocols[c%len(protocols)]
			client := nodeClient(proto, cleartextClient(proto), "http", grpcAddr, httpAddr)
			for i := range opsPerClient {
				in := nodehistory.Input{UUID: nodehistory.Nodes[rng.IntN(len(nodehistory.Nodes))], V: fmt.Sprintf("c%d-%d", c, i)}
				gen := srv.generation()
				call := time.Since(start).Nanoseconds()
				out, err := nodehistory.Call(t.Context(), client, rng, &in)
				ret := time.Since(start).Nanoseconds()
				done.Add(1)
				switch {
				case err == nil:
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
					continue
				}
				if !srv.failed(gen) {
					t.Errorf("client %d: %s %s with the process up: %v", c, in.Op, in.UUID, err)
					return
				}
				mu.Lock()
				if in.Op == "get" {
					readsLost++
				} else {
					// A client of its own, so that this client's later calls
					// do not look concurrent with it in the visualization.
					inDoubt = append(inDoubt, porcupine.Operation{ClientId: clients + len(inDoubt), Input: in, Call: call,
						Output: nodehistory.Output{Unknown: true}, Return: math.MaxInt64})
				}
				mu.Unlock()
				// Connections to the killed process are dead.
				client = nodeClient(proto, cleartextClient(proto), "http", grpcAddr, httpAddr)
			}
		})
	}

	total := int64(clients * opsPerClient)
	for k := range kills {
		// Kill after a share of the calls, not after a time: the same
		// amount of history before and after each kill on a slow machine.
		for done.Load() < total*int64(k+1)/(kills+1) && running.Load() > 0 {
			time.Sleep(time.Millisecond)
		}
		srv.mu.Lock()
		srv.down, srv.up = true, make(chan struct{})
		srv.mu.Unlock()
		if err := p.Cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-p.Exited
		p = testutil.StartProcess(t, bin, args...)
		p.WaitHealthy(t, baseURL)
		srv.mu.Lock()
		srv.gen++
		srv.down = false
		close(srv.up)
		srv.mu.Unlock()
	}
	wg.Wait()
	p.Stop(t, os.Interrupt)
	if t.Failed() {
		t.FailNow()
	}

	all := append(history, inDoubt...)
	nodehistory.Check(t, "sms-crash-linearizability", all)
	t.Logf("%d kills, %d clients, %d nodes: %d operations answered, %d writes in doubt, %d reads without an answer (left out): linearizable",
		kills, clients, len(nodehistory.Nodes), len(history), len(inDoubt), readsLost)
}
