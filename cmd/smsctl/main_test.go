package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// startServer serves SMS over a memory store on HTTP/1.1 and h2c, like
// cmd/sms, and returns its URL.
func startServer(t *testing.T, token string) string {
	t.Helper()
	store := watchstore.New(memory.New())
	t.Cleanup(func() { store.Close() })
	view := registry.NewView(store)
	t.Cleanup(view.Close)
	stop := make(chan struct{})
	url, _ := testutil.StartH2CServer(t, service.NewHandler(service.Config{
		Nodes:       view.Nodes(),
		Resources:   view.Resources(),
		Store:       store,
		AuthToken:   token,
		StopWatches: stop,
	}))
	t.Cleanup(func() { close(stop) }) // runs before the server closes: watches end first
	return url
}

// smsctl runs the command line in process with env as its environment.
func smsctl(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	var out, errOut testutil.SyncBuffer
	status = run(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), status
}

// ok runs the command line, requires status 0 and returns stdout.
func ok(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, status := smsctl(t, env, args...)
	if status != 0 {
		t.Fatalf("smsctl %q: status %d, stderr %q", args, status, errOut)
	}
	return out
}

func TestNodes(t *testing.T) {
	url := startServer(t, "")
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		t.Run(protocol, func(t *testing.T) {
			env := map[string]string{"SMS_ADDR": url}
			g := []string{"--protocol", protocol}
			cmd := func(args ...string) []string { return append(append([]string{}, g...), args...) }

			uuid := strings.TrimSpace(ok(t, env, cmd("nodes", "register", "--ip", "10.0.0.5", "--port", "8080",
				"--label", "zone=a", "--label", "proto="+protocol)...))
			if len(uuid) != 36 {
				t.Fatalf("nodes register printed %q, want a uuid", uuid)
			}

			out := ok(t, env, cmd("nodes", "list", "--label", "proto="+protocol)...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 2 || !strings.HasPrefix(lines[0], "UUID") || !strings.Contains(lines[1], uuid) ||
				!strings.Contains(lines[1], "active") || !strings.Contains(lines[1], "proto="+protocol+",zone=a") {
				t.Errorf("nodes list =\n%s\nwant a header and the node's row", out)
			}

			var nodes []map[string]any
			if err := json.Unmarshal([]byte(ok(t, env, cmd("nodes", "list", "-o", "json", "--label", "proto="+protocol)...)), &nodes); err != nil {
				t.Fatalf("nodes list -o json: %v", err)
			}
			if len(nodes) != 1 || nodes[0]["uuid"] != uuid || nodes[0]["ip_address"] != "10.0.0.5" {
				t.Errorf("nodes list -o json = %v, want the one node", nodes)
			}

			ok(t, env, cmd("nodes", "update", uuid, "--status", "decommissioning", "--label", "team=x", "--unlabel", "zone")...)
			var node map[string]any
			if err := json.Unmarshal([]byte(ok(t, env, cmd("nodes", "get", uuid, "-o", "json")...)), &node); err != nil {
				t.Fatal(err)
			}
			if node["status"] != "decommissioning" || node["port"] != float64(8080) {
				t.Errorf("after update, node = %v, want decommissioning on port 8080", node)
			}
			if md, _ := node["metadata"].(map[string]any); md["team"] != "x" || md["zone"] != nil || md["proto"] != protocol {
				t.Errorf("after update, metadata = %v, want proto and team, no zone", node["metadata"])
			}

			if out := ok(t, env, cmd("nodes", "heartbeat", uuid, "--health", "disk=ok")...); out == "" {
				t.Error("nodes heartbeat printed nothing")
			}
			// health_info comes back from every read: get, list, JSON.
			if out := ok(t, env, cmd("nodes", "get", uuid)...); !strings.Contains(out, "health:") || !strings.Contains(out, "disk=ok") {
				t.Errorf("nodes get after a heartbeat with --health disk=ok =\n%s\nwant a health: disk=ok line", out)
			}
			if out := ok(t, env, cmd("nodes", "list", "--label", "proto="+protocol)...); !strings.Contains(out, "HEALTH") || !strings.Contains(out, "disk=ok") {
				t.Errorf("nodes list after a heartbeat with --health disk=ok =\n%s\nwant a HEALTH column with disk=ok", out)
			}
			if err := json.Unmarshal([]byte(ok(t, env, cmd("nodes", "get", uuid, "-o", "json")...)), &node); err != nil {
				t.Fatal(err)
			}
			if h, _ := node["health_info"].(map[string]any); h["disk"] != "ok" {
				t.Errorf("nodes get -o json health_info = %v, want disk=ok", node["health_info"])
			}
			ok(t, env, cmd("resources", "update", uuid, "--cpu", "42.5", "--memory", "61", "--load1", "0.7")...)
			var res map[string]any
			if err := json.Unmarshal([]byte(ok(t, env, cmd("resources", "get", uuid, "-o", "json")...)), &res); err != nil {
				t.Fatal(err)
			}
			if res["cpu_usage_percent"] != 42.5 || res["node_uuid"] != uuid {
				t.Errorf("resources get = %v, want cpu 42.5 for %s", res, uuid)
			}
			if out := ok(t, env, cmd("resources", "list", uuid)...); !strings.Contains(out, "42.5") {
				t.Errorf("resources list =\n%s\nwant the 42.5%% row", out)
			}
			if out := ok(t, env, cmd("stats")...); !strings.Contains(out, "nodes with resources:") {
				t.Errorf("stats =\n%s", out)
			}

			ok(t, env, cmd("nodes", "delete", uuid)...)
			_, errOut, status := smsctl(t, env, cmd("nodes", "get", uuid)...)
			if status != exitNotFound || !strings.HasPrefix(errOut, "smsctl: not_found: ") {
				t.Errorf("nodes get of a deleted node: status %d, stderr %q; want 3, smsctl: not_found: ...", status, errOut)
			}
		})
	}
}

func TestPagination(t *testing.T) {
	url := startServer(t, "")
	env := map[string]string{"SMS_ADDR": url}
	for range 5 {
		ok(t, env, "nodes", "register", "--ip", "10.0.0.1", "--port", "1")
	}
	all := ok(t, env, "nodes", "list")
	if got := strings.Count(all, "\n"); got != 6 {
		t.Errorf("nodes list printed %d lines, want a header and 5 nodes:\n%s", got, all)
	}
	out, errOut, status := smsctl(t, env, "nodes", "list", "--page-size", "2")
	if status != 0 || strings.Count(out, "\n") != 3 || !strings.HasPrefix(errOut, "next page: --page-token ") {
		t.Fatalf("nodes list --page-size 2: status %d, stdout\n%s\nstderr %q; want a header, 2 nodes and the next token", status, out, errOut)
	}
	token := strings.TrimSpace(strings.TrimPrefix(errOut, "next page: --page-token "))
	out = ok(t, env, "nodes", "list", "--page-size", "10", "--page-token", token)
	if got := strings.Count(out, "\n"); got != 4 {
		t.Errorf("second page printed %d lines, want a header and 3 nodes:\n%s", got, out)
	}
}

func TestExitCodes(t *testing.T) {
	url := startServer(t, "")
	env := map[string]string{"SMS_ADDR": url}
	for _, tt := range []struct {
		name   string
		args   []string
		status int
		stderr string // prefix
	}{
		{"unknown command", []string{"nodes", "frob"}, exitUsage, `smsctl: unknown command "nodes frob"`},
		{"no command", nil, exitUsage, "Usage: smsctl"},
		{"bad flag", []string{"nodes", "list", "--nope"}, exitUsage, "smsctl: flag provided but not defined: -nope"},
		{"missing argument", []string{"nodes", "get"}, exitUsage, "smsctl: want one node UUID, got 0 argument(s)"},
		{"bad output", []string{"-o", "yaml", "stats"}, exitUsage, `smsctl: -o "yaml": want table or json`},
		{"invalid argument", []string{"nodes", "get", "nope"}, exitRPC, "smsctl: invalid_argument: "},
		{"not found", []string{"nodes", "heartbeat", "00000000-0000-0000-0000-000000000001"}, exitNotFound, "smsctl: not_found: "},
		{"no resources", []string{"resources", "get", "00000000-0000-0000-0000-000000000001"}, exitNotFound, "smsctl: not_found: no resource report for node 00000000-0000-0000-0000-000000000001\n"},
		{"unreachable", []string{"--addr", "127.0.0.1:1", "stats"}, exitRPC, "smsctl: unavailable: "},
		{"help", []string{"--help"}, exitOK, ""},
		{"command help", []string{"nodes", "list", "--help"}, exitOK, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errOut, status := smsctl(t, env, tt.args...)
			if strings.Count(errOut, "\n") > 1 && tt.status != exitUsage {
				t.Errorf("smsctl %q: stderr %q, want one line", tt.args, errOut)
			}
			if status != tt.status || !strings.HasPrefix(errOut, tt.stderr) {
				t.Errorf("smsctl %q: status %d, stderr %q; want %d, %q...", tt.args, status, errOut, tt.status, tt.stderr)
			}
		})
	}
}

func TestToken(t *testing.T) {
	url := startServer(t, "s3cret")
	_, errOut, status := smsctl(t, map[string]string{"SMS_ADDR": url}, "stats")
	if status != exitRPC || !strings.HasPrefix(errOut, "smsctl: unauthenticated: ") {
		t.Errorf("without a token: status %d, stderr %q; want 1, unauthenticated", status, errOut)
	}
	ok(t, map[string]string{"SMS_ADDR": url, "SMS_TOKEN": "s3cret"}, "stats")
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, map[string]string{"SMS_ADDR": url}, "--token-file", file, "stats")
	ok(t, map[string]string{"SMS_ADDR": url}, "stats", "--token", "s3cret") // global flag after the command
}

func TestWatch(t *testing.T) {
	url := startServer(t, "")
	env := map[string]string{"SMS_ADDR": url}
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			var out, errOut testutil.SyncBuffer
			done := make(chan int, 1)
			go func() {
				done <- run(ctx, []string{"nodes", "watch", "-o", format, "--label", "watch=" + format},
					func(k string) string { return env[k] }, &out, &errOut)
			}()
			waitFor := func(what string) {
				t.Helper()
				deadline := time.Now().Add(10 * time.Second)
				for !strings.Contains(out.String(), what) {
					if time.Now().After(deadline) {
						t.Fatalf("watch output has no %q within 10s:\n%s\nstderr %q", what, out.String(), errOut.String())
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
			waitFor("SNAPSHOT_END")
			uuid := strings.TrimSpace(ok(t, env, "nodes", "register", "--ip", "10.0.0.9", "--port", "1", "--label", "watch="+format))
			waitFor("REGISTERED")
			waitFor(uuid)
			cancel()
			select {
			case status := <-done:
				if status != 0 {
					t.Errorf("nodes watch ended with status %d after interrupt, want 0; stderr %q", status, errOut.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("nodes watch did not end within 10s of interrupt")
			}
			if format == "json" {
				for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
					var ev map[string]any
					if err := json.Unmarshal([]byte(line), &ev); err != nil {
						t.Errorf("watch -o json line %q: %v", line, err)
					}
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, stderr, status := smsctl(t, nil, "--version")
	if status != 0 || stderr != "" || !strings.HasPrefix(stdout, "smsctl ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("smsctl --version: status %d, stdout %q, stderr %q; want 0 and smsctl's version with %s", status, stdout, stderr, runtime.Version())
	}
}

func TestUpdateHelpSaysStatusIsKept(t *testing.T) {
	out, _, status := smsctl(t, nil, "nodes", "update", "--help")
	if status != exitOK || strings.Contains(out, "active (default)") || !strings.Contains(out, "default: kept") {
		t.Errorf("nodes update --help =\n%s\nwant the status flag to say the current status is kept", out)
	}
	out, _, _ = smsctl(t, nil, "nodes", "register", "--help")
	if !strings.Contains(out, "active (default)") {
		t.Errorf("nodes register --help =\n%s\nwant the status flag to say active is the default", out)
	}
}
