package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// The outage tests need a Postgres cluster of their own, since they stop
// and restart it: never the shared one of KV_TEST_POSTGRES_DSN. .ci/run
// creates it; see RELIABILITY.md to set one up by hand.
const (
	// envOutageCluster is "<version> <name>" as pg_ctlcluster takes them,
	// e.g. "15 outage".
	envOutageCluster = "SMS_TEST_OUTAGE_PG_CLUSTER"
	// envOutageDSN is a DSN of a database of that cluster in which the test
	// may create schemas.
	envOutageDSN = "SMS_TEST_OUTAGE_PG_DSN"
)

// callTimeout is each call's deadline under load. giveUp only keeps a
// broken build from hanging the test: the tests assert outcomes (every
// failure is unavailable, SMS recovers without a restart), never how fast;
// the times they log are figures for RELIABILITY.md (see "Latest figures"
// there for the command).
const (
	callTimeout = 2 * time.Second
	giveUp      = time.Minute
)

// outageCluster returns the pg_ctlcluster version and name and the DSN of
// the throw-away cluster, or skips t (fails it under CI=true).
func outageCluster(t *testing.T) (version, name, dsn string) {
	t.Helper()
	cluster, dsn := os.Getenv(envOutageCluster), os.Getenv(envOutageDSN)
	version, name, ok := strings.Cut(cluster, " ")
	if !ok || dsn == "" {
		msg := fmt.Sprintf("%s and %s are not set; they name a throw-away Postgres cluster this test restarts (see RELIABILITY.md)", envOutageCluster, envOutageDSN)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return version, name, dsn
}

func pgCtlCluster(t *testing.T, version, name, action string, extra ...string) {
	t.Helper()
	args := append([]string{"--skip-systemctl-redirect", version, name, action}, extra...)
	if out, err := exec.Command("pg_ctlcluster", args...).CombinedOutput(); err != nil {
		t.Fatalf("pg_ctlcluster %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// callRecord is the outcome of one call made during an outage.
type callRecord struct {
	code connect.Code // 0: success
	took time.Duration
	err  error
}

// loadRecorder drives RegisterNode and GetNode calls, each with
// callTimeout, from a few goroutines until stopped, and records outcomes.
type loadRecorder struct {
	mu      sync.Mutex
	records []callRecord
	stop    context.CancelFunc
	wg      sync.WaitGroup
}

func startLoad(client smspbconnect.NodeServiceClient, workers int) *loadRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	l := &loadRecorder{stop: cancel}
	for range workers {
		l.wg.Go(func() {
			var last string
			for ctx.Err() == nil {
				callCtx, cancel := context.WithTimeout(ctx, callTimeout)
				start := time.Now()
				var err error
				if last == "" {
					var resp *smspb.RegisterNodeResponse
					resp, err = client.RegisterNode(callCtx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
					if err == nil {
						last = resp.GetNodeUuid()
					}
				} else {
					_, err = client.GetNode(callCtx, &smspb.GetNodeRequest{Uuid: last})
					last = ""
				}
				took := time.Since(start)
				cancel()
				if ctx.Err() != nil {
					return // stopped: the cancellation is ours
				}
				l.mu.Lock()
				l.records = append(l.records, callRecord{code: connect.CodeOf(err), took: took, err: err})
				l.mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		})
	}
	return l
}

// finish stops the load and checks that every call either succeeded or
// failed with unavailable: a call that outlived its deadline would have
// ended with deadline_exceeded instead. It returns the number of calls and
// of failed calls, and logs the slowest call for the figures.
func (l *loadRecorder) finish(t *testing.T, what string) (calls, failed int) {
	t.Helper()
	l.stop()
	l.wg.Wait()
	var slowest time.Duration
	for _, r := range l.records {
		if r.err != nil {
			failed++
			if r.code != connect.CodeUnavailable {
				t.Errorf("%s: a call failed with %v (%v), want unavailable", what, r.code, r.err)
			}
		}
		slowest = max(slowest, r.took)
	}
	t.Logf("measured: %s: slowest call %v (deadline %v)", what, slowest.Round(time.Millisecond), callTimeout)
	return len(l.records), failed
}

// healthz returns GET /healthz's status code, or 0 if the request failed.
func healthzStatus(baseURL string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(baseURL + "/healthz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitRecovered waits until /healthz is 200 and a write succeeds and returns
// how long after since that was; it fails t if SMS never recovers.
func waitRecovered(t *testing.T, client smspbconnect.NodeServiceClient, baseURL string, since time.Time, p *testutil.Process) time.Duration {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.2", Port: 1}})
		cancel()
		if err == nil && healthzStatus(baseURL) == http.StatusOK {
			return time.Since(since)
		}
		if time.Since(since) > giveUp {
			t.Fatalf("SMS did not recover without a restart (gave up after %v; last error: %v)\n%s", giveUp, err, p.Output)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgReady waits until the cluster accepts a query and returns when.
func pgReady(t *testing.T, dsn string) time.Time {
	t.Helper()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := db.QueryRowContext(ctx, "SELECT 1").Scan(new(int))
		cancel()
		if err == nil {
			return time.Now()
		}
		if time.Now().After(deadline) {
			t.Fatalf("Postgres not ready within 30s: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// watchOutcome checks a watch opened before an outage: it must either still
// deliver (a node registered now arrives) or have ended with unavailable or
// aborted, after which watching again works.
func watchOutcome(t *testing.T, client smspbconnect.NodeServiceClient, events <-chan *smspb.WatchNodesResponse, streamErr func() error) string {
	t.Helper()
	reg, err := client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.3", Port: 1}})
	if err != nil {
		t.Fatalf("RegisterNode after recovery: %v", err)
	}
	timeout := time.After(giveUp)
	for {
		select {
		case m, ok := <-events:
			if !ok {
				code := connect.CodeOf(streamErr())
				if code != connect.CodeUnavailable && code != connect.CodeAborted {
					t.Fatalf("watch ended with %v (%v), want unavailable or aborted", code, streamErr())
				}
				again, _ := openWatch(t, client)
				if again == nil {
					t.Fatal("watching again failed")
				}
				return "ended with " + code.String() + "; watching again works"
			}
			if m.GetNode().GetUuid() == reg.GetNodeUuid() {
				return "resumed: delivered a change made after the outage"
			}
		case <-timeout:
			t.Fatalf("the watch neither ended nor delivered a change made after the outage (gave up after %v)", giveUp)
		}
	}
}

// openWatch opens a WatchNodes stream, waits for its snapshot, and returns
// its later events and a function giving its error once they end.
func openWatch(t *testing.T, client smspbconnect.NodeServiceClient) (<-chan *smspb.WatchNodesResponse, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := client.WatchNodes(ctx, &smspb.WatchNodesRequest{})
	if err != nil {
		t.Fatalf("WatchNodes: %v", err)
	}
	ch := make(chan *smspb.WatchNodesResponse, 10000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for stream.Receive() {
			ch <- stream.Msg()
		}
	}()
	t.Cleanup(func() {
		cancel()
		stream.Close()
		<-done
	})
	for m := range ch {
		if m.GetKind() == smspb.WatchNodesResponse_KIND_SNAPSHOT_END {
			return ch, func() error { <-done; return stream.Err() }
		}
	}
	t.Fatalf("watch ended before its snapshot did: %v", stream.Err())
	return nil, nil
}

// TestOutagePostgresRestart stops and starts, then restarts, the throw-away
// cluster under load: calls fail with unavailable, /healthz says not ready
// while the database is down, and SMS serves again once the database is
// back, without being restarted itself. How fast is a figure it logs.
func TestOutagePostgresRestart(t *testing.T) {
	version, name, base := outageCluster(t)
	bin := testutil.BuildBinary(t, ".", "sms")
	t.Setenv(storetest.EnvPostgresDSN, base)
	dsn := storetest.PostgresDSN(t)
	// Whatever happens, leave the cluster running.
	t.Cleanup(func() { exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start").Run() })

	addr := testutil.HoldPort(t)
	baseURL := "http://" + addr
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", dsn)
	p.WaitHealthy(t, baseURL)
	client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)
	events, streamErr := openWatch(t, client)

	t.Run("stop, then start", func(t *testing.T) {
		load := startLoad(client, 4)
		time.Sleep(300 * time.Millisecond)
		pgCtlCluster(t, version, name, "stop", "-m", "fast")

		// While it is down: not ready, and calls fail fast with unavailable.
		deadline := time.Now().Add(giveUp)
		for healthzStatus(baseURL) != http.StatusServiceUnavailable {
			if time.Now().After(deadline) {
				t.Fatalf("/healthz never turned 503 after Postgres stopped (gave up after %v)\n%s", giveUp, p.Output)
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(time.Second) // calls keep failing for a while
		pgCtlCluster(t, version, name, "start")
		ready := pgReady(t, base)
		took := waitRecovered(t, client, baseURL, ready, p)
		calls, failed := load.finish(t, "Postgres stopped")
		if failed == 0 {
			t.Errorf("no call failed while Postgres was down: the test did not test an outage")
		}
		t.Logf("measured: stop/start: %d calls, %d failed with unavailable; serving again %v after Postgres accepted queries", calls, failed, took)
	})
	t.Run("restart", func(t *testing.T) {
		load := startLoad(client, 4)
		time.Sleep(300 * time.Millisecond)
		pgCtlCluster(t, version, name, "restart", "-m", "fast")
		ready := pgReady(t, base)
		took := waitRecovered(t, client, baseURL, ready, p)
		time.Sleep(300 * time.Millisecond)
		calls, failed := load.finish(t, "Postgres restarted")
		t.Logf("measured: restart: %d calls, %d failed with unavailable; serving again %v after Postgres accepted queries", calls, failed, took)
	})
	t.Run("watch", func(t *testing.T) {
		t.Log(watchOutcome(t, client, events, streamErr))
	})
	p.Stop(t, syscall.SIGTERM)
}

// TestOutageTerminateBackends kills SMS's own database sessions
// (pg_terminate_backend, selected by a unique application_name, so nobody
// else's sessions are touched) again and again under load: calls succeed or
// fail with unavailable, and SMS recovers without a restart. It runs on the shared cluster of KV_TEST_POSTGRES_DSN.
func TestOutageTerminateBackends(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	dsn := storetest.PostgresDSN(t)
	var b [6]byte
	rand.Read(b[:])
	app := "sms_outage_test_" + hex.EncodeToString(b[:])
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", app)
	u.RawQuery = q.Encode()

	addr := testutil.HoldPort(t)
	baseURL := "http://" + addr
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", u.String())
	p.WaitHealthy(t, baseURL)
	client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)
	events, streamErr := openWatch(t, client)

	admin, err := sql.Open("pgx", os.Getenv(storetest.EnvPostgresDSN))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	load := startLoad(client, 4)
	killed := 0
	for range 10 {
		time.Sleep(150 * time.Millisecond)
		var n int
		err := admin.QueryRowContext(t.Context(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
			app).Scan(&n)
		if err != nil {
			t.Fatalf("pg_terminate_backend: %v", err)
		}
		killed += n
	}
	last := time.Now()
	took := waitRecovered(t, client, baseURL, last, p)
	time.Sleep(300 * time.Millisecond)
	calls, failed := load.finish(t, "backends terminated")
	if killed == 0 {
		t.Fatal("no SMS session was terminated: the test did not test anything")
	}
	t.Logf("measured: terminated sessions: %d sessions terminated; %d calls, %d failed with unavailable; serving again %v after the last termination",
		killed, calls, failed, took)
	t.Log(watchOutcome(t, client, events, streamErr))
	p.Stop(t, syscall.SIGTERM)
}
