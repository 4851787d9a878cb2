package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
	dir := t.TempDir()
	caFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certFile = caFile // one self-signed certificate is the server's, the client's and the CA
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "smsctl test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)

	store := watchstore.New(memory.New())
	t.Cleanup(func() { store.Close() })
	stop := make(chan struct{})
	srv := httptest.NewUnstartedServer(service.NewHandler(service.Config{
		Nodes: registry.NewNodeRegistry(store), Resources: registry.NewNodeResourceRegistry(store),
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
