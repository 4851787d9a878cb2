// Package nodehistory records and checks histories of NodeService calls
// (RegisterNode, UpdateNode, DeleteNode, GetNode) on a few shared nodes with
// porcupine. It is the one model behind the service-level linearizability
// test (service) and the one across crashes of the binary (cmd/sms).
package nodehistory

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
)

// EnvOps sets how many operations each client of a linearizability test
// makes; RELIABILITY.md's figures come from a larger value than the
// defaults.
const EnvOps = "SMS_LINEARIZABILITY_OPS"

// OpsPerClient returns the EnvOps setting, or def when it is unset.
func OpsPerClient(t testing.TB, def int) int {
	t.Helper()
	s := os.Getenv(EnvOps)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number of operations per client", EnvOps, s)
	}
	return n
}

// Nodes are the uuids the clients share: fixed, so that Register is an
// upsert of a node other clients also write.
var Nodes = []string{
	"00000000-0000-4000-8000-000000000001",
	"00000000-0000-4000-8000-000000000002",
	"00000000-0000-4000-8000-000000000003",
}

// Input is one call of a history: Op is "register", "update", "delete" or
// "get"; V is the metadata value a write stores.
type Input struct {
	Op, UUID, V string
}

// Output is what the call returned: Found is false for not_found (update,
// delete, get), V is the metadata value get read. Unknown marks a write that
// got no answer (in doubt).
type Output struct {
	Found   bool
	V       string
	Unknown bool
}

// state is one node in the model: absent, or present with metadata v.
type state struct {
	exists bool
	v      string
}

// Model is one register per node uuid: Register (an upsert) sets v; Update
// sets v if the node exists and is not_found otherwise; Delete removes it
// and is not_found if it was absent; Get returns the current v or
// not_found. A write in doubt has the same effect, whatever its output.
var Model = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byNode := map[string][]porcupine.Operation{}
		for _, op := range h {
			id := op.Input.(Input).UUID
			byNode[id] = append(byNode[id], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byNode {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return state{} },
	Step: func(st, input, output any) (bool, any) {
		s, in, out := st.(state), input.(Input), output.(Output)
		switch in.Op {
		case "register":
			return true, state{true, in.V}
		case "update":
			if !s.exists {
				return out.Unknown || !out.Found, s
			}
			return out.Unknown || out.Found, state{true, in.V}
		case "delete":
			return out.Unknown || out.Found == s.exists, state{}
		case "get":
			return !out.Unknown && out.Found == s.exists && out.V == s.v, s
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		switch {
		case out.Unknown:
			return fmt.Sprintf("%s(%q) -> no answer", in.Op, in.V)
		case in.Op == "get" && out.Found:
			return fmt.Sprintf("get -> %q", out.V)
		case in.Op == "get":
			return "get -> not_found"
		case in.Op == "register":
			return fmt.Sprintf("register(%q)", in.V)
		case !out.Found:
			return fmt.Sprintf("%s(%q) -> not_found", in.Op, in.V)
		}
		return fmt.Sprintf("%s(%q)", in.Op, in.V)
	},
	DescribeState: func(st any) string {
		if s := st.(state); s.exists {
			return strconv.Quote(s.v)
		}
		return "absent"
	},
}

// Call picks an operation (40% get: GetNode or GetNodeWithResource, 25% update, 25% register, 10% delete),
// sets in.Op, makes the call and returns its output; not_found is an
// output, not an error.
func Call(ctx context.Context, client smspbconnect.NodeServiceClient, rng *rand.Rand, in *Input) (Output, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	node := &smspb.Node{IpAddress: "10.0.0.1", Port: 9000, Metadata: map[string]string{"v": in.V}}
	var out Output
	var err error
	switch r := rng.IntN(100); {
	case r < 40:
		// Half the reads are GetNodeWithResource, which reads the node
		// like GetNode (one read fence, one snapshot) and must be as
		// linearizable.
		in.Op, in.V = "get", ""
		if r%2 == 0 {
			var resp *smspb.GetNodeResponse
			resp, err = client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: in.UUID})
			if err == nil {
				out = Output{Found: resp.GetFound(), V: resp.GetNode().GetMetadata()["v"]}
			}
		} else {
			var resp *smspb.GetNodeWithResourceResponse
			resp, err = client.GetNodeWithResource(ctx, &smspb.GetNodeWithResourceRequest{Uuid: in.UUID})
			if err == nil {
				out = Output{Found: resp.GetFound(), V: resp.GetNode().GetMetadata()["v"]}
			}
		}
	case r < 65:
		in.Op = "update"
		_, err = client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: in.UUID, Node: node})
	case r < 90:
		in.Op = "register"
		node.Uuid = in.UUID
		_, err = client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: node})
	default:
		in.Op = "delete"
		_, err = client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: in.UUID})
	}
	if connect.CodeOf(err) == connect.CodeNotFound {
		return Output{}, nil
	}
	if err == nil && in.Op != "get" {
		out.Found = true
	}
	return out, err
}

// Check fails t unless porcupine finds history linearizable. The
// visualization of a failed check is written to os.TempDir() as
// name-*.html, not to t.TempDir(), which is removed when the test ends.
func Check(t testing.TB, name string, history []porcupine.Operation) {
	t.Helper()
	res, info := porcupine.CheckOperationsVerbose(Model, history, time.Minute)
	if res == porcupine.Ok {
		return
	}
	f, err := os.CreateTemp("", name+"-*.html")
	if err != nil {
		t.Fatalf("%d operations: porcupine says %v; visualization: %v", len(history), res, err)
	}
	defer f.Close()
	if err := porcupine.Visualize(Model, info, f); err != nil {
		t.Errorf("visualize: %v", err)
	}
	t.Fatalf("%d operations: porcupine says %v; see %s", len(history), res, f.Name())
}

// Record runs len(clients) concurrent clients, client c calling through
// clients[c], each making ops random calls (Call) on Nodes, and returns the
// history. Every call must succeed or return not_found: contention between
// the clients is never an error. seed tells histories of different tests
// apart.
func Record(t testing.TB, clients []smspbconnect.NodeServiceClient, ops int, seed uint64) (history []porcupine.Operation) {
	t.Helper()
	ctx := t.Context()
	start := time.Now()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c, client := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), seed))
			for i := range ops {
				in := Input{UUID: Nodes[rng.IntN(len(Nodes))], V: fmt.Sprintf("c%d-%d", c, i)}
				call := time.Since(start).Nanoseconds()
				out, err := Call(ctx, client, rng, &in)
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
