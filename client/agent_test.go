package client_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/client/hostmetrics"
	"github.com/spear-next/sms/internal/testutil"
)

// runAgent runs a in the background until the test ends or the returned
// stop is called, which waits for Run to return and returns its error.
func runAgent(t *testing.T, a *client.Agent) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var err error
	stopped := false
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			err = <-done
		}
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

func testNode() client.Node {
	return client.Node{UUID: uuid.NewString(), Address: "127.0.0.1", Port: 50052, Metadata: map[string]string{"zone": "a"}}
}

// TestAgentReportsTheMachine runs an agent with the real host metrics
// against a server on a SQLite file for a few seconds.
func TestAgentReportsTheMachine(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", openSQLite(t), serverOptions{})
	c := dial(t, srv.URL)
	node := testNode()
	a := c.NewAgent(client.AgentConfig{
		Node:              node,
		Metrics:           hostmetrics.New(t.TempDir()),
		HeartbeatInterval: 50 * time.Millisecond,
		ReportInterval:    50 * time.Millisecond,
	})
	runAgent(t, a)

	// Heartbeats advance the server's last_heartbeat (seconds) past the
	// registration time. The server answers a heartbeat before the agent
	// counts it, so the wait is also for the agent's own counts.
	var got client.Node
	testutil.Eventually(t, "the node's last heartbeat is after its registration, and the agent heartbeated and reported", func() bool {
		var err error
		got, err = c.GetNode(t.Context(), node.UUID)
		s := a.Stats()
		return err == nil && got.LastHeartbeat.After(got.RegisteredAt) && s.Heartbeats >= 1 && s.Reports >= 1
	})
	if got.Status != client.StatusActive || got.Metadata["zone"] != "a" || got.Port != 50052 {
		t.Errorf("node = %+v, want active with zone=a and port 50052", got)
	}
	if s := a.Stats(); s.Heartbeats < 1 || s.Reports < 1 || !s.Registered || s.Failures != 0 {
		t.Errorf("agent stats = %+v, want registered, heartbeats and reports, no failures", s)
	}

	r, found, err := c.GetResource(t.Context(), node.UUID)
	if err != nil || !found {
		t.Fatalf("GetResource = found %v, %v; want a report", found, err)
	}
	if got, want := r.MemoryTotal, testutil.MemTotal(t); got != want {
		t.Errorf("reported memory total = %d, want /proc/meminfo MemTotal %d", got, want)
	}
	if r.MemoryUsed <= 0 || r.MemoryAvailable <= 0 || r.MemoryPercent <= 0 || r.MemoryPercent > 100 {
		t.Errorf("memory used %d, available %d, %.1f%%: want positive figures", r.MemoryUsed, r.MemoryAvailable, r.MemoryPercent)
	}
	if r.DiskTotal <= 0 || r.DiskUsed <= 0 || r.DiskPercent <= 0 {
		t.Errorf("disk total %d, used %d, %.1f%%: want positive figures", r.DiskTotal, r.DiskUsed, r.DiskPercent)
	}
	if r.CPUPercent < 0 || r.CPUPercent > 100 || r.Load1 < 0 {
		t.Errorf("cpu %.1f%%, load %.2f: want a percentage and a load >= 0", r.CPUPercent, r.Load1)
	}
}

// TestAgentSurvivesANewDatabase kills the server, starts another on the
// same address over an empty database, and expects the agent to register
// its node there again, under the same uuid.
func TestAgentSurvivesANewDatabase(t *testing.T) {
	first := startServer(t, "127.0.0.1:0", openSQLite(t), serverOptions{})
	node := testNode()
	a := dial(t, first.URL).NewAgent(client.AgentConfig{
		Node:              node,
		Metrics:           &fakeMetrics{r: client.Resource{CPUPercent: 1, MemoryTotal: 1 << 30}},
		HeartbeatInterval: 20 * time.Millisecond,
		ReportInterval:    20 * time.Millisecond,
	})
	runAgent(t, a)
	testutil.Eventually(t, "the agent heartbeats", func() bool { return a.Stats().Heartbeats >= 2 })

	first.stop()
	testutil.Eventually(t, "the agent notices the server is gone", func() bool { return a.Stats().Failures >= 1 })

	second := startServer(t, first.Addr, openSQLite(t), serverOptions{})
	c := dial(t, second.URL)
	testutil.Eventually(t, "the node is registered on the new database", func() bool {
		_, found, err := c.GetResource(t.Context(), node.UUID)
		return err == nil && found
	})
	got, err := c.GetNode(t.Context(), node.UUID)
	if err != nil {
		t.Fatalf("GetNode on the new server: %v", err)
	}
	if got.UUID != node.UUID || got.Status != client.StatusActive {
		t.Errorf("node on the new server = %+v, want %s active", got, node.UUID)
	}
	if s := a.Stats(); s.Registrations < 2 {
		t.Errorf("registrations = %d, want at least 2", s.Registrations)
	}
	beats := a.Stats().Heartbeats
	testutil.Eventually(t, "heartbeats go on", func() bool { return a.Stats().Heartbeats > beats })
}

func TestAgentStop(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", openSQLite(t), serverOptions{})
	c := dial(t, srv.URL)
	for _, deregister := range []bool{false, true} {
		t.Run("deregister="+strconv.FormatBool(deregister), func(t *testing.T) {
			node := testNode()
			a := c.NewAgent(client.AgentConfig{Node: node, HeartbeatInterval: 20 * time.Millisecond, DeregisterOnExit: deregister})
			stop := runAgent(t, a)
			testutil.Eventually(t, "the agent heartbeats", func() bool { return a.Stats().Heartbeats >= 1 })
			if err := stop(); err != nil {
				t.Fatalf("Run = %v, want nil after a clean stop", err)
			}
			got, err := c.GetNode(t.Context(), node.UUID)
			if deregister {
				wantCode(t, err, connect.CodeNotFound)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != client.StatusInactive || got.Metadata["zone"] != "a" {
				t.Errorf("node after stop = %+v, want inactive, metadata kept", got)
			}
			if a.Stats().Registered {
				t.Error("Stats().Registered is true after Run returned")
			}
		})
	}
}

func TestAgentWaitsForTheServer(t *testing.T) {
	ln := testutil.Loopback(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens: the agent's registrations fail
	node := testNode()
	a := dial(t, "http://"+addr).NewAgent(client.AgentConfig{Node: node, HeartbeatInterval: 20 * time.Millisecond})
	runAgent(t, a)
	testutil.Eventually(t, "registrations fail", func() bool { return a.Stats().Failures >= 2 })
	srv := startServer(t, addr, openSQLite(t), serverOptions{})
	testutil.Eventually(t, "the agent registers", func() bool { return a.Stats().Registered })
	if _, err := dial(t, srv.URL).GetNode(t.Context(), node.UUID); err != nil {
		t.Fatalf("GetNode: %v", err)
	}
}

func TestAgentFatalErrors(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", openSQLite(t), serverOptions{token: "s3cret"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	err := dial(t, srv.URL).NewAgent(client.AgentConfig{Node: testNode()}).Run(ctx)
	wantCode(t, err, connect.CodeUnauthenticated)

	c := dial(t, srv.URL, client.WithToken("s3cret"))
	bad := testNode()
	bad.Metadata = map[string]string{}
	for i := range 65 { // the server takes at most 64 entries
		bad.Metadata[strconv.Itoa(i)] = "x"
	}
	err = c.NewAgent(client.AgentConfig{Node: bad}).Run(ctx)
	wantCode(t, err, connect.CodeInvalidArgument)

	for _, n := range []client.Node{{UUID: "nope", Address: "a", Port: 1}, {UUID: uuid.NewString(), Port: 1}, {UUID: uuid.NewString(), Address: "a"}} {
		if err := c.NewAgent(client.AgentConfig{Node: n}).Run(ctx); err == nil || !strings.HasPrefix(err.Error(), "agent: ") {
			t.Errorf("Run with node %+v = %v, want an agent: error", n, err)
		}
	}
}

func TestAgentOnce(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", openSQLite(t), serverOptions{})
	c := dial(t, srv.URL)
	node := testNode()
	node.UUID = strings.ToUpper(node.UUID) // any spelling; the agent canonicalises it
	a := c.NewAgent(client.AgentConfig{Node: node, Metrics: &fakeMetrics{r: client.Resource{CPUPercent: 42}}})
	if err := a.Once(t.Context()); err != nil {
		t.Fatalf("Once: %v", err)
	}
	r, found, err := c.GetResource(t.Context(), strings.ToLower(node.UUID))
	if err != nil || !found || r.CPUPercent != 42 {
		t.Fatalf("GetResource after Once = %+v, found %v, %v; want the fake report", r, found, err)
	}
	if a.UUID() != strings.ToLower(node.UUID) {
		t.Errorf("UUID() = %q, want the canonical form", a.UUID())
	}
}

func TestNodeUUID(t *testing.T) {
	a := client.NodeUUID("0123456789abcdef0123456789abcdef", "10.0.0.1", 50052)
	if got := client.NodeUUID("0123456789abcdef0123456789abcdef", "10.0.0.1", 50052); got != a {
		t.Errorf("NodeUUID is not stable: %s, then %s", a, got)
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 5 {
		t.Errorf("NodeUUID = %s (%v), want a version 5 uuid", a, err)
	}
	for _, other := range []string{
		client.NodeUUID("0123456789abcdef0123456789abcdef", "10.0.0.1", 50053),
		client.NodeUUID("0123456789abcdef0123456789abcdef", "10.0.0.2", 50052),
		client.NodeUUID("fedcba9876543210fedcba9876543210", "10.0.0.1", 50052),
	} {
		if other == a {
			t.Errorf("NodeUUID gives %s for another machine, address or port", a)
		}
	}
}
