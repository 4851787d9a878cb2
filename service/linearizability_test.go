package service_test

import (
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
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
			history := recordNodeHistory(t, []*env{e}, clients, ops)
			nodehistory.Check(t, "sms-linearizability", history)
			t.Logf("%d operations on %d nodes by %d clients: linearizable",
				len(history), len(nodehistory.Nodes), clients)
		})
	}
}

// Reads through one replica reflect the writes acknowledged by the other:
// clients of two servers, each with its own registry view, produce one
// linearizable history. On Postgres the servers have a store each (two
// replicas of one database, the view of each fed by LISTEN/NOTIFY and
// fenced with a NOTIFY round trip); memory and SQLite are one process per
// store, so there the two views share one in-process feed, whose fence
// waits for the writes in flight (see registry's
// TestViewReadFenceCoversCommittedWrites for the interleaving it once
// missed).
func TestServiceLinearizableAcrossReplicas(t *testing.T) {
	const clients = 6
	ops := nodehistory.OpsPerClient(t, 100)
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			storeA, storeB := storetest.Replicas(t, backend)
			a, b := newEnv(t, storeA, connectHTTP, nil), newEnv(t, storeB, connectHTTP, nil)
			history := recordNodeHistory(t, []*env{a, b}, clients, ops)
			nodehistory.Check(t, "sms-linearizability-replicas", history)
			t.Logf("%d operations by %d clients through two replicas: linearizable",
				len(history), clients)
		})
	}
}

// recordNodeHistory runs clients concurrent clients, one protocol after the
// other and one server of envs after the other (see nodehistory.Record).
func recordNodeHistory(t *testing.T, envs []*env, clients, ops int) []porcupine.Operation {
	t.Helper()
	var cs []smspbconnect.NodeServiceClient
	for c := range clients {
		cs = append(cs, newClient(envs[c%len(envs)], protocols[c%len(protocols)]))
	}
	return nodehistory.Record(t, cs, ops, 2)
}
