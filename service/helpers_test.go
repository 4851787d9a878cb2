package service_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// openStore opens a fresh, empty store of backend (see storetest.Backends),
// closed when the test ends. Postgres tests skip without
// KV_TEST_POSTGRES_DSN.
func openStore(t testing.TB, backend string) sqlkv.Store {
	t.Helper()
	store := storetest.Open(t, backend)
	if _, ok := store.(sqlkv.Watchable); ok {
		return store
	}
	// As cmd/sms opens memory and SQLite: reporting writes in process.
	return watchstore.New(store)
}

// protocol is one way a client reaches the service (see testutil.Protocol).
type protocol = testutil.Protocol

// protocols are every protocol, against both stacks.
var protocols = testutil.Protocols

// connectHTTP is the protocol of tests about the HTTP surface as a whole.
var connectHTTP = protocols[0]

// grpcGo is gRPC to grpc-go's server, for tests of what that stack adds.
var grpcGo = protocols[3]

// env is one server over one fresh store, both stacks (the http.Handler and
// grpc-go's server) sharing one Config, with a client for one protocol.
type env struct {
	store   sqlkv.Store
	url     string       // the http.Handler's
	grpcURL string       // grpc-go's server
	rpcURL  string       // url or grpcURL: where client goes
	http    *http.Client // speaks unencrypted HTTP/2, which gRPC needs
	opts    []connect.ClientOption
	client  smspbconnect.NodeServiceClient
}

// startServer serves service.NewHandler(cfg) over HTTP/1.1 and unencrypted
// HTTP/2 and returns its URL and an HTTP/2 client for it.
func startServer(t *testing.T, cfg service.Config) (string, *http.Client) {
	t.Helper()
	return testutil.StartH2CServer(t, service.NewHandler(cfg))
}

// startGRPCServer serves service.NewGRPCServer(cfg) over cleartext HTTP/2
// on a loopback port and returns its URL.
func startGRPCServer(t *testing.T, cfg service.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := service.NewGRPCServer(cfg)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	return "http://" + ln.Addr().String()
}

// newEnv starts both servers over store, with a client speaking p; edit,
// if not nil, adjusts their Config; viewOpts configure the registry view.
func newEnv(t *testing.T, store sqlkv.Store, p protocol, edit func(*service.Config), viewOpts ...registry.Option) *env {
	t.Helper()
	view := registry.NewView(store, viewOpts...)
	t.Cleanup(view.Close)
	// As a load balancer waits for readiness. (A store that fails is
	// tested failing: its view never loads.)
	_ = view.WaitLoaded(t.Context())
	cfg := service.Config{
		Nodes:     view.Nodes(),
		Resources: view.Resources(),
		Store:     store,
		Logger:    testLogger(t),
	}
	if edit != nil {
		edit(&cfg)
	}
	if cfg.Watchers == nil { // as cmd/sms: one limit for both stacks
		cfg.Watchers = service.NewWatcherLimit(cfg.MaxWatchers)
	}
	url, client := startServer(t, cfg)
	e := &env{
		store:   store,
		url:     url,
		grpcURL: startGRPCServer(t, cfg),
		http:    client,
		opts:    p.Opts,
	}
	e.rpcURL = e.target(p)
	e.client = newClient(e, p)
	return e
}

// target is the URL of the server p's clients talk to.
func (e *env) target(p protocol) string {
	if p.GRPCGo {
		return e.grpcURL
	}
	return e.url
}

// testLogger sends the server's logs to the test log, so a failing test
// shows what the server saw.
func testLogger(t *testing.T) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tWriter writes to the test log until the test's cleanup: a handler that
// outlives its test (a stream the closed server did not wait for) may still
// log, and testing forbids t.Log after the test ended (the race detector
// reports it).
type tWriter struct {
	t       *testing.T
	mu      sync.Mutex
	stopped bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(string(p))
	}
	return len(p), nil
}

func (w *tWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}

// eachWire runs fn in parallel once per backend and protocol, each time
// against a fresh store and server.
func eachWire(t *testing.T, fn func(t *testing.T, e *env)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		for _, p := range protocols {
			t.Run(backend+"/"+p.Name, func(t *testing.T) {
				t.Parallel()
				fn(t, newEnv(t, openStore(t, backend), p, nil))
			})
		}
	}
}

// wantCode fails the test unless err carries the Connect code want.
func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != want {
		t.Fatalf("code = %v, want %v (err: %v)", got, want, err)
	}
}

// must takes a call's results and returns a function that fails the test
// if the call failed and returns its value otherwise:
// resp := must(client.GetNode(ctx, req))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v (code %v)", err, connect.CodeOf(err))
		}
		return v
	}
}

// newClient returns another NodeService client of e's servers, speaking p.
func newClient(e *env, p protocol) smspbconnect.NodeServiceClient {
	return smspbconnect.NewNodeServiceClient(e.http, e.target(p), p.Opts...)
}

// slogTo returns a logger writing text records to w.
func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
