package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// These tests build the real binary and drive it as an operator would:
// flags, signals, exit codes and a SQLite file that outlives the process.

// buildBinary builds cmd/sms into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the binary; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), "sms")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// cleanEnv is the test's environment without SMS's own variables, so a
// developer's settings cannot change what the process does.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_") && !strings.HasPrefix(kv, "KV_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// process is a running sms binary.
type process struct {
	cmd    *exec.Cmd
	output *testutil.SyncBuffer // stdout and stderr
	exited chan struct{}
	err    error // cmd.Wait's result, once exited is closed
}

// heldPorts maps the address of each port a test holds (holdPort) to its
// listener.
var heldPorts sync.Map // string -> *net.TCPListener

// holdPort returns the address of a loopback listener the test keeps open
// until it ends. startProcess hands it to every process started with that
// address as --addr, --grpc-addr or --http-addr, as an inherited socket
// (fd:N): a restarted process serves the same address, no other program can
// take the port in between, and connections made while no process runs
// wait in the backlog instead of being refused.
func holdPort(t *testing.T) string {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	heldPorts.Store(addr, ln)
	t.Cleanup(func() {
		heldPorts.Delete(addr)
		ln.Close()
	})
	return addr
}

// command is exec.Command(bin, args...) with a clean environment; held
// ports among args (holdPort) are passed as inherited sockets. Close the
// returned files once the command started.
func command(t *testing.T, ctx context.Context, bin string, args ...string) (*exec.Cmd, []*os.File) {
	t.Helper()
	args = slices.Clone(args)
	var files []*os.File
	for i := 1; i < len(args); i++ {
		switch args[i-1] {
		case "--addr", "--grpc-addr", "--http-addr":
		default:
			continue
		}
		ln, ok := heldPorts.Load(args[i])
		if !ok {
			continue
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
		args[i] = fmt.Sprintf("fd:%d", 2+len(files)) // ExtraFiles start at 3
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.ExtraFiles = files
	return cmd, files
}

// closeFiles closes the parent's copies of a started command's files.
func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// startProcess starts bin with args (see command).
func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd, files := command(t, context.Background(), bin, args...)
	defer closeFiles(files)
	p := &process{cmd: cmd, output: &testutil.SyncBuffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// waitHealthy polls GET /healthz until it answers 200.
func (p *process) waitHealthy(t *testing.T, baseURL string) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("sms exited before becoming healthy: %v\n%s", p.err, p.output)
		default:
		}
		resp, err := client.Get(baseURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /healthz not 200 within 15s (last: %v)\n%s", err, p.output)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends sig and requires a clean exit (status 0); the bound only keeps a
// hung process from hanging the test.
func (p *process) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		t.Fatalf("sms did not exit after %v (gave up after a minute)\n%s", sig, p.output)
	}
	if p.err != nil {
		t.Fatalf("sms exited with %v after %v, want status 0\n%s", p.err, sig, p.output)
	}
}

func TestProcess(t *testing.T) {
	bin := buildBinary(t)

	backends := []struct {
		name  string
		store func(t *testing.T) []string // the store's flags
	}{
		{"sqlite", func(t *testing.T) []string {
			return []string{"--kv-path", filepath.Join(t.TempDir(), "sms.db")}
		}},
		{"postgres", func(t *testing.T) []string {
			return []string{"--kv-backend", "postgres", "--kv-dsn", storetest.PostgresDSN(t)}
		}},
	}
	for _, b := range backends {
		t.Run("persists across a graceful restart/"+b.name, func(t *testing.T) {
			storeFlags := b.store(t)
			addr := holdPort(t)
			baseURL := "http://" + addr
			client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)
			ctx := context.Background()
			args := append([]string{"--addr", addr}, storeFlags...)

			p := startProcess(t, bin, args...)
			p.waitHealthy(t, baseURL)
			reg, err := client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{
				IpAddress: "10.1.2.3", Port: 9000, Metadata: map[string]string{"zone": "a"},
			}})
			if err != nil {
				t.Fatalf("RegisterNode: %v\n%s", err, p.output)
			}
			before, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if err != nil || !before.GetFound() {
				t.Fatalf("GetNode before restart = %v, %v; want found\n%s", before, err, p.output)
			}
			p.stop(t, syscall.SIGTERM)

			// Rebinding the same port right away also checks that the first
			// process really let go of it.
			p = startProcess(t, bin, args...)
			p.waitHealthy(t, baseURL)
			after, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if err != nil || !after.GetFound() {
				t.Fatalf("GetNode after restart = %v, %v; want found\n%s", after, err, p.output)
			}
			if got, want := after.GetNode().GetRegisteredAt(), before.GetNode().GetRegisteredAt(); got != want || got == 0 {
				t.Errorf("registered_at after restart = %d, want %d (non-zero)", got, want)
			}
			if got, want := after.GetNode().GetIpAddress(), "10.1.2.3"; got != want {
				t.Errorf("ip_address after restart = %q, want %q", got, want)
			}
			p.stop(t, os.Interrupt)
		})
	}

	t.Run("unreachable postgres exits 1 with one line and no password", func(t *testing.T) {
		// Port 1 refuses connections, so no database is needed.
		for _, dsn := range []string{
			"postgres://sms:hunter2@127.0.0.1:1/sms?sslmode=disable",
			"host=127.0.0.1 port=1 user=sms password=hunter2 sslmode=disable",
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--kv-backend", "postgres", "--kv-dsn", dsn, "--addr", "127.0.0.1:0")
			cmd.Env = cleanEnv()
			var output testutil.SyncBuffer
			cmd.Stdout, cmd.Stderr = &output, &output
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("sms with an unreachable Postgres exited with %v, want status 1\n%s", err, output.String())
			}
			out := output.String()
			if !strings.HasPrefix(out, "sms: open postgres store: ") || strings.Count(out, "\n") != 1 {
				t.Errorf("output = %q, want one line starting \"sms: open postgres store: \"", out)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("output = %q, shows the DSN password", out)
			}
		}
	})

	t.Run("bad setting exits 2 with one line", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			env  []string
			want string
		}{
			{"flag", []string{"--heartbeat-timeout", "abc"}, nil,
				`sms: --heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT): "abc" is not a duration; want a Go duration > 0 such as 90s`},
			{"env", nil, []string{"KV_BACKEND=mysql"},
				`sms: --kv-backend (KV_BACKEND): "mysql" is not a backend; want memory, sqlite or postgres`},
			{"unknown flag", []string{"--nope"}, nil,
				`sms: flag provided but not defined: -nope; see sms --help`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cmd := exec.CommandContext(ctx, bin, tt.args...)
				cmd.Env = cleanEnv(tt.env...)
				var stdout, stderr testutil.SyncBuffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				err := cmd.Run()
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() != 2 {
					t.Fatalf("sms %q exited with %v, want status 2\n%s", tt.args, err, stderr.String())
				}
				if got, want := stderr.String(), tt.want+"\n"; got != want {
					t.Errorf("stderr = %q, want exactly one line %q", got, want)
				}
				if stdout.String() != "" {
					t.Errorf("stdout = %q, want nothing", stdout.String())
				}
			})
		}
	})

	t.Run("help exits 0", func(t *testing.T) {
		cmd := exec.Command(bin, "--help")
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sms --help: %v\n%s", err, out)
		}
		for _, w := range []string{"--kv-backend", "KV_BACKEND", "--auth-token-file", "SMS_AUTH_TOKEN_FILE", "127.0.0.1:50051"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("--help output does not mention %q:\n%s", w, out)
			}
		}
	})
}

func TestVersion(t *testing.T) {
	bin := buildBinary(t)
	stdout, stderr, status := runBin(t, bin, "--version")
	if want := "sms "; status != 0 || stderr != "" || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("sms --version: status %d, stdout %q, stderr %q; want 0 and a line starting %q naming %s", status, stdout, stderr, want, runtime.Version())
	}
}
