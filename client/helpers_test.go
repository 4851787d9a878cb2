package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"testing"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// protocols are the wire protocols every client test runs with.
var protocols = []client.Protocol{client.ProtocolConnect, client.ProtocolGRPC, client.ProtocolGRPCWeb}

// server is a real SMS handler over a real store, served on a loopback
// listener until stop (or the test's end).
type server struct {
	URL   string
	Addr  string
	Store sqlkv.Store
	srv   *http.Server
	done  chan struct{}
}

// serverOptions adjust a test server.
type serverOptions struct {
	token string
	tls   *tls.Config // nil: cleartext with HTTP/1.1 and h2c
}

// startServer serves service.NewHandler over store on addr ("127.0.0.1:0"
// for any port) and returns it; it is stopped when t ends.
func startServer(t testing.TB, addr string, store sqlkv.Store, opts serverOptions) *server {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	view := registry.NewView(store)
	t.Cleanup(view.Close)
	cfg := service.Config{
		Nodes:     view.Nodes(),
		Resources: view.Resources(),
		Store:     store,
		Logger:    slog.New(slog.DiscardHandler),
		AuthToken: opts.token,
	}
	srv := &http.Server{Handler: service.NewHandler(cfg), Protocols: new(http.Protocols), TLSConfig: opts.tls,
		ErrorLog: log.New(io.Discard, "", 0)} // refused handshakes are what TLS tests cause
	srv.Protocols.SetHTTP1(true)
	scheme := "http"
	if opts.tls != nil {
		srv.Protocols.SetHTTP2(true)
		scheme = "https"
		ln = tls.NewListener(ln, opts.tls)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	s := &server{URL: scheme + "://" + ln.Addr().String(), Addr: ln.Addr().String(), Store: store, srv: srv, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(s.stop)
	return s
}

// stop closes the server and every connection to it at once, as a crash
// would, and waits until it has stopped serving. The store stays open.
func (s *server) stop() {
	s.srv.Close()
	<-s.done
}

// openSQLite opens a new SQLite store in a file of its own, closed when t
// ends.
func openSQLite(t testing.TB) sqlkv.Store {
	t.Helper()
	store, err := kvstore.Open(t.Context(), kvstore.SQLite(filepath.Join(t.TempDir(), "sms.db")))
	if err != nil {
		t.Fatalf("open sqlite store: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// dial returns a client of s, closed when t ends.
func dial(t testing.TB, url string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(url, opts...)
	if err != nil {
		t.Fatalf("Dial(%q): %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantCode fails the test unless err carries the Connect code want.
func wantCode(t *testing.T, err error, want connect.Code) {
	t.Helper()
	if got := connect.CodeOf(err); got != want {
		t.Fatalf("code = %v, want %v (err: %v)", got, want, err)
	}
}

// certFiles writes a self-signed certificate for 127.0.0.1, usable by a
// server and a client (testutil.WriteCert), and returns its files and the
// loaded pair.
func certFiles(t *testing.T) (certFile, keyFile string, cert tls.Certificate) {
	t.Helper()
	certFile, keyFile = testutil.WriteCert(t)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, cert
}

// startMutualTLS serves a memory store over TLS with serverPair,
// requiring a client certificate that clientCA signed.
func startMutualTLS(t *testing.T, serverPair, clientCA tls.Certificate) *server {
	t.Helper()
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(clientCA.Leaf)
	return startServer(t, "127.0.0.1:0", storetest.Open(t, "memory"), serverOptions{tls: &tls.Config{
		Certificates: []tls.Certificate{serverPair},
		ClientCAs:    clientCAs,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		NextProtos:   []string{"h2", "http/1.1"},
	}})
}

// fakeMetrics is a MetricsSource with fixed figures, counting its calls.
type fakeMetrics struct{ r client.Resource }

func (f *fakeMetrics) Collect(context.Context) (client.Resource, error) { return f.r, nil }
