package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestCalls runs every typed call against a real server, on every backend
// and protocol.
func TestCalls(t *testing.T) {
	for _, backend := range storetest.Backends {
		for _, p := range protocols {
			t.Run(backend+"/"+string(p), func(t *testing.T) {
				t.Parallel()
				srv := startServer(t, "127.0.0.1:0", storetest.Open(t, backend), serverOptions{})
				testCalls(t, dial(t, srv.URL, client.WithProtocol(p)))
			})
		}
	}
}

func testCalls(t *testing.T, c *client.Client) {
	ctx := t.Context()
	id := uuid.NewString()
	n := client.Node{UUID: id, Address: "10.0.0.1", Port: 9000, HTTPPort: 8080, Metadata: map[string]string{"zone": "a"}}
	got, err := c.Register(ctx, n)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	if got != id {
		t.Errorf("Register = %q, want %q", got, id)
	}
	generated, err := c.Register(ctx, client.Node{Address: "10.0.0.2", Port: 9001})
	if err != nil {
		t.Fatalf("Register without uuid: %v", err)
	}
	if _, err := uuid.Parse(generated); err != nil || generated == id {
		t.Errorf("Register without uuid = %q, want a new uuid", generated)
	}

	node, err := c.GetNode(ctx, strings.ToUpper(id))
	if err != nil {
		t.Fatalf("GetNode: %v", err)
	}
	if node.UUID != id || node.Address != "10.0.0.1" || node.Port != 9000 || node.HTTPPort != 8080 ||
		node.Status != client.StatusActive || node.Metadata["zone"] != "a" || node.RegisteredAt.IsZero() || node.LastHeartbeat.IsZero() {
		t.Errorf("GetNode = %+v, want the registered node, active, with times", node)
	}

	at, err := c.Heartbeat(ctx, id, map[string]string{"disk": "ok"})
	if err != nil {
		t.Fatalf("Heartbeat: %v", err)
	}
	if at.Before(node.LastHeartbeat) {
		t.Errorf("Heartbeat time %v is before the registration's %v", at, node.LastHeartbeat)
	}

	n.Status, n.Metadata = client.StatusDecommissioning, map[string]string{"zone": "b"}
	if err := c.Update(ctx, n); err != nil {
		t.Fatalf("Update: %v", err)
	}
	zoneB, err := c.ListNodes(ctx, client.ListOptions{Metadata: map[string]string{"zone": "b"}})
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	if len(zoneB) != 1 || zoneB[0].UUID != id || zoneB[0].Status != client.StatusDecommissioning {
		t.Errorf("ListNodes(zone=b) = %+v, want the updated node only", zoneB)
	}
	all, err := c.ListNodes(ctx, client.ListOptions{})
	if err != nil || len(all) != 2 {
		t.Errorf("ListNodes() = %d nodes, %v; want 2", len(all), err)
	}

	r := client.Resource{NodeUUID: id, CPUPercent: 12.5, MemoryPercent: 50, MemoryTotal: 8 << 30, MemoryUsed: 4 << 30,
		MemoryAvailable: 4 << 30, DiskPercent: 10, DiskTotal: 100, DiskUsed: 10, NetworkRxPerSec: 7, NetworkTxPerSec: 8,
		Load1: 0.5, Load5: 0.25, Load15: 0.125, Metadata: map[string]string{"disk_path": "/"}}
	if err := c.ReportResource(ctx, r); err != nil {
		t.Fatalf("ReportResource: %v", err)
	}
	gotR, found, err := c.GetResource(ctx, id)
	if err != nil || !found {
		t.Fatalf("GetResource = found %v, %v; want found", found, err)
	}
	if gotR.UpdatedAt.IsZero() {
		t.Errorf("GetResource UpdatedAt is zero")
	}
	gotR.UpdatedAt = time.Time{}
	if fmt.Sprint(gotR) != fmt.Sprint(r) {
		t.Errorf("GetResource = %+v, want %+v", gotR, r)
	}
	if _, found, err := c.GetResource(ctx, generated); err != nil || found {
		t.Errorf("GetResource of a node without a report = found %v, %v; want not found", found, err)
	}
	list, err := c.ListResources(ctx)
	if err != nil || len(list) != 1 || list[0].NodeUUID != id {
		t.Errorf("ListResources() = %+v, %v; want the one report", list, err)
	}
	list, err = c.ListResources(ctx, generated, id)
	if err != nil || len(list) != 1 || list[0].NodeUUID != id {
		t.Errorf("ListResources(both) = %+v, %v; want the one report", list, err)
	}

	stats, err := c.Stats(ctx)
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if stats.TotalNodes != 2 || stats.NodesByStatus[client.StatusActive] != 1 || stats.NodesByStatus[client.StatusDecommissioning] != 1 ||
		stats.NodesWithResources != 1 || stats.MemoryTotal != 8<<30 || stats.AverageCPUPercent != 12.5 {
		t.Errorf("Stats = %+v, want 2 nodes (1 active, 1 decommissioning), 1 report", stats)
	}

	if err := c.Delete(ctx, id); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = c.GetNode(ctx, id)
	wantCode(t, err, connect.CodeNotFound)
	if !strings.Contains(err.Error(), "get node "+id) {
		t.Errorf("GetNode error %q does not say what failed", err)
	}
	wantCode(t, c.Delete(ctx, id), connect.CodeNotFound)
	_, err = c.Heartbeat(ctx, id, nil)
	wantCode(t, err, connect.CodeNotFound)
	wantCode(t, c.ReportResource(ctx, client.Resource{NodeUUID: id}), connect.CodeNotFound)
	_, err = c.Register(ctx, client.Node{Address: "10.0.0.3", Port: 0})
	wantCode(t, err, connect.CodeInvalidArgument)
	_, err = c.ListNodes(ctx, client.ListOptions{Status: "sleepy"})
	wantCode(t, err, connect.CodeInvalidArgument)
}

// TestListNodesFetchesEveryPage needs more nodes than one page holds.
func TestListNodesFetchesEveryPage(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", storetest.Open(t, "memory"), serverOptions{})
	c := dial(t, srv.URL)
	const n = 1001
	for i := range n {
		if _, err := c.Register(t.Context(), client.Node{Address: "10.0.0.1", Port: 1 + i}); err != nil {
			t.Fatal(err)
		}
	}
	nodes, err := c.ListNodes(t.Context(), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != n {
		t.Fatalf("ListNodes = %d nodes, want %d", len(nodes), n)
	}
	for i := 1; i < len(nodes); i++ {
		if nodes[i-1].UUID >= nodes[i].UUID {
			t.Fatalf("ListNodes not in ascending uuid order at %d", i)
		}
	}
}

func TestToken(t *testing.T) {
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0", storetest.Open(t, "memory"), serverOptions{token: "s3cret"})
			_, err := dial(t, srv.URL, client.WithProtocol(p)).Stats(t.Context())
			wantCode(t, err, connect.CodeUnauthenticated)
			_, err = dial(t, srv.URL, client.WithProtocol(p), client.WithToken("wrong")).Stats(t.Context())
			wantCode(t, err, connect.CodeUnauthenticated)
			if _, err := dial(t, srv.URL, client.WithProtocol(p), client.WithToken("s3cret")).Stats(t.Context()); err != nil {
				t.Fatalf("Stats with the token: %v", err)
			}
		})
	}
}

func TestMutualTLS(t *testing.T) {
	serverCert, _, serverPair := certFiles(t)
	clientCert, clientKey, clientPair := certFiles(t)
	srv := startMutualTLS(t, serverPair, clientPair)
	hostPort := strings.TrimPrefix(srv.URL, "https://")

	withCert, err := client.LoadTLS(client.TLSFiles{CA: serverCert, Cert: clientCert, Key: clientKey})
	if err != nil {
		t.Fatalf("LoadTLS: %v", err)
	}
	withoutCert, err := client.LoadTLS(client.TLSFiles{CA: serverCert})
	if err != nil {
		t.Fatalf("LoadTLS: %v", err)
	}
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			// host:port with TLS configured means https.
			c := dial(t, hostPort, client.WithProtocol(p), client.WithTLS(withCert))
			if _, err := c.Stats(t.Context()); err != nil {
				t.Fatalf("Stats over mutual TLS: %v", err)
			}
			_, err := dial(t, srv.URL, client.WithProtocol(p), client.WithTLS(withoutCert), client.WithRetry(1, 0)).Stats(t.Context())
			if err == nil {
				t.Fatal("Stats without a client certificate succeeded")
			}
			// Without a CA the server's self-signed certificate is refused.
			_, err = dial(t, srv.URL, client.WithProtocol(p), client.WithRetry(1, 0)).Stats(t.Context())
			if err == nil {
				t.Fatal("Stats verifying with the system roots succeeded")
			}
		})
	}
}

func TestLoadTLSErrors(t *testing.T) {
	cert, key, _ := certFiles(t)
	for _, tt := range []struct {
		files client.TLSFiles
		want  string
	}{
		{client.TLSFiles{CA: "/nonexistent/ca.pem"}, "tls ca: open /nonexistent/ca.pem"},
		{client.TLSFiles{CA: key}, "holds no PEM certificate"},
		{client.TLSFiles{Cert: cert}, "cert and key go together"},
		{client.TLSFiles{Cert: key, Key: cert}, "tls client certificate:"},
	} {
		_, err := client.LoadTLS(tt.files)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("LoadTLS(%+v) = %v, want an error containing %q", tt.files, err, tt.want)
		}
	}
}

func TestDialErrors(t *testing.T) {
	tc := &tls.Config{}
	for _, tt := range []struct {
		addr string
		opts []client.Option
		want string
	}{
		{"", nil, "address is empty"},
		{"ftp://x:1", nil, `address "ftp://x:1"`},
		{"http://x:1", []client.Option{client.WithTLS(tc)}, "is http:// but TLS is configured"},
		{"x:1", []client.Option{client.WithProtocol("soap")}, `protocol "soap"`},
		{"x:1", []client.Option{client.WithTimeout(0)}, "timeout 0s"},
		{"x:1", []client.Option{client.WithRetry(0, 0)}, "0 attempts"},
	} {
		_, err := client.Dial(tt.addr, tt.opts...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Dial(%q) = %v, want an error containing %q", tt.addr, err, tt.want)
		}
	}
}

// flaky fails the first failures round trips as an unreachable server
// would (connect reports them as unavailable), then passes them on.
type flaky struct {
	failures int64
	next     http.RoundTripper
	attempts atomic.Int64
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	if f.attempts.Add(1) <= f.failures {
		return nil, errors.New("injected: connection refused")
	}
	return f.next.RoundTrip(r)
}

func TestRetries(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", storetest.Open(t, "sqlite"), serverOptions{})
	id := uuid.NewString()
	if _, err := dial(t, srv.URL).Register(t.Context(), client.Node{UUID: id, Address: "10.0.0.1", Port: 1}); err != nil {
		t.Fatal(err)
	}
	// newClient returns a client whose first failures round trips fail.
	newClient := func(t *testing.T, failures int64, opts ...client.Option) (*client.Client, *flaky) {
		f := &flaky{failures: failures, next: http.DefaultTransport}
		opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: f}), client.WithRetry(4, time.Millisecond)}, opts...)
		return dial(t, srv.URL, opts...), f
	}
	node := client.Node{UUID: id, Address: "10.0.0.1", Port: 1}
	calls := []struct {
		name      string
		retried   bool
		call      func(ctx context.Context, c *client.Client) error
		wantAfter connect.Code // the code once the failures are over (0 = success)
	}{
		{"GetNode", true, func(ctx context.Context, c *client.Client) error { _, err := c.GetNode(ctx, id); return err }, 0},
		{"ListNodes", true, func(ctx context.Context, c *client.Client) error {
			_, err := c.ListNodes(ctx, client.ListOptions{})
			return err
		}, 0},
		{"Heartbeat", true, func(ctx context.Context, c *client.Client) error { _, err := c.Heartbeat(ctx, id, nil); return err }, 0},
		{"Update", true, func(ctx context.Context, c *client.Client) error { return c.Update(ctx, node) }, 0},
		{"ReportResource", true, func(ctx context.Context, c *client.Client) error {
			return c.ReportResource(ctx, client.Resource{NodeUUID: id})
		}, 0},
		{"Stats", true, func(ctx context.Context, c *client.Client) error { _, err := c.Stats(ctx); return err }, 0},
		{"Register with uuid", true, func(ctx context.Context, c *client.Client) error { _, err := c.Register(ctx, node); return err }, 0},
		{"Register without uuid", false, func(ctx context.Context, c *client.Client) error {
			_, err := c.Register(ctx, client.Node{Address: "10.0.0.9", Port: 9})
			return err
		}, 0},
		{"Delete", false, func(ctx context.Context, c *client.Client) error { return c.Delete(ctx, uuid.NewString()) }, connect.CodeNotFound},
	}
	for _, tt := range calls {
		t.Run(tt.name, func(t *testing.T) {
			c, f := newClient(t, 2)
			err := tt.call(t.Context(), c)
			if !tt.retried {
				wantCode(t, err, connect.CodeUnavailable)
				if got := f.attempts.Load(); got != 1 {
					t.Errorf("attempts = %d, want 1 (not retried)", got)
				}
				return
			}
			if got := connect.CodeOf(err); err != nil && got != tt.wantAfter {
				t.Fatalf("after 2 unavailable attempts: %v, want success", err)
			}
			if got := f.attempts.Load(); got != 3 {
				t.Errorf("attempts = %d, want 3 (2 failures, then success)", got)
			}
		})
	}

	t.Run("gives up after the attempts", func(t *testing.T) {
		c, f := newClient(t, 1000)
		_, err := c.GetNode(t.Context(), id)
		wantCode(t, err, connect.CodeUnavailable)
		if got := f.attempts.Load(); got != 4 {
			t.Errorf("attempts = %d, want 4", got)
		}
	})
	t.Run("gives up at the deadline", func(t *testing.T) {
		c, f := newClient(t, 1<<40, client.WithRetry(1<<30, 20*time.Millisecond), client.WithTimeout(200*time.Millisecond))
		_, err := c.GetNode(t.Context(), id)
		wantCode(t, err, connect.CodeDeadlineExceeded)
		if !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("error %q does not say what failed last", err)
		}
		if got := f.attempts.Load(); got < 2 {
			t.Errorf("attempts = %d, want retries until the deadline", got)
		}
	})
	t.Run("does not retry other errors", func(t *testing.T) {
		c, f := newClient(t, 0)
		_, err := c.GetNode(t.Context(), uuid.NewString())
		wantCode(t, err, connect.CodeNotFound)
		if got := f.attempts.Load(); got != 1 {
			t.Errorf("attempts = %d, want 1", got)
		}
	})
	t.Run("cancelled by the caller", func(t *testing.T) {
		c, _ := newClient(t, 1<<40, client.WithRetry(1<<30, 10*time.Millisecond))
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(50*time.Millisecond, cancel)
		_, err := c.GetNode(ctx, id)
		wantCode(t, err, connect.CodeCanceled)
	})
}

// TestDefaultDeadline checks that a call without a deadline gets one: a
// server that never answers is given up on.
func TestDefaultDeadline(t *testing.T) {
	hang := make(chan struct{})
	t.Cleanup(func() { close(hang) })
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	})}
	ln := testutil.Loopback(t)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := dial(t, "http://"+ln.Addr().String(), client.WithTimeout(100*time.Millisecond))
	_, err := c.GetNode(context.Background(), uuid.NewString())
	wantCode(t, err, connect.CodeDeadlineExceeded)
}
