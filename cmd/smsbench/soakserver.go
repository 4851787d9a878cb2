package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spear-next/sms/service/registry"
)

// soakRoleEnv, when set, makes smsbench the soak's server process instead
// of its client: "service" or "noop" (see soakServe).
const soakRoleEnv = "SMSBENCH_SOAK_SERVER"

// stderr is where the soak's progress goes.
var stderr io.Writer = os.Stderr

// sweepRecord is one liveness sweep of the soak's server process.
type sweepRecord struct {
	start                             time.Time
	took                              time.Duration
	marked, deleted, deletedResources int
	err                               string
}

func (s sweepRecord) String() string {
	str := s.took.Round(time.Microsecond).String()
	if n := s.marked + s.deleted + s.deletedResources; n > 0 {
		str += fmt.Sprintf("(%d changed)", n)
	}
	if s.err != "" {
		str += "(failed)"
	}
	return str
}

// soakServer is a server process of the soak: this program again, with
// the same flags and soakRoleEnv set. It serves until its stdin closes, so
// it never outlives the client.
type soakServer struct {
	cmd   *exec.Cmd
	stdin io.Closer
	url   string
	pid   int

	mu     sync.Mutex
	sweeps []sweepRecord
	read   chan struct{} // closed when its stdout ends
}

// startSoakServer starts the server process of role and waits for its
// address.
func startSoakServer(ctx context.Context, c config, role string) (*soakServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, c.args...)
	cmd.Env = append(os.Environ(), soakRoleEnv+"="+role)
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	s := &soakServer{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid, read: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		defer close(s.read)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 2 && f[0] == "listening":
				addr <- f[1]
			case len(f) >= 6 && f[0] == "sweep":
				s.mu.Lock()
				s.sweeps = append(s.sweeps, parseSweep(f))
				s.mu.Unlock()
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	select {
	case s.url = <-addr:
		return s, nil
	case <-s.read:
		s.stop()
		return nil, fmt.Errorf("%s server process ended before it listened", role)
	case <-ctx.Done():
		s.stop()
		return nil, ctx.Err()
	}
}

// parseSweep reads a sweep line: sweep <start, Unix ns> <took, ns>
// <marked> <deleted> <deleted resources> [error...].
func parseSweep(f []string) sweepRecord {
	n := func(s string) int64 { v, _ := strconv.ParseInt(s, 10, 64); return v }
	r := sweepRecord{
		start: time.Unix(0, n(f[1])), took: time.Duration(n(f[2])),
		marked: int(n(f[3])), deleted: int(n(f[4])), deletedResources: int(n(f[5])),
	}
	if len(f) > 6 {
		r.err = strings.Join(f[6:], " ")
	}
	return r
}

// sweepsBetween returns the sweeps that started before to and ended after
// from.
func (s *soakServer) sweepsBetween(from, to time.Time) []sweepRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var in []sweepRecord
	for _, r := range s.sweeps {
		if r.start.Before(to) && r.start.Add(r.took).After(from) {
			in = append(in, r)
		}
	}
	return in
}

// stop closes the process's stdin and waits for it to exit (killing it
// after 30 s).
func (s *soakServer) stop() {
	s.stdin.Close()
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-exited
	}
}

// soakServe is the soak's server process. Role "noop" serves the no-op
// handler behind grpc-go's server with SMS's policy; role "service" opens
// the --kv-* store, seeds --nodes nodes into it with --register seed,
// serves SMS on it with grpc-go (as startServer does for the other
// workloads) and sweeps every --sweep-interval as cmd/sms's sweeper does,
// writing a line per sweep to stdout. Both write "listening <url>" first,
// and serve until stdin closes.
func soakServe(ctx context.Context, c config, role string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	if role == "noop" {
		url, stop, err := serveGRPC(noopGRPCServer(c.pageSize, 0, true))
		if err != nil {
			return err
		}
		defer stop()
		fmt.Printf("listening %s\n", url)
		<-ctx.Done()
		return nil
	}
	if role != "service" {
		return fmt.Errorf("%s=%q: want service or noop", soakRoleEnv, role)
	}
	dir, err := os.MkdirTemp("", "smsbench-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := c.path
	if path == "" {
		path = dir + "/sms.db"
	}
	s, err := openStore(ctx, c, path)
	if err != nil {
		return err
	}
	store := watchable(s)
	defer store.Close()
	if c.register == "seed" {
		if _, err := seed(ctx, store, c, stderr); err != nil {
			return err
		}
	}
	url, nodes, stop, err := startServer(store, c.watchers+2, true)
	if err != nil {
		return err
	}
	defer stop()
	fmt.Printf("listening %s\n", url)
	t := time.NewTicker(c.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// The timeout cmd/sms gives a sweep.
		sctx, done := context.WithTimeout(ctx, max(c.sweepInterval, 10*time.Second))
		start := time.Now()
		res, err := nodes.Sweep(sctx, registry.Liveness{HeartbeatTimeout: c.heartbeatTimeout})
		took := time.Since(start)
		done()
		if ctx.Err() != nil {
			return nil
		}
		msg := ""
		if err != nil {
			msg = " " + strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Printf("sweep %d %d %d %d %d%s\n", start.UnixNano(), took.Nanoseconds(), res.MarkedUnhealthy, res.DeletedNodes, res.DeletedResources, msg)
	}
}

// loadAverage is /proc/loadavg's first three fields.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "n/a"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "n/a"
	}
	return strings.Join(f[:3], " ")
}
