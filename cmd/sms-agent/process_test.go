package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/internal/testutil"
)

// These tests build sms-agent and sms and drive them as an operator would:
// real processes, signals, exit codes, SQLite files.

// startServer starts sms on addr (testutil.HoldPort) over the SQLite file
// db and waits until it is ready.
func startServer(t *testing.T, bin, addr, db string) *testutil.Process {
	t.Helper()
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-path", db)
	p.WaitHealthy(t, "http://"+addr)
	return p
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for the agent's --metrics-addr, which takes no inherited socket
// (testutil.HoldPort): another program could take the port in between.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func writeMachineID(t *testing.T, id string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "machine-id")
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAgentProcess(t *testing.T) {
	smsBin := testutil.BuildBinary(t, "../sms", "sms")
	agentBin := testutil.BuildBinary(t, ".", "sms-agent")
	dir := t.TempDir()
	addr := testutil.HoldPort(t)
	server := startServer(t, smsBin, addr, filepath.Join(dir, "first.db"))
	c, err := client.Dial("http://"+addr, client.WithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()
	top := t

	const machineID = "5f1d7c2a9b8e4f6a8c3d2e1f0a9b8c7d"
	idFile := writeMachineID(t, machineID)
	// The agent registers 127.0.0.1, its address on the route to a
	// loopback server, and the default port.
	wantUUID := client.NodeUUID(machineID, "127.0.0.1", 50052)
	metricsAddr := freeAddr(t)
	agent := testutil.StartProcess(t, agentBin, "--addr", "http://"+addr, "--machine-id-file", idFile,
		"--heartbeat-interval", "100ms", "--report-interval", "100ms",
		"--label", "zone=a", "--label", "rack=r1", "--metrics-addr", metricsAddr, "--disk-path", dir)

	t.Run("registers and reports the machine", func(t *testing.T) {
		var node client.Node
		testutil.Eventually(t, "the node heartbeats after registering", func() bool {
			node, err = c.GetNode(ctx, wantUUID)
			return err == nil && node.LastHeartbeat.After(node.RegisteredAt)
		})
		host, _ := os.Hostname()
		for k, want := range map[string]string{"zone": "a", "rack": "r1", "hostname": host, "os": "linux"} {
			if got := node.Metadata[k]; got != want {
				t.Errorf("metadata %s = %q, want %q (all: %v)", k, got, want, node.Metadata)
			}
		}
		if node.Status != client.StatusActive || node.Address != "127.0.0.1" || node.Port != 50052 {
			t.Errorf("node = %+v, want active at 127.0.0.1:50052", node)
		}
		r, found, err := c.GetResource(ctx, wantUUID)
		if err != nil || !found {
			t.Fatalf("GetResource = found %v, %v\n%s", found, err, agent.Output)
		}
		if got, want := r.MemoryTotal, testutil.MemTotal(t); got != want {
			t.Errorf("memory total = %d, want /proc/meminfo MemTotal %d", got, want)
		}
		if r.Metadata["disk_path"] != dir || r.DiskTotal <= 0 {
			t.Errorf("disk: path %q, total %d; want %s and a size", r.Metadata["disk_path"], r.DiskTotal, dir)
		}

		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			t.Fatalf("GET /metrics: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`sms_agent_registered{node="` + wantUUID + `"} 1`, "sms_agent_heartbeats_total{", "process_cpu_seconds_total"} {
			if !strings.Contains(string(body), want) {
				t.Errorf("/metrics lacks %q:\n%s", want, body)
			}
		}
	})

	t.Run("registers again with a server on a new database", func(t *testing.T) {
		server.Kill(t)
		// Started for the whole test, not this subtest: the rest uses it.
		server = startServer(top, smsBin, addr, filepath.Join(dir, "second.db"))
		testutil.Eventually(t, "the node is back", func() bool {
			_, found, err := c.GetResource(ctx, wantUUID)
			return err == nil && found
		})
		nodes, err := c.ListNodes(ctx, client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(nodes) != 1 || nodes[0].UUID != wantUUID || nodes[0].Status != client.StatusActive {
			t.Errorf("nodes on the new database = %+v, want only %s, active", nodes, wantUUID)
		}
	})

	t.Run("SIGTERM marks the node inactive", func(t *testing.T) {
		agent.Stop(t, syscall.SIGTERM)
		node, err := c.GetNode(ctx, wantUUID)
		if err != nil {
			t.Fatal(err)
		}
		if node.Status != client.StatusInactive {
			t.Errorf("status after SIGTERM = %s, want inactive\n%s", node.Status, agent.Output)
		}
	})

	t.Run("once registers, reports and exits, with the same uuid", func(t *testing.T) {
		for range 2 {
			out, err := testutil.Command(t, t.Context(), agentBin, "--addr", "http://"+addr, "--machine-id-file", idFile, "--once").CombinedOutput()
			if err != nil {
				t.Fatalf("sms-agent --once: %v\n%s", err, out)
			}
		}
		node, err := c.GetNode(ctx, wantUUID)
		if err != nil || node.Status != client.StatusActive {
			t.Errorf("after --once: %+v, %v; want the node active again", node, err)
		}
		nodes, err := c.ListNodes(ctx, client.ListOptions{})
		if err != nil || len(nodes) != 1 {
			t.Errorf("after two --once runs: %d nodes, %v; want 1", len(nodes), err)
		}
	})

	t.Run("deregister on exit", func(t *testing.T) {
		id := "0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b"
		p := testutil.StartProcess(t, agentBin, "--addr", "http://"+addr, "--node-uuid", id, "--deregister-on-exit", "--heartbeat-interval", "100ms")
		testutil.Eventually(t, "the node is registered", func() bool { _, err := c.GetNode(ctx, id); return err == nil })
		p.Stop(t, os.Interrupt)
		_, err := c.GetNode(ctx, id)
		if connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("GetNode after exit = %v, want not_found", err)
		}
	})

	t.Run("a token the server refuses exits 1", func(t *testing.T) {
		// The server has no token, so any works: use a server that wants
		// one instead, the agent's own failure path.
		tokenFile := filepath.Join(t.TempDir(), "token")
		os.WriteFile(tokenFile, []byte("right\n"), 0o600)
		authAddr := testutil.HoldPort(t)
		p := testutil.StartProcess(t, smsBin, "--addr", authAddr, "--kv-backend", "memory", "--auth-token-file", tokenFile)
		p.WaitHealthy(t, "http://"+authAddr)
		cmd := testutil.Command(t, t.Context(), agentBin, "--addr", "http://"+authAddr, "--machine-id-file", idFile, "--token", "wrong")
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("sms-agent with a wrong token: %v, want exit status 1\n%s", err, out)
		}
		if !strings.Contains(string(out), "sms-agent: register node "+wantUUID+": unauthenticated") {
			t.Errorf("output does not end with the one-line reason:\n%s", out)
		}
		p.Stop(t, syscall.SIGTERM)
	})
}

func TestBadSettingsExit2(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms-agent")
	tests := []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"--heartbeat-interval", "0s"}, nil,
			`sms-agent: --heartbeat-interval (SMS_AGENT_HEARTBEAT_INTERVAL): "0s" is not > 0; want a Go duration > 0 such as 10s`},
		{nil, []string{"SMS_AGENT_NODE_PORT=70000"}, `sms-agent: --node-port (SMS_AGENT_NODE_PORT): "70000" is not a port; want a number in 1..65535`},
		{[]string{"--label", "zone"}, nil, `sms-agent: --label (SMS_AGENT_LABELS): "zone" is not key=value; want key=value such as zone=a`},
		{[]string{"--addr", "ftp://x"}, nil, `sms-agent: --addr (SMS_ADDR): address "ftp://x": want http://host:port, https://host:port or host:port`},
		{[]string{"--node-uuid", "nope"}, nil, `sms-agent: --node-uuid (SMS_AGENT_NODE_UUID): "nope" is not a uuid; want a uuid such as 0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b`},
		{[]string{"--machine-id-file", "/nonexistent/machine-id"}, nil,
			`sms-agent: --machine-id-file (SMS_AGENT_MACHINE_ID_FILE): open /nonexistent/machine-id: no such file or directory; want a file holding the machine id, or --node-uuid`},
		{[]string{"--nope"}, nil, `sms-agent: flag provided but not defined: -nope; see sms-agent --help`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(append(tt.args, tt.env...), " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			cmd := testutil.Command(t, ctx, bin, tt.args...)
			cmd.Env = append(cmd.Env, tt.env...)
			_, stderr, status := testutil.Run(t, cmd)
			if status != 2 {
				t.Fatalf("exit status %d, want 2\n%s", status, stderr)
			}
			if got, want := stderr, tt.want+"\n"; got != want {
				t.Errorf("stderr = %q, want exactly %q", got, want)
			}
		})
	}
	for _, args := range [][]string{{"--help"}, {"--version"}} {
		out, err := exec.Command(bin, args...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "sms-agent") {
			t.Errorf("sms-agent %s = %v\n%s; want status 0 and output", args[0], err, out)
		}
	}
}
