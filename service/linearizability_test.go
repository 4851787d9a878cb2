package service_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"

	"github.com/spear-next/sms/internal/nodehistory"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// Concurrent clients calling RegisterNode, UpdateNode, DeleteNode and
// GetNode on a few nodes through the wire produce a linearizable history on
// every backend, checked with porcupine.
func TestServiceLinearizable(t *testing.T) {
	const clients = 6
	ops := nodehistory.OpsPerClient(t, 100)
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, backend), connectHTTP, nil)
			history, aborted := recordNodeHistory(t, []*env{e}, clients, ops)
			nodehistory.Check(t, "sms-linearizability", history)
			t.Logf("%d operations on %d nodes by %d clients (%d writes aborted by conflicts, left out): linearizable",
				len(history), len(nodehistory.Nodes), clients, aborted)
		})
	}
}

// Reads through one replica reflect the writes acknowledged by the other:
// clients of two servers, each with its own registry view, produce one
// linearizable history. On Postgres the servers have a store each (two
// replicas of one database, the view of each fed by LISTEN/NOTIFY and
// fenced with a NOTIFY round trip); memory and SQLite are one process per
// store, so there the two views share one in-process feed.
func TestServiceLinearizableAcrossReplicas(t *testing.T) {
	const clients = 6
	ops := nodehistory.OpsPerClient(t, 100)
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			storeA := openStore(t, backend)
			storeB := storeA
			if backend == kvstore.BackendPostgres {
				dsn := storetest.PostgresDSN(t)
				storeA, storeB = openPostgresStore(t, dsn), openPostgresStore(t, dsn)
			}
			a, b := newEnv(t, storeA, connectHTTP, nil), newEnv(t, storeB, connectHTTP, nil)
			history, aborted := recordNodeHistory(t, []*env{a, b}, clients, ops)
			nodehistory.Check(t, "sms-linearizability-replicas", history)
			t.Logf("%d operations by %d clients through two replicas (%d writes aborted by conflicts, left out): linearizable",
				len(history), clients, aborted)
		})
	}
}

func openPostgresStore(t *testing.T, dsn string) sqlkv.Store {
	t.Helper()
	s, err := kvstore.Open(t.Context(), kvstore.Postgres(dsn))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// recordNodeHistory runs clients concurrent clients, one protocol after the
// other and one server of envs after the other, each making ops random
// calls on nodehistory.Nodes, and returns the history.
// Every call must succeed or return not_found, except that a write may be
// aborted (its conflict retries exhausted, so it did nothing); such writes
// are left out and counted.
func recordNodeHistory(t *testing.T, envs []*env, clients, ops int) (history []porcupine.Operation, aborted int) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		client := newClient(envs[c%len(envs)], protocols[c%len(protocols)])
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			for i := range ops {
				in := nodehistory.Input{UUID: nodehistory.Nodes[rng.IntN(len(nodehistory.Nodes))], V: fmt.Sprintf("c%d-%d", c, i)}
				call := time.Since(start).Nanoseconds()
				out, err := nodehistory.Call(ctx, client, rng, &in)
				ret := time.Since(start).Nanoseconds()
				if connect.CodeOf(err) == connect.CodeAborted && in.Op != "get" {
					mu.Lock()
					aborted++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("client %d: %s %s: %v", c, in.Op, in.UUID, err)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return history, aborted
}
