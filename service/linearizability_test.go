package service_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spear-next/sms/internal/nodehistory"
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
			history := recordNodeHistory(t, e, clients, ops)
			nodehistory.Check(t, "sms-linearizability", history)
			t.Logf("%d operations on %d nodes by %d clients: linearizable",
				len(history), len(nodehistory.Nodes), clients)
		})
	}
}

// recordNodeHistory runs clients concurrent clients, one protocol after the
// other, each making ops random calls on nodehistory.Nodes, and returns the history.
// Every call must succeed or return not_found: contention between the
// clients is never an error.
func recordNodeHistory(t *testing.T, e *env, clients, ops int) (history []porcupine.Operation) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		client := newClient(e, protocols[c%len(protocols)])
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			for i := range ops {
				in := nodehistory.Input{UUID: nodehistory.Nodes[rng.IntN(len(nodehistory.Nodes))], V: fmt.Sprintf("c%d-%d", c, i)}
				call := time.Since(start).Nanoseconds()
				out, err := nodehistory.Call(ctx, client, rng, &in)
				ret := time.Since(start).Nanoseconds()
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
	return history
}
