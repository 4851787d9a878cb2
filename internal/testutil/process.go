package testutil

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The helpers below drive SMS's commands as an operator would: a binary
// built from the tree, started with flags in a clean environment, stopped
// with signals, its exit status checked.

// BuildBinary builds the command in dir (a package directory, relative to
// the test's package) into a temporary directory as name and returns its
// path. It skips t with -short.
func BuildBinary(t testing.TB, dir, name string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs binaries; skipped with -short")
	}
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// CleanEnv is the test's environment without SMS's own variables (SMS_*,
// KV_*), so that a developer's settings cannot change what a process does,
// followed by extra ("NAME=value").
func CleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SMS_") && !strings.HasPrefix(kv, "KV_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// heldPorts maps the address of each port a test holds (HoldPort) to its
// listener.
var heldPorts sync.Map // string -> *net.TCPListener

// HoldPort returns the address of a loopback listener the test keeps open
// until it ends. Command hands it to every process started with that
// address as an argument (sms --addr, --grpc-addr or --http-addr), as an
// inherited socket (fd:N): a restarted process serves the same address, no
// other program can take the port in between (as it could a port closed
// and reused), and connections made while no process runs wait in the
// backlog instead of being refused.
func HoldPort(t testing.TB) string {
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

// Command is exec.CommandContext(ctx, bin, args...) in CleanEnv; each
// argument that is a held port's address (HoldPort) is passed as an
// inherited socket, fd:N. The parent's copies of those sockets are closed
// when t ends.
func Command(t testing.TB, ctx context.Context, bin string, args ...string) *exec.Cmd {
	t.Helper()
	args = slices.Clone(args)
	var files []*os.File
	for i, arg := range args {
		ln, ok := heldPorts.Load(arg)
		if !ok {
			continue
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		files = append(files, f)
		args[i] = fmt.Sprintf("fd:%d", 2+len(files)) // ExtraFiles start at 3
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = CleanEnv()
	cmd.ExtraFiles = files
	return cmd
}

// Run runs cmd to completion and returns its stdout, stderr and exit
// status; it fails t if cmd cannot start.
func Run(t testing.TB, cmd *exec.Cmd) (stdout, stderr string, status int) {
	t.Helper()
	var out, errOut SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		status = exit.ExitCode()
	case err != nil:
		t.Fatalf("run %s %q: %v", filepath.Base(cmd.Path), cmd.Args[1:], err)
	}
	return out.String(), errOut.String(), status
}

// RunBinary runs bin with args (see Command) to completion, killing it
// after a minute, a bound for a hung process rather than a timing check,
// and returns its stdout, stderr and exit status.
func RunBinary(t testing.TB, bin string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return Run(t, Command(t, ctx, bin, args...))
}

// Process is a running binary.
type Process struct {
	Cmd    *exec.Cmd
	Output *SyncBuffer // stdout and stderr
	// Exited is closed once the process has exited; Err is then
	// cmd.Wait's result.
	Exited <-chan struct{}
	Err    error
}

// StartProcess starts bin with args (see Command); the process is killed
// when t ends if it still runs.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	exited := make(chan struct{})
	p := &Process{Cmd: Command(t, context.Background(), bin, args...), Output: &SyncBuffer{}, Exited: exited}
	p.Cmd.Stdout, p.Cmd.Stderr = p.Output, p.Output
	if err := p.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.Err = p.Cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.Exited:
		default:
			p.Cmd.Process.Kill()
			<-p.Exited
		}
	})
	return p
}

func (p *Process) name() string { return filepath.Base(p.Cmd.Path) }

// WaitHealthy polls GET baseURL/healthz until it answers 200; it fails t
// if the process exits first.
func (p *Process) WaitHealthy(t testing.TB, baseURL string) {
	t.Helper()
	waitHealthy(t, baseURL, p)
}

// WaitHealthy polls GET baseURL/healthz until it answers 200, for a server
// started some other way than StartProcess.
func WaitHealthy(t testing.TB, baseURL string) {
	t.Helper()
	waitHealthy(t, baseURL, nil)
}

// waitHealthy fails t if p (when not nil) exits before baseURL is healthy,
// or after 30 seconds, a bound for a broken test.
func waitHealthy(t testing.TB, baseURL string, p *Process) {
	t.Helper()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if p != nil {
			select {
			case <-p.Exited:
				t.Fatalf("%s exited before becoming healthy: %v\n%s", p.name(), p.Err, p.Output)
			default:
			}
		}
		resp, err := client.Get(baseURL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			if p != nil {
				t.Fatalf("GET %s/healthz not 200 within 30s (last: %v)\n%s", baseURL, err, p.Output)
			}
			t.Fatalf("GET %s/healthz not 200 within 30s (last: %v)", baseURL, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop sends sig and requires a clean exit (status 0); the bound of a
// minute only keeps a hung process from hanging the test.
func (p *Process) Stop(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.Cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
	select {
	case <-p.Exited:
	case <-time.After(time.Minute):
		t.Fatalf("%s did not exit after %v (gave up after a minute)\n%s", p.name(), sig, p.Output)
	}
	if p.Err != nil {
		t.Fatalf("%s exited with %v after %v, want status 0\n%s", p.name(), p.Err, sig, p.Output)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill(t testing.TB) {
	t.Helper()
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatalf("kill %s: %v", p.name(), err)
	}
	<-p.Exited
}

// Loopback returns a listener on a free loopback port, closed when t ends
// (if nothing closed it earlier), for a server a test runs in process.
func Loopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}
