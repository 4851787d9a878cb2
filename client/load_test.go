package client_test

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

// TestThousandAgents is the agent's load check: 1,000 Agents (100 under the
// race detector; env SMS_AGENT_LOAD overrides the number), each with its own Client and a fake
// metrics source, heartbeating and reporting every 2 s (env
// SMS_AGENT_LOAD_INTERVAL), against one server on a SQLite file, until each has
// heartbeated and reported three times. Every call must succeed. The
// figures are logged (go test -v -run TestThousandAgents ./client/); they
// are not asserted.
func TestThousandAgents(t *testing.T) {
	n := 1000
	if raceEnabled {
		n = 100
	}
	if s := os.Getenv("SMS_AGENT_LOAD"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("SMS_AGENT_LOAD=%q: want a number >= 1", s)
		}
	}
	// 2 s makes 1,000 calls/s for 1,000 agents, well within what one
	// server does on 2 cores (the defaults, 10 s heartbeats and 5 s
	// reports, make 300).
	interval := 2 * time.Second
	if s := os.Getenv("SMS_AGENT_LOAD_INTERVAL"); s != "" {
		var err error
		if interval, err = time.ParseDuration(s); err != nil || interval <= 0 {
			t.Fatalf("SMS_AGENT_LOAD_INTERVAL=%q: want a duration > 0", s)
		}
	}
	// synchronous=normal, as smsbench runs SQLite: the check is about the
	// agents and the service, not the disk's fsync rate on a shared machine.
	cfg := kvstore.SQLite(filepath.Join(t.TempDir(), "sms.db"))
	cfg.SQLiteSynchronous = "normal"
	store, err := kvstore.Open(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	srv := startServer(t, "127.0.0.1:0", store, serverOptions{})
	metrics := &fakeMetrics{r: client.Resource{CPUPercent: 25, MemoryPercent: 50, MemoryTotal: 8 << 30, MemoryUsed: 4 << 30, Load1: 0.5}}

	start := time.Now()
	agents := make([]*client.Agent, n)
	stops := make([]func() error, n)
	for i := range agents {
		node := testNode()
		agents[i] = dial(t, srv.URL).NewAgent(client.AgentConfig{
			Node: node, Metrics: metrics, HeartbeatInterval: interval, ReportInterval: interval,
			ShutdownTimeout: 30 * time.Second,
		})
		stops[i] = runAgent(t, agents[i])
		// A fleet does not start in one millisecond: spread the starts
		// over one interval, as the jitter spreads the calls later.
		time.Sleep(interval / time.Duration(n))
	}
	// Stopped all at once, as a fleet shut down together, also when the
	// test fails (one after the other would take long).
	var stopErrs atomic.Int64
	stopAll := sync.OnceFunc(func() {
		var wg sync.WaitGroup
		for _, stop := range stops {
			wg.Go(func() {
				if err := stop(); err != nil {
					stopErrs.Add(1)
					t.Log(err)
				}
			})
		}
		wg.Wait()
	})
	t.Cleanup(stopAll)
	var calls, failures int64
	var lastErr error
	testutil.Eventually(t, "every agent heartbeated once and reported twice", func() bool {
		calls, failures = 0, 0
		done := true
		for _, a := range agents {
			s := a.Stats()
			calls += s.Registrations + s.Heartbeats + s.Reports
			failures += s.Failures
			if s.LastError != nil {
				lastErr = s.LastError
			}
			done = done && s.Heartbeats >= 1 && s.Reports >= 2
		}
		return done || failures > 0
	})
	elapsed := time.Since(start)
	if failures != 0 {
		t.Fatalf("%d agents: %d failed calls, want 0 (one: %v)", n, failures, lastErr)
	}
	stats, err := dial(t, srv.URL).Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if stats.TotalNodes != int64(n) || stats.NodesByStatus[client.StatusActive] != int64(n) || stats.NodesWithResources != int64(n) {
		t.Errorf("cluster stats = %+v, want %d active nodes with reports", stats, n)
	}

	stopAll() // each agent marks its node inactive
	if got := stopErrs.Load(); got != 0 {
		t.Errorf("%d agents failed to mark their node inactive", got)
	}
	stats, err = dial(t, srv.URL).Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.NodesByStatus[client.StatusInactive]; got != int64(n) {
		t.Errorf("%d nodes inactive after the agents stopped, want %d", got, n)
	}
	// The agents ask for n/interval heartbeats and as many reports a
	// second; a server that keeps up serves them all (ratio 1, less the
	// ramp-up and the wait for the slowest agent).
	asked := 2 * float64(n) / interval.Seconds()
	rate := float64(calls) / elapsed.Seconds()
	t.Logf("%d agents, one server (SQLite): %d calls in %v, %.0f calls/s of the %.0f/s asked (%.2f), 0 errors",
		n, calls, elapsed.Round(time.Millisecond), rate, asked, rate/asked)
}
