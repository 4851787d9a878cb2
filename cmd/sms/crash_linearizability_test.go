package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// envLinearizabilityOps sets how many operations each client of
// TestCrashLinearizable makes (150 by default); RELIABILITY.md's figures
// come from a larger value.
const envLinearizabilityOps = "SMS_LINEARIZABILITY_OPS"

// TestCrashLinearizable runs the binary with concurrent clients calling
// RegisterNode, UpdateNode, DeleteNode and GetNode on a few nodes, SIGKILLs
// it twice in the middle of the history and restarts it on the same
// database, and checks the whole history, across the kills, with
// porcupine. A write that got no answer is in doubt: it is recorded as
// returning after every other operation, so that porcupine may place it
// anywhere after its call, including never having happened. A read that got
// no answer is left out.
func TestCrashLinearizable(t *testing.T) {
	bin := buildBinary(t)
	ops := 150
	if s := os.Getenv(envLinearizabilityOps); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number of operations per client", envLinearizabilityOps, s)
		}
		ops = n
	}
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

// linInput is one NodeService call of a history: op is "register",
// "update", "delete" or "get"; v is the metadata value a write stores.
type linInput struct {
	op, uuid, v string
}

// linOutput is what the call returned: found is false for not_found
// (update, delete, get), v is the metadata value get read. unknown marks a
// write that got no answer.
type linOutput struct {
	found   bool
	v       string
	unknown bool
}

// linState is one node in the model: absent, or present with metadata v.
type linState struct {
	exists bool
	v      string
}

// linModel is one register per node uuid: Register (an upsert) sets v;
// Update sets v if the node exists and is not_found otherwise; Delete
// removes it and is not_found if it was absent; Get returns the current v
// or not_found. A write in doubt has the same effect, whatever the state,
// and any output.
var linModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byNode := map[string][]porcupine.Operation{}
		for _, op := range h {
			id := op.Input.(linInput).uuid
			byNode[id] = append(byNode[id], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byNode {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return linState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(linState), input.(linInput), output.(linOutput)
		switch in.op {
		case "register":
			return true, linState{true, in.v}
		case "update":
			if !s.exists {
				return out.unknown || !out.found, s
			}
			return out.unknown || out.found, linState{true, in.v}
		case "delete":
			return out.unknown || out.found == s.exists, linState{}
		case "get":
			return !out.unknown && out.found == s.exists && out.v == s.v, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(linInput), output.(linOutput)
		switch {
		case out.unknown:
			return fmt.Sprintf("%s(%q) -> no answer", in.op, in.v)
		case in.op == "get" && out.found:
			return fmt.Sprintf("get -> %q", out.v)
		case in.op == "get":
			return "get -> not_found"
		case in.op == "register":
			return fmt.Sprintf("register(%q)", in.v)
		case !out.found:
			return fmt.Sprintf("%s(%q) -> not_found", in.op, in.v)
		}
		return fmt.Sprintf("%s(%q)", in.op, in.v)
	},
	DescribeState: func(state any) string {
		if s := state.(linState); s.exists {
			return strconv.Quote(s.v)
		}
		return "absent"
	},
}

// linNodes are the uuids the clients share: fixed, so that Register is an
// upsert of a node other clients also write.
var linNodes = []string{
	"00000000-0000-4000-8000-000000000001",
	"00000000-0000-4000-8000-000000000002",
	"00000000-0000-4000-8000-000000000003",
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
	addr := freeAddr(t)
	baseURL := "http://" + addr
	args := append([]string{"--addr", addr, "--heartbeat-timeout", "24h", "--cleanup-interval", "1h"}, storeArgs...)

	p := startProcess(t, bin, args...)
	p.waitHealthy(t, baseURL)
	srv := &crashServer{up: make(chan struct{})}
	close(srv.up)

	start := time.Now()
	var (
		mu                 sync.Mutex
		history            []porcupine.Operation
		inDoubt            []porcupine.Operation
		readsLost, aborted int
		done               atomic.Int64 // calls made, answered or not
		running            atomic.Int64 // clients not finished
	)
	var wg sync.WaitGroup
	for c := range clients {
		running.Add(1)
		wg.Go(func() {
			defer running.Add(-1)
			rng := rand.New(rand.NewPCG(uint64(c), 3))
			opts := protocols[c%len(protocols)].opts
			client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL, opts...)
			for i := range opsPerClient {
				in := linInput{uuid: linNodes[rng.IntN(len(linNodes))], v: fmt.Sprintf("c%d-%d", c, i)}
				gen := srv.generation()
				call := time.Since(start).Nanoseconds()
				out, err := callLin(t.Context(), client, rng, &in)
				ret := time.Since(start).Nanoseconds()
				done.Add(1)
				switch {
				case err == nil:
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
					mu.Unlock()
					continue
				case connect.CodeOf(err) == connect.CodeAborted && in.op != "get":
					// Conflict retries exhausted: the write did nothing.
					mu.Lock()
					aborted++
					mu.Unlock()
					continue
				}
				if !srv.failed(gen) {
					t.Errorf("client %d: %s %s with the process up: %v", c, in.op, in.uuid, err)
					return
				}
				mu.Lock()
				if in.op == "get" {
					readsLost++
				} else {
					// A client of its own, so that this client's later calls
					// do not look concurrent with it in the visualization.
					inDoubt = append(inDoubt, porcupine.Operation{ClientId: clients + len(inDoubt), Input: in, Call: call,
						Output: linOutput{unknown: true}, Return: math.MaxInt64})
				}
				mu.Unlock()
				// Connections to the killed process are dead.
				client = smspbconnect.NewNodeServiceClient(h2cClient(), baseURL, opts...)
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
		if err := p.cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		<-p.exited
		p = startProcess(t, bin, args...)
		p.waitHealthy(t, baseURL)
		srv.mu.Lock()
		srv.gen++
		srv.down = false
		close(srv.up)
		srv.mu.Unlock()
	}
	wg.Wait()
	p.stop(t, os.Interrupt)
	if t.Failed() {
		t.FailNow()
	}

	all := append(history, inDoubt...)
	res, info := porcupine.CheckOperationsVerbose(linModel, all, time.Minute)
	if res != porcupine.Ok {
		f, err := os.CreateTemp("", "sms-crash-linearizability-*.html")
		if err != nil {
			t.Fatalf("%d operations: porcupine says %v; visualization: %v", len(all), res, err)
		}
		defer f.Close()
		if err := porcupine.Visualize(linModel, info, f); err != nil {
			t.Errorf("visualize: %v", err)
		}
		t.Fatalf("%d operations across %d kills: porcupine says %v; see %s", len(all), kills, res, f.Name())
	}
	t.Logf("%d kills, %d clients, %d nodes: %d operations answered, %d writes in doubt, %d reads without an answer (left out), %d writes aborted by conflicts (left out): linearizable",
		kills, clients, len(linNodes), len(history), len(inDoubt), readsLost, aborted)
}

// callLin picks an operation (40% get, 25% update, 25% register, 10%
// delete), sets in.op, makes the call and returns its output; not_found is
// an output, not an error.
func callLin(ctx context.Context, client smspbconnect.NodeServiceClient, rng *rand.Rand, in *linInput) (linOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	node := &smspb.Node{IpAddress: "10.0.0.1", Port: 9000, Metadata: map[string]string{"v": in.v}}
	var out linOutput
	var err error
	switch r := rng.IntN(100); {
	case r < 40:
		in.op, in.v = "get", ""
		var resp *smspb.GetNodeResponse
		resp, err = client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: in.uuid})
		if err == nil {
			out = linOutput{found: resp.GetFound(), v: resp.GetNode().GetMetadata()["v"]}
		}
	case r < 65:
		in.op = "update"
		_, err = client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: in.uuid, Node: node})
	case r < 90:
		in.op = "register"
		node.Uuid = in.uuid
		_, err = client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: node})
	default:
		in.op = "delete"
		_, err = client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: in.uuid})
	}
	if connect.CodeOf(err) == connect.CodeNotFound {
		return linOutput{}, nil
	}
	if err == nil && in.op != "get" {
		out.found = true
	}
	return out, err
}
