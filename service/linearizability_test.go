package service_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/anishathalye/porcupine"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// envLinearizabilityOps sets how many operations each client of
// TestServiceLinearizable makes; RELIABILITY.md's figures come from a
// larger value than the default.
const envLinearizabilityOps = "SMS_LINEARIZABILITY_OPS"

func linearizabilityOps(t *testing.T, def int) int {
	t.Helper()
	s := os.Getenv(envLinearizabilityOps)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of operations per client", envLinearizabilityOps, s)
	}
	return n
}

// nodeInput is one NodeService call of a history: op is "register",
// "update", "delete" or "get"; v is the metadata value a write stores.
type nodeInput struct {
	op, uuid, v string
}

// nodeOutput is what the call returned: found is false for not_found
// (update, delete, get), v is the metadata value get read.
type nodeOutput struct {
	found bool
	v     string
}

// nodeState is one node in the model: absent, or present with metadata v.
type nodeState struct {
	exists bool
	v      string
}

// nodeModel is one register per node uuid: Register (an upsert) sets v;
// Update sets v if the node exists and is not_found otherwise; Delete
// removes it and is not_found if it was absent; Get returns the current v
// or not_found.
var nodeModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byNode := map[string][]porcupine.Operation{}
		for _, op := range h {
			id := op.Input.(nodeInput).uuid
			byNode[id] = append(byNode[id], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byNode {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return nodeState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(nodeState), input.(nodeInput), output.(nodeOutput)
		switch in.op {
		case "register":
			return true, nodeState{true, in.v}
		case "update":
			if !s.exists {
				return !out.found, s
			}
			return out.found, nodeState{true, in.v}
		case "delete":
			return out.found == s.exists, nodeState{}
		case "get":
			return out == nodeOutput{s.exists, s.v}, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(nodeInput), output.(nodeOutput)
		switch in.op {
		case "get":
			if !out.found {
				return "get -> not_found"
			}
			return fmt.Sprintf("get -> %q", out.v)
		case "register":
			return fmt.Sprintf("register(%q)", in.v)
		}
		if !out.found {
			return fmt.Sprintf("%s(%q) -> not_found", in.op, in.v)
		}
		return fmt.Sprintf("%s(%q)", in.op, in.v)
	},
	DescribeState: func(state any) string {
		if s := state.(nodeState); s.exists {
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

// Concurrent clients calling RegisterNode, UpdateNode, DeleteNode and
// GetNode on a few nodes through the wire produce a linearizable history on
// every backend, checked with porcupine.
func TestServiceLinearizable(t *testing.T) {
	const clients = 6
	ops := linearizabilityOps(t, 100)
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, backend), nil, nil)
			history, aborted := recordNodeHistory(t, e, clients, ops)
			checkNodeHistory(t, history)
			t.Logf("%d operations on %d nodes by %d clients (%d writes aborted by conflicts, left out): linearizable",
				len(history), len(linNodes), clients, aborted)
		})
	}
}

// checkNodeHistory fails t unless porcupine finds history linearizable; the
// visualization of a failed check is written to a file in os.TempDir(),
// not t.TempDir(), which is removed when the test ends.
func checkNodeHistory(t *testing.T, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(nodeModel, history, time.Minute)
	if res == porcupine.Ok {
		return
	}
	f, err := os.CreateTemp("", "sms-linearizability-*.html")
	if err != nil {
		t.Fatalf("%d operations: porcupine says %v; visualization: %v", len(history), res, err)
	}
	defer f.Close()
	if err := porcupine.Visualize(nodeModel, info, f); err != nil {
		t.Errorf("visualize: %v", err)
	}
	t.Fatalf("%d operations: porcupine says %v; see %s", len(history), res, f.Name())
}

// recordNodeHistory runs clients concurrent clients, one protocol after the
// other, each making ops random calls on linNodes, and returns the history.
// Every call must succeed or return not_found, except that a write may be
// aborted (its conflict retries exhausted, so it did nothing); such writes
// are left out and counted.
func recordNodeHistory(t *testing.T, e *env, clients, ops int) (history []porcupine.Operation, aborted int) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range clients {
		client := newClient(e, protocols[c%len(protocols)].opts)
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 2))
			for i := range ops {
				in := nodeInput{uuid: linNodes[rng.IntN(len(linNodes))], v: fmt.Sprintf("c%d-%d", c, i)}
				call := time.Since(start).Nanoseconds()
				out, err := callNode(ctx, client, rng, &in)
				ret := time.Since(start).Nanoseconds()
				if connect.CodeOf(err) == connect.CodeAborted && in.op != "get" {
					mu.Lock()
					aborted++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Errorf("client %d: %s %s: %v", c, in.op, in.uuid, err)
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

// callNode picks an operation (40% get, 25% update, 25% register, 10%
// delete), sets in.op, makes the call and returns its output; not_found is
// an output, not an error.
func callNode(ctx context.Context, client smspbconnect.NodeServiceClient, rng *rand.Rand, in *nodeInput) (nodeOutput, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	node := &smspb.Node{IpAddress: "10.0.0.1", Port: 9000, Metadata: map[string]string{"v": in.v}}
	var out nodeOutput
	var err error
	switch r := rng.IntN(100); {
	case r < 40:
		in.op, in.v = "get", ""
		var resp *smspb.GetNodeResponse
		resp, err = client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: in.uuid})
		if err == nil {
			out = nodeOutput{resp.GetFound(), resp.GetNode().GetMetadata()["v"]}
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
		return nodeOutput{}, nil
	}
	if err == nil && in.op != "get" {
		out.found = true
	}
	return out, err
}
