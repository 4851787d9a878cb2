package main

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	_ "modernc.org/sqlite" // PRAGMA integrity_check on the killed server's file

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// envCrashRounds sets how many kill-and-restart rounds TestCrash runs per
// backend and setting; RELIABILITY.md's figures come from
// SMS_CRASH_ROUNDS=30.
const envCrashRounds = "SMS_CRASH_ROUNDS"

func crashRounds(t *testing.T) int {
	t.Helper()
	s := os.Getenv(envCrashRounds)
	if s == "" {
		return 3
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of rounds", envCrashRounds, s)
	}
	return n
}

// TestCrash runs the binary, drives concurrent writes through it, kills it
// with SIGKILL at a random moment, restarts it and checks that every
// acknowledged write survived, that no multi-key write (Register: node and
// heartbeat records; Delete: node, heartbeat and resource records) is half
// applied, and for SQLite that the file passes PRAGMA integrity_check. A
// write cut off by the kill is in doubt: after the restart it must be
// either fully there or fully absent.
func TestCrash(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	rounds := crashRounds(t)
	for _, sync := range []string{"full", "normal"} {
		t.Run("sqlite-"+sync, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sms.db")
			cfg := kvstore.SQLite(path)
			cfg.SQLiteSynchronous = sync
			runCrashRounds(t, bin, rounds, cfg, path,
				"--kv-path", path, "--sqlite-synchronous", sync)
		})
	}
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		runCrashRounds(t, bin, rounds, kvstore.Postgres(dsn), "",
			"--kv-backend", "postgres", "--kv-dsn", dsn)
	})
}

// nodeState is what the test knows of one node: whether it exists and the
// "seq" of its metadata and of its resource record's metadata (0: none).
type nodeState struct {
	exists      bool
	seq, resSeq int64
}

// crashNode is a node written by exactly one worker, so that its writes are
// sequential and at most one is in doubt at a kill.
type crashNode struct {
	id      string
	acked   nodeState  // after the last acknowledged write
	pending *nodeState // after the write in flight, if any
}

// crashStats are the figures a run reports (and RELIABILITY.md quotes).
type crashStats struct {
	acked, inDoubt, inDoubtApplied, lost int
}

func runCrashRounds(t *testing.T, bin string, rounds int, cfg kvstore.Config, sqlitePath string, storeArgs ...string) {
	const workers, nodesPerWorker = 8, 4
	// SPEAR's layout, so that the workers write through every protocol,
	// gRPC on grpc-go's server included.
	grpcAddr, httpAddr := testutil.HoldPort(t), testutil.HoldPort(t)
	baseURL := "http://" + httpAddr
	// Long liveness settings: the sweeper must not remove the resource
	// records the test checks, however long the run.
	args := append([]string{"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--heartbeat-timeout", "24h", "--cleanup-interval", "1h"}, storeArgs...)

	nodes := make([][]*crashNode, workers)
	for w := range nodes {
		for range nodesPerWorker {
			nodes[w] = append(nodes[w], &crashNode{id: uuid.NewString()})
		}
	}
	var seq atomic.Int64
	var stats crashStats
	for round := range rounds {
		p := testutil.StartProcess(t, bin, args...)
		p.WaitHealthy(t, baseURL)
		if round > 0 {
			verifyAfterCrash(t, round, baseURL, nodes, &stats)
		}
		if t.Failed() {
			t.Fatalf("round %d: giving up\n%s", round, p.Output)
		}

		var killed atomic.Bool
		var wg sync.WaitGroup
		var mu sync.Mutex
		for w := range workers {
			client := nodeClient(protocols[w%len(protocols)], cleartextClient(protocols[w%len(protocols)]), "http", grpcAddr, httpAddr)
			rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			wg.Go(func() {
				n := driveUntilKilled(t, client, rng, nodes[w], &seq, &killed)
				mu.Lock()
				stats.acked += n
				mu.Unlock()
			})
		}
		time.Sleep(time.Duration(rand.IntN(400)+20) * time.Millisecond)
		killed.Store(true)
		if err := p.Cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-p.Exited
		wg.Wait()

		checkStoreAfterCrash(t, round, cfg, sqlitePath)
	}
	// A last restart checks the last round's writes.
	p := testutil.StartProcess(t, bin, args...)
	p.WaitHealthy(t, baseURL)
	verifyAfterCrash(t, rounds, baseURL, nodes, &stats)
	p.Stop(t, os.Interrupt)
	t.Logf("%d rounds: %d writes acknowledged, %d in doubt at a kill (%d of them applied), %d lost",
		rounds, stats.acked, stats.inDoubt, stats.inDoubtApplied, stats.lost)
}

// driveUntilKilled writes to the worker's nodes one call at a time until a
// call fails, which it must only do once the server was killed. It returns
// the number of acknowledged writes.
func driveUntilKilled(t *testing.T, client smspbconnect.NodeServiceClient, rng *rand.Rand, nodes []*crashNode, seq *atomic.Int64, killed *atomic.Bool) int {
	acked := 0
	for {
		n := nodes[rng.IntN(len(nodes))]
		s := seq.Add(1)
		meta := map[string]string{"seq": strconv.FormatInt(s, 10)}
		next := n.acked
		var call func(ctx context.Context) error
		switch r := rng.IntN(100); {
		case !n.acked.exists || r < 15: // (re-)register: node + heartbeat records
			if !n.acked.exists {
				next.resSeq = 0
			}
			next.exists, next.seq = true, s
			call = func(ctx context.Context) error {
				_, err := client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{
					Uuid: n.id, IpAddress: "10.0.0.1", Port: 9000, Metadata: meta}})
				return err
			}
		case r < 55:
			next.seq = s
			call = func(ctx context.Context) error {
				_, err := client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: n.id, Node: &smspb.Node{
					IpAddress: "10.0.0.1", Port: 9000, Metadata: meta}})
				return err
			}
		case r < 85:
			next.resSeq = s
			call = func(ctx context.Context) error {
				_, err := client.UpdateNodeResource(ctx, &smspb.UpdateNodeResourceRequest{Resource: &smspb.NodeResource{
					NodeUuid: n.id, CpuUsagePercent: 50, ResourceMetadata: meta}})
				return err
			}
		default: // delete: node + heartbeat + resource records
			next = nodeState{}
			call = func(ctx context.Context) error {
				_, err := client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: n.id})
				return err
			}
		}
		n.pending = &next
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := call(ctx)
		cancel()
		if err != nil {
			if !killed.Load() {
				t.Errorf("%s before the kill: %v", n.id, err)
			}
			return acked
		}
		n.acked, n.pending = next, nil
		acked++
	}
}

// verifyAfterCrash reads every node back and requires its last acknowledged
// state, or the state its in-doubt write would have made.
func verifyAfterCrash(t *testing.T, round int, baseURL string, nodes [][]*crashNode, stats *crashStats) {
	t.Helper()
	client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)
	ctx := t.Context()
	for _, ns := range nodes {
		for _, n := range ns {
			var got nodeState
			nr, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: n.id})
			if connect.CodeOf(err) == connect.CodeNotFound {
				err = nil // absent: got.exists stays false
			}
			if err != nil {
				t.Fatalf("round %d: GetNode(%s): %v", round, n.id, err)
			}
			if nr.GetFound() {
				got.exists = true
				got.seq = metaSeq(t, nr.GetNode().GetMetadata())
			}
			rr, err := client.GetNodeResource(ctx, &smspb.GetNodeResourceRequest{NodeUuid: n.id})
			if err != nil {
				t.Fatalf("round %d: GetNodeResource(%s): %v", round, n.id, err)
			}
			if rr.GetFound() {
				got.resSeq = metaSeq(t, rr.GetResource().GetResourceMetadata())
			}
			switch {
			case n.pending != nil && got == *n.pending:
				stats.inDoubt++
				stats.inDoubtApplied++
			case got == n.acked:
				if n.pending != nil {
					stats.inDoubt++
				}
			default:
				stats.lost++
				t.Errorf("round %d: node %s after the restart = %+v, want %+v (acknowledged) or %+v (in doubt)",
					round, n.id, got, n.acked, n.pending)
			}
			n.acked, n.pending = got, nil
		}
	}
}

func metaSeq(t *testing.T, m map[string]string) int64 {
	t.Helper()
	s, err := strconv.ParseInt(m["seq"], 10, 64)
	if err != nil {
		t.Fatalf("metadata %v: no seq", m)
	}
	return s
}

// checkStoreAfterCrash looks at the killed server's store directly: SQLite's
// integrity check, and no record of a node without the others that are
// written in the same transaction.
func checkStoreAfterCrash(t *testing.T, round int, cfg kvstore.Config, sqlitePath string) {
	t.Helper()
	ctx := t.Context()
	if sqlitePath != "" {
		db, err := sql.Open("sqlite", sqlitePath)
		if err != nil {
			t.Fatal(err)
		}
		var res string
		err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res)
		db.Close()
		if err != nil || res != "ok" {
			t.Fatalf("round %d: PRAGMA integrity_check = %q, %v; want ok", round, res, err)
		}
	}
	store, err := kvstore.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("round %d: open the store after the kill: %v", round, err)
	}
	defer store.Close()
	keys := map[string]map[string]bool{}
	for _, prefix := range []string{"node:", "heartbeat:", "resource:"} {
		ks, err := store.Keys(ctx, []byte(prefix))
		if err != nil {
			t.Fatal(err)
		}
		keys[prefix] = map[string]bool{}
		for _, k := range ks {
			keys[prefix][string(k[len(prefix):])] = true
		}
	}
	for id := range keys["node:"] {
		if !keys["heartbeat:"][id] {
			t.Errorf("round %d: node %s has no heartbeat record (half-applied Register or Delete)", round, id)
		}
	}
	for _, prefix := range []string{"heartbeat:", "resource:"} {
		for id := range keys[prefix] {
			if !keys["node:"][id] {
				t.Errorf("round %d: %s record of %s without its node (half-applied Delete)", round, prefix, id)
			}
		}
	}
}
