package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service/registry"
)

// startRun runs the server in-process with args in the one-port layout, on
// a listener of its own, and stops it when the test ends, requiring a clean
// shutdown. It returns the address and the server's log output once the
// server serves.
func startRun(t *testing.T, environ map[string]string, args ...string) (string, *testutil.SyncBuffer) {
	t.Helper()
	ls := listeners{one: testutil.Loopback(t)}
	return ls.one.Addr().String(), startListeners(t, ls, environ, args...)
}

// startSplit is startRun in SPEAR's layout: it returns the gRPC (grpc-go)
// and the HTTP address.
func startSplit(t *testing.T, environ map[string]string, args ...string) (grpcAddr, httpAddr string, logs *testutil.SyncBuffer) {
	t.Helper()
	ls := listeners{grpc: testutil.Loopback(t), http: testutil.Loopback(t)}
	return ls.grpc.Addr().String(), ls.http.Addr().String(), startListeners(t, ls, environ, args...)
}

// layouts runs fn once per layout, on a fresh server of each started with
// args: one port, then SPEAR's. rpcAddr is where gRPC clients go (grpc-go's
// server in SPEAR's layout), httpAddr where everything else goes.
func layouts(t *testing.T, environ map[string]string, args []string, fn func(t *testing.T, rpcAddr, httpAddr string, logs *testutil.SyncBuffer)) {
	t.Helper()
	t.Run("one port", func(t *testing.T) {
		addr, logs := startRun(t, environ, args...)
		fn(t, addr, addr, logs)
	})
	t.Run("spear layout", func(t *testing.T) {
		grpcAddr, httpAddr, logs := startSplit(t, environ, args...)
		fn(t, grpcAddr, httpAddr, logs)
	})
}

func startListeners(t *testing.T, ls listeners, environ map[string]string, args ...string) *testutil.SyncBuffer {
	t.Helper()
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, env(environ), logs, ls) }()
	// Once the server answers anything (a cleartext request to a TLS port
	// gets a 400), it serves and its start line is written; the port is
	// bound, so the request waits for that instead of failing.
	httpLn := ls.http
	if ls.one != nil {
		httpLn = ls.one
	}
	if resp, err := http.Get("http://" + httpLn.Addr().String() + "/healthz"); err == nil {
		resp.Body.Close()
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run returned %v after cancel, want nil; logs:\n%s", err, logs)
			}
		case <-time.After(time.Minute):
			t.Errorf("run did not return after cancel (gave up after a minute); logs:\n%s", logs)
		}
	})
	return logs
}

// h2cClient speaks HTTP/1.1 and cleartext HTTP/2. With both enabled,
// net/http picks HTTP/1.1 for http:// URLs, so these process-level tests run
// Connect and gRPC-web over HTTP/1.1 (testutil.H2CClient is HTTP/2 only).
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// protocol is one way a client reaches the server (see testutil.Protocol):
// in SPEAR's layout, grpc-go's goes to the gRPC address.
type protocol = testutil.Protocol

var protocols = testutil.Protocols

// addrOf is where p's client goes: rpcAddr for gRPC to grpc-go's server,
// httpAddr for the others. In the one-port layout both are the one port.
func addrOf(p protocol, rpcAddr, httpAddr string) string {
	if p.GRPCGo {
		return rpcAddr
	}
	return httpAddr
}

// nodeClient is a NodeService client speaking p over hc to scheme://addr.
func nodeClient(p protocol, hc *http.Client, scheme, rpcAddr, httpAddr string, extra ...connect.ClientOption) smspbconnect.NodeServiceClient {
	opts := append(slices.Clone(p.Opts), extra...)
	return smspbconnect.NewNodeServiceClient(hc, scheme+"://"+addrOf(p, rpcAddr, httpAddr), opts...)
}

// registerAndGet registers a node through c and reads it back.
func registerAndGet(t *testing.T, c smspbconnect.NodeServiceClient) *smspb.Node {
	t.Helper()
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.7", Port: 8080}})
	if err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}
	got, err := c.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
	if err != nil {
		t.Fatalf("GetNode: %v", err)
	}
	if !got.GetFound() || got.GetNode().GetIpAddress() != "10.0.0.7" {
		t.Fatalf("GetNode(%s) = %v, want the registered node", reg.GetNodeUuid(), got)
	}
	return got.GetNode()
}

func TestRunCleartextEveryProtocol(t *testing.T) {
	layouts(t, nil, []string{"--kv-backend", "memory"}, func(t *testing.T, rpcAddr, httpAddr string, logs *testutil.SyncBuffer) {
		for _, p := range protocols {
			t.Run(p.Name, func(t *testing.T) {
				registerAndGet(t, nodeClient(p, cleartextClient(p), "http", rpcAddr, httpAddr))
			})
		}
		if !strings.Contains(logs.String(), "http/1.1,h2c") {
			t.Errorf("startup line does not name the protocols:\n%s", logs)
		}
		if rpcAddr != httpAddr && !strings.Contains(logs.String(), "grpc_addr="+rpcAddr+" http_addr="+httpAddr) {
			t.Errorf("startup line does not name both addresses:\n%s", logs)
		}
	})
}

// cleartextClient is an HTTP client for p in cleartext: h2cClient, or
// testutil.H2CClient for grpc-go's server, which speaks only HTTP/2.
func cleartextClient(p protocol) *http.Client {
	if p.GRPCGo {
		return testutil.H2CClient()
	}
	return h2cClient()
}

func TestRunHTTP2PriorKnowledge(t *testing.T) {
	addr, _ := startRun(t, nil, "--kv-backend", "memory")
	client := testutil.H2CClient() // HTTP/2 only: fails if the server cannot h2c
	resp, err := client.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz over h2c: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		t.Errorf("GET /healthz = %d over HTTP/%d, want 200 over HTTP/2", resp.StatusCode, resp.ProtoMajor)
	}
}

func TestRunMaxRequestBytes(t *testing.T) {
	layouts(t, nil, []string{"--kv-backend", "memory", "--max-request-bytes", "200"}, func(t *testing.T, rpcAddr, httpAddr string, _ *testutil.SyncBuffer) {
		for _, p := range protocols {
			t.Run(p.Name, func(t *testing.T) {
				c := nodeClient(p, cleartextClient(p), "http", rpcAddr, httpAddr)
				_, err := c.RegisterNode(context.Background(), &smspb.RegisterNodeRequest{Node: &smspb.Node{
					IpAddress: "10.0.0.7", Port: 8080, Metadata: map[string]string{"big": strings.Repeat("x", 500)},
				}})
				if got, want := connect.CodeOf(err), connect.CodeResourceExhausted; got != want {
					t.Errorf("RegisterNode of 500+ bytes with a 200-byte limit: code %v (%v), want %v", got, err, want)
				}
			})
		}
	})
}

func TestRunAuthToken(t *testing.T) {
	const token = "s3cret-token"
	file := writeFile(t, "token", token+"\n")
	environ := map[string]string{"SMS_AUTH_TOKEN_FILE": file}
	layouts(t, environ, []string{"--kv-backend", "memory", "--log-level", "debug"}, func(t *testing.T, rpcAddr, httpAddr string, logs *testutil.SyncBuffer) {
		for _, p := range protocols {
			t.Run(p.Name, func(t *testing.T) {
				_, err := nodeClient(p, cleartextClient(p), "http", rpcAddr, httpAddr).ListNodes(context.Background(), &smspb.ListNodesRequest{})
				if got, want := connect.CodeOf(err), connect.CodeUnauthenticated; got != want {
					t.Errorf("ListNodes without a token: code %v, want %v", got, want)
				}
				registerAndGet(t, nodeClient(p, cleartextClient(p), "http", rpcAddr, httpAddr,
					connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
						return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
							req.Header().Set("Authorization", "Bearer "+token)
							return next(ctx, req)
						}
					}))))
			})
		}

		resp, err := h2cClient().Get("http://" + httpAddr + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /healthz with auth on = %d, want 200 (it stays open)", resp.StatusCode)
		}
		if strings.Contains(logs.String(), token) {
			t.Errorf("logs contain the token:\n%s", logs)
		}
	})
}

func TestRunTLSClientCerts(t *testing.T) {
	certFile, keyFile := writeCert(t)
	pemBytes, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	clientCert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	tlsClient := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: roots, Certificates: certs},
			ForceAttemptHTTP2: true,
		}}
	}

	args := []string{"--kv-backend", "memory", "--tls-cert", certFile, "--tls-key", keyFile, "--tls-client-ca", certFile}
	layouts(t, nil, args, func(t *testing.T, rpcAddr, httpAddr string, logs *testutil.SyncBuffer) {
		t.Run("with a client certificate", func(t *testing.T) {
			for _, p := range protocols {
				t.Run(p.Name, func(t *testing.T) {
					registerAndGet(t, nodeClient(p, tlsClient(clientCert), "https", rpcAddr, httpAddr))
				})
			}
		})
		if !strings.Contains(logs.String(), "h2 (tls) with client certificates") {
			t.Errorf("startup line does not name TLS with client certificates:\n%s", logs)
		}
		for _, addr := range slices.Compact([]string{rpcAddr, httpAddr}) {
			t.Run("without a client certificate", func(t *testing.T) {
				c := nodeClient(protocols[1], tlsClient(), "https", addr, addr)
				if _, err := c.ListNodes(context.Background(), &smspb.ListNodesRequest{}); err == nil {
					t.Fatalf("ListNodes at %s without a client certificate succeeded, want a handshake failure", addr)
				}
			})
			t.Run("TLS 1.1", func(t *testing.T) {
				c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
					RootCAs: roots, Certificates: []tls.Certificate{clientCert},
					MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11,
				}}}
				if _, err := c.Get("https://" + addr + "/healthz"); err == nil {
					t.Fatalf("GET %s/healthz over TLS 1.1 succeeded, want it refused", addr)
				}
			})
			t.Run("cleartext", func(t *testing.T) {
				c := nodeClient(protocols[1], cleartextClient(protocols[1]), "http", addr, addr)
				if _, err := c.ListNodes(context.Background(), &smspb.ListNodesRequest{}); err == nil {
					t.Fatalf("cleartext gRPC to the TLS port %s succeeded, want a failure", addr)
				}
			})
		}
	})
}

func TestRunStartupErrors(t *testing.T) {
	t.Run("address in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var stderr testutil.SyncBuffer
		err = run(context.Background(), []string{"--kv-backend", "memory", "--addr", ln.Addr().String()}, env(nil), &stderr, listeners{})
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			t.Errorf("run on a busy port = %v, want an address-in-use error", err)
		}
		var ue *usageError
		if errors.As(err, &ue) {
			t.Errorf("run on a busy port = %v, a usage error; want a runtime error (exit 1)", err)
		}
	})
	t.Run("bad config starts nothing", func(t *testing.T) {
		var stderr testutil.SyncBuffer
		err := run(context.Background(), []string{"--kv-backend", "memory", "--node-ttl", "1s"}, env(nil), &stderr, listeners{})
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Fatalf("run with --node-ttl 1s = %v, want a *usageError", err)
		}
		if stderr.String() != "" {
			t.Errorf("run wrote %q before failing, want nothing (main prints the one line)", stderr.String())
		}
	})
}

func TestRunLiveness(t *testing.T) {
	addr, logs := startRun(t, nil, "--kv-backend", "memory",
		"--heartbeat-timeout", "300ms", "--node-ttl", "900ms", "--cleanup-interval", "50ms")
	c := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr)
	ctx := context.Background()
	reg, err := c.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.9", Port: 1}})
	if err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}

	// waitFor polls GetNode until done says the node reached the state.
	waitFor := func(what string, done func(*smspb.GetNodeResponse, error) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, err := c.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if done(got, err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("node not %s within 5s (last: %v, %v); logs:\n%s", what, got, err, logs)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("unhealthy", func(r *smspb.GetNodeResponse, err error) bool {
		return err == nil && r.GetNode().GetStatus() == "unhealthy"
	})
	waitFor("deleted", func(_ *smspb.GetNodeResponse, err error) bool {
		return connect.CodeOf(err) == connect.CodeNotFound
	})
	for _, w := range []string{"marked_unhealthy=1", "deleted_nodes=1"} {
		if !strings.Contains(logs.String(), w) {
			t.Errorf("logs do not report %s:\n%s", w, logs)
		}
	}
}

// fakeSweeper records sweeps and returns canned results.
type fakeSweeper struct {
	mu    sync.Mutex
	calls []registry.Liveness
	res   registry.SweepResult
	err   error
}

func (f *fakeSweeper) Sweep(ctx context.Context, l registry.Liveness) (registry.SweepResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, l)
	return f.res, f.err
}

func (f *fakeSweeper) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.calls)
}

func TestRunSweeper(t *testing.T) {
	want := registry.Liveness{HeartbeatTimeout: 90 * time.Second, NodeTTL: time.Hour}
	tests := []struct {
		name    string
		res     registry.SweepResult
		err     error
		wantLog string // "" = no log line
	}{
		{"quiet when nothing changed", registry.SweepResult{}, nil, ""},
		{"logs counts", registry.SweepResult{MarkedUnhealthy: 2, DeletedNodes: 1, DeletedResources: 3}, nil,
			"level=INFO msg=\"liveness sweep\" marked_unhealthy=2 deleted_nodes=1 deleted_resources=3"},
		{"warns on error", registry.SweepResult{}, errors.New("db down"), "level=WARN msg=\"liveness sweep failed\" marked_unhealthy=0 deleted_nodes=0 deleted_resources=0 err=\"db down\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeSweeper{res: tt.res, err: tt.err}
			var logs testutil.SyncBuffer
			logger := newLogger(config{logFormat: "text"}, &logs)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				runSweeper(ctx, f, 5*time.Millisecond, want, logger)
				close(done)
			}()
			deadline := time.Now().Add(5 * time.Second)
			for f.count() < 2 {
				if time.Now().After(deadline) {
					t.Fatalf("%d sweeps in 5s, want at least 2", f.count())
				}
				time.Sleep(time.Millisecond)
			}
			cancel()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("runSweeper did not stop after cancel (gave up after a minute)")
			}
			n := f.count()
			time.Sleep(20 * time.Millisecond)
			if f.count() != n {
				t.Errorf("sweeps went on after runSweeper returned")
			}
			for _, l := range f.calls {
				if l != want {
					t.Errorf("Sweep(%+v), want %+v", l, want)
				}
			}
			got := logs.String()
			if tt.wantLog == "" && got != "" {
				t.Errorf("logs = %q, want none", got)
			}
			if tt.wantLog != "" && !strings.Contains(got, tt.wantLog) {
				t.Errorf("logs = %q, want a line with %q", got, tt.wantLog)
			}
		})
	}
}

func TestStoreConfigRedactsTheDSN(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"--kv-backend", "memory"},
		{"--kv-backend", "sqlite", "--sqlite-synchronous", "normal"},
		{"--kv-backend", "postgres", "--kv-dsn", "postgres://sms:hunter2@db/sms"},
		{"--kv-backend", "postgres", "--kv-dsn", "host=db user=sms password=hunter2"},
	} {
		c := mustParse(t, args, nil)
		if err := c.store.Validate(); err != nil {
			t.Errorf("store config of %q: Validate() = %v, want nil", args, err)
		}
		if s := c.store.String(); strings.Contains(s, "hunter2") {
			t.Errorf("store config of %q: String() = %q, shows the password", args, s)
		}
	}
}

func TestRunShutdownDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the shutdown deadline; skipped with -short")
	}
	ls := listeners{one: testutil.Loopback(t)}
	addr := ls.one.Addr().String()
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--kv-backend", "memory"}, env(nil), logs, ls) }()

	// A call whose request body never ends stays in flight until the server
	// gives up on it.
	body, bodyWriter := io.Pipe()
	defer bodyWriter.Close()
	req, err := http.NewRequest(http.MethodPost, "http://"+addr+smspbconnect.NodeServiceRegisterNodeProcedure, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/proto")
	go func() {
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	if _, err := bodyWriter.Write([]byte{0x0a}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // let the handler start reading

	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run = %v after cancel, want nil", err)
		}
	case <-time.After(shutdownTimeout + time.Minute):
		t.Fatalf("run did not return after cancel (gave up after %v); logs:\n%s", shutdownTimeout+time.Minute, logs)
	}
	if took := time.Since(start); took < shutdownTimeout {
		t.Errorf("run returned %v after cancel, before the %v grace period: the call was not in flight", took, shutdownTimeout)
	}
	if !strings.Contains(logs.String(), "did not finish in time") {
		t.Errorf("logs do not report the cut calls:\n%s", logs)
	}
}

// TestRunShutdownEndsWatches: shutdown ends the watch streams of both
// servers (unavailable, "watch again") and drains both, so run returns nil
// long before the grace period would cut them.
func TestRunShutdownEndsWatches(t *testing.T) {
	ls := listeners{grpc: testutil.Loopback(t), http: testutil.Loopback(t)}
	logs := &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"--kv-backend", "memory"}, env(nil), logs, ls) }()

	var ends []func() error
	for _, p := range protocols {
		c := nodeClient(p, cleartextClient(p), "http", ls.grpc.Addr().String(), ls.http.Addr().String())
		events, streamErr := openWatch(t, c)
		ends = append(ends, func() error {
			for range events {
			}
			return streamErr()
		})
	}
	cancel()
	for i, end := range ends {
		err := end()
		if got, want := connect.CodeOf(err), connect.CodeUnavailable; got != want || !strings.Contains(err.Error(), "watch again") {
			t.Errorf("%s: watch ended with %v, want %v \"... watch again\"", protocols[i].Name, err, want)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("run = %v after cancel, want nil; logs:\n%s", err, logs)
	}
	if strings.Contains(logs.String(), "did not finish in time") {
		t.Errorf("shutdown cut calls instead of draining:\n%s", logs)
	}
}
