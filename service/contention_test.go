package service_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// contenders is how many clients write one node at once in the contention
// tests: enough to keep every backend's writers colliding.
const contenders = 64

// Many clients writing one node at once never get an error for a valid
// request, on any backend, and the node ends in a state some serial order of
// the calls would leave. Before retries were bounded by the caller's
// deadline, 64 concurrent RegisterNode calls of one uuid answered aborted
// dozens of times on SQLite and Postgres.
func TestContentionNeverFailsAValidWrite(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, backend), connectHTTP, nil)
			t.Run("register one uuid", func(t *testing.T) { testConcurrentRegister(t, e) })
			t.Run("update one node", func(t *testing.T) { testConcurrentUpdate(t, e) })
			t.Run("heartbeats racing updates", func(t *testing.T) { testHeartbeatsRacingUpdates(t, e) })
			t.Run("register racing delete", func(t *testing.T) { testRegisterRacingDelete(t, e) })
		})
	}
}

// callCtx is the deadline of one contended call: generous, as a client's
// would be; the calls must succeed well within it.
func callCtx(t *testing.T) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 30*time.Second)
}

// race runs call(i) for i in [0, n) at once (released together) and fails
// t with every error.
func race(t *testing.T, n int, call func(ctx context.Context, i int) error) {
	t.Helper()
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx, cancel := callCtx(t)
			defer cancel()
			<-start
			errs[i] = call(ctx, i)
		})
	}
	close(start)
	wg.Wait()
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			if failed <= 5 {
				t.Errorf("call %d: %v (code %v)", i, err, connect.CodeOf(err))
			}
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d concurrent calls failed, want 0", failed, n)
	}
}

func contendedNode(id, v string) *smspb.Node {
	return &smspb.Node{Uuid: id, IpAddress: "10.0.0.1", Port: 9000, Metadata: map[string]string{"v": v}}
}

func getNode(t *testing.T, e *env, id string) *smspb.Node {
	t.Helper()
	resp := must(e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id}))(t)
	if !resp.GetFound() {
		t.Fatalf("GetNode(%s): not found", id)
	}
	return resp.GetNode()
}

func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// wantOneOf fails t unless the node's metadata value is one of vs.
func wantOneOf(t *testing.T, n *smspb.Node, vs []string) {
	t.Helper()
	if got := n.GetMetadata()["v"]; !slices.Contains(vs, got) {
		t.Fatalf("metadata v = %q after the race, want the value of one of the writes", got)
	}
}

// Every register of one new uuid succeeds; exactly one of them created the
// node, so all report the same registered_at, and the node holds one of the
// registrations.
func testConcurrentRegister(t *testing.T, e *env) {
	const id = "00000000-0000-4000-8000-00000000c001"
	vs := values("r", contenders)
	race(t, contenders, func(ctx context.Context, i int) error {
		_, err := e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: contendedNode(id, vs[i])})
		return err
	})
	n := getNode(t, e, id)
	wantOneOf(t, n, vs)
	if n.GetRegisteredAt() == 0 || n.GetStatus() != "active" {
		t.Fatalf("node after the race = %v, want registered and active", n)
	}
}

// Every update of one node succeeds and the node holds one of them, with the
// registered_at of its registration.
func testConcurrentUpdate(t *testing.T, e *env) {
	const id = "00000000-0000-4000-8000-00000000c002"
	must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: contendedNode(id, "initial")}))(t)
	registeredAt := getNode(t, e, id).GetRegisteredAt()
	vs := values("u", contenders)
	race(t, contenders, func(ctx context.Context, i int) error {
		_, err := e.client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: id, Node: contendedNode(id, vs[i])})
		return err
	})
	n := getNode(t, e, id)
	wantOneOf(t, n, vs)
	if got := n.GetRegisteredAt(); got != registeredAt {
		t.Fatalf("registered_at = %d after the updates, want %d (kept)", got, registeredAt)
	}
}

// Heartbeats and updates of one node, all at once, all succeed; the node
// holds one of the updates and the last_heartbeat of one of the heartbeats
// (an update never puts back an older heartbeat).
func testHeartbeatsRacingUpdates(t *testing.T, e *env) {
	const id = "00000000-0000-4000-8000-00000000c003"
	must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: contendedNode(id, "initial")}))(t)
	vs := values("h", contenders)
	stamps := make([]int64, contenders)
	race(t, 2*contenders, func(ctx context.Context, i int) error {
		if i%2 == 0 {
			resp, err := e.client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: id})
			stamps[i/2] = resp.GetServerTimestamp()
			return err
		}
		_, err := e.client.UpdateNode(ctx, &smspb.UpdateNodeRequest{Uuid: id, Node: contendedNode(id, vs[i/2])})
		return err
	})
	n := getNode(t, e, id)
	wantOneOf(t, n, vs)
	if got := n.GetLastHeartbeat(); !slices.Contains(stamps, got) {
		t.Fatalf("last_heartbeat = %d after the race, want the server_timestamp of one of the heartbeats %v", got, stamps)
	}
	if got := n.GetStatus(); got != "active" {
		t.Fatalf("status = %q after heartbeats, want active", got)
	}
}

// Registers and deletes of one uuid, all at once: every register succeeds,
// every delete succeeds or finds nothing, and the outcome is one a serial
// order allows: a delete finds the node only after a register, and the node
// is present at the end only with one of the registrations.
func testRegisterRacingDelete(t *testing.T, e *env) {
	const id = "00000000-0000-4000-8000-00000000c004"
	vs := values("d", contenders)
	var mu sync.Mutex
	deleted := 0
	race(t, 2*contenders, func(ctx context.Context, i int) error {
		if i%2 == 0 {
			_, err := e.client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: contendedNode(id, vs[i/2])})
			return err
		}
		_, err := e.client.DeleteNode(ctx, &smspb.DeleteNodeRequest{Uuid: id})
		if err == nil {
			mu.Lock()
			deleted++
			mu.Unlock()
		}
		if connect.CodeOf(err) == connect.CodeNotFound {
			return nil
		}
		return err
	})
	resp, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id})
	present := err == nil && resp.GetFound()
	switch {
	case err != nil && connect.CodeOf(err) != connect.CodeNotFound:
		t.Fatalf("GetNode after the race: %v", err)
	case deleted > contenders:
		t.Fatalf("%d deletes found the node, more than the %d registers", deleted, contenders)
	case present:
		wantOneOf(t, resp.GetNode(), vs)
	case deleted == 0:
		t.Fatalf("node absent after %d registers, but no delete found it", contenders)
	}
	t.Logf("%d of %d deletes found the node; present at the end: %v", deleted, contenders, present)
}
