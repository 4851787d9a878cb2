package main

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// startTLSServer serves SMS over TLS like cmd/sms with --tls-client-ca
// (client certificates required) and returns its host:port and the paths of
// a CA file that verifies it and of a client certificate and key it accepts.
func startTLSServer(t *testing.T) (addr, caFile, certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = testutil.WriteCert(t)
	caFile = certFile // one self-signed certificate is the server's, the client's and the CA
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)

	store := watchstore.New(memory.New())
	t.Cleanup(func() { store.Close() })
	view := registry.NewView(store)
	t.Cleanup(view.Close)
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(service.NewHandler(service.Config{
		Nodes: view.Nodes(), Resources: view.Resources(),
		Store: store, StopWatches: stop,
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, NextProtos: []string{"h2", "http/1.1"}}
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(func() {
		close(stop)
		srv.Close()
	})
	return srv.Listener.Addr().String(), caFile, certFile, keyFile
}

func TestTLSMistakesSayWhatToDo(t *testing.T) {
	addr, ca, cert, key := startTLSServer(t)
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		t.Run(protocol, func(t *testing.T) {
			ok(t, nil, "--addr", "https://"+addr, "--tls-ca", ca, "--tls-cert", cert, "--tls-key", key, "--protocol", protocol, "nodes", "list")

			for _, a := range []string{"http://" + addr, addr} {
				_, stderr, status := smsctl(t, nil, "--addr", a, "--protocol", protocol, "nodes", "list")
				if want := "smsctl: unavailable: the server speaks TLS; use https:// or --tls-ca\n"; status != exitRPC || stderr != want {
					t.Errorf("smsctl --addr %s (cleartext to TLS): status %d, stderr %q; want %d, %q", a, status, stderr, exitRPC, want)
				}
			}

			// The first call and the later ones, whichever way the
			// server's refusal reaches the client.
			for range 3 {
				_, stderr, status := smsctl(t, nil, "--addr", "https://"+addr, "--tls-ca", ca, "--protocol", protocol, "nodes", "list")
				if status != exitRPC || !strings.HasPrefix(stderr, "smsctl: unauthenticated: client certificate required") {
					t.Errorf("smsctl without a client certificate: status %d, stderr %q; want %d, unauthenticated: client certificate required", status, stderr, exitRPC)
				}
			}
		})
	}
}
