package main

import (
	"syscall"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/nodehistory"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// Two replicas on one Postgres database: a watcher of one hears what the
// other did, and the liveness sweeps of both together produce exactly one
// unhealthy event per silent node. How fast the news travels is a figure it
// logs (RELIABILITY.md), not something it asserts.
func TestTwoReplicasOnePostgres(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	dsn := storetest.PostgresDSN(t)
	start := func() (smspbconnect.NodeServiceClient, *testutil.Process) {
		// SPEAR's layout; the watches and writes go to grpc-go's server.
		grpcAddr, httpAddr := testutil.HoldPort(t), testutil.HoldPort(t)
		p := testutil.StartProcess(t, bin, "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--kv-backend", "postgres", "--kv-dsn", dsn,
			"--heartbeat-timeout", "1s", "--cleanup-interval", "100ms")
		p.WaitHealthy(t, "http://"+httpAddr)
		grpcGo := protocols[3]
		return nodeClient(grpcGo, cleartextClient(grpcGo), "http", grpcAddr, httpAddr), p
	}
	clientA, procA := start()
	clientB, procB := start()
	watchA, _ := openWatch(t, clientA)
	watchB, _ := openWatch(t, clientB)
	ctx := t.Context()

	const nodes = 5
	var ids []string
	var worst time.Duration
	for range nodes {
		resp, err := clientA.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
		if err != nil {
			t.Fatalf("RegisterNode on A: %v", err)
		}
		registered := time.Now()
		ids = append(ids, resp.GetNodeUuid())
		select {
		case m := <-watchB:
			if m.GetKind() != smspb.WatchNodesResponse_KIND_REGISTERED || m.GetNode().GetUuid() != resp.GetNodeUuid() {
				t.Fatalf("B's watcher got %v, want REGISTERED %s", m, resp.GetNodeUuid())
			}
			worst = max(worst, time.Since(registered))
		case <-time.After(giveUp):
			t.Fatalf("B's watcher never heard of a node registered on A (gave up after %v)\nA:\n%s\nB:\n%s", giveUp, procA.Output, procB.Output)
		}
	}
	t.Logf("measured: slowest delivery from A's RegisterNode to B's watcher: %v", worst)

	// No heartbeats: after the 1 s timeout both sweepers race to mark each
	// node; every watcher must see one unhealthy event per node, and no more
	// events however many sweeps follow.
	for name, w := range map[string]<-chan *smspb.WatchNodesResponse{"A": watchA, "B": watchB} {
		unhealthy := map[string]int{}
		deadline := time.After(giveUp)
		settle := (<-chan time.Time)(nil)
	collect:
		for {
			select {
			case m, ok := <-w:
				if !ok {
					t.Fatalf("%s's watch ended", name)
				}
				switch {
				case m.GetKind() == smspb.WatchNodesResponse_KIND_REGISTERED && name == "A":
					continue // A's watcher saw the registrations too
				case m.GetKind() == smspb.WatchNodesResponse_KIND_STATUS_CHANGED && m.GetNode().GetStatus() == "unhealthy":
					unhealthy[m.GetNode().GetUuid()]++
					if len(unhealthy) == nodes && settle == nil {
						// Ten more sweeps of each replica.
						settle = time.After(time.Second)
					}
				default:
					t.Errorf("%s's watcher got unexpected %v", name, m)
				}
			case <-settle:
				break collect
			case <-deadline:
				t.Fatalf("%s's watcher saw %d of %d nodes go unhealthy (gave up after %v)", name, len(unhealthy), nodes, giveUp)
			}
		}
		for _, id := range ids {
			if unhealthy[id] != 1 {
				t.Errorf("%s's watcher saw %d unhealthy events for %s, want 1", name, unhealthy[id], id)
			}
		}
	}
	procA.Stop(t, syscall.SIGTERM)
	procB.Stop(t, syscall.SIGTERM)
}

// Two replicas on one Postgres database serve one linearizable history:
// clients of A and clients of B call RegisterNode, UpdateNode, DeleteNode
// and GetNode on the same few nodes, so every read through one replica must
// reflect the writes the other acknowledged before it (the read fence of
// the registry view), checked with porcupine.
func TestTwoReplicasLinearizable(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	dsn := storetest.PostgresDSN(t)
	ops := nodehistory.OpsPerClient(t, 100)
	var replicas []smspbconnect.NodeServiceClient
	var procs []*testutil.Process
	for range 2 {
		grpcAddr, httpAddr := testutil.HoldPort(t), testutil.HoldPort(t)
		p := testutil.StartProcess(t, bin, "--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--kv-backend", "postgres", "--kv-dsn", dsn,
			"--heartbeat-timeout", "24h", "--cleanup-interval", "1h")
		p.WaitHealthy(t, "http://"+httpAddr)
		grpcGo := protocols[3]
		replicas = append(replicas, nodeClient(grpcGo, cleartextClient(grpcGo), "http", grpcAddr, httpAddr))
		procs = append(procs, p)
	}
	var clients []smspbconnect.NodeServiceClient
	for c := range 6 {
		clients = append(clients, replicas[c%len(replicas)])
	}
	history := nodehistory.Record(t, clients, ops, 3)
	nodehistory.Check(t, "sms-replicas-linearizability", history)
	t.Logf("%d operations by %d clients through two replicas: linearizable",
		len(history), len(clients))
	for _, p := range procs {
		p.Stop(t, syscall.SIGTERM)
	}
}
