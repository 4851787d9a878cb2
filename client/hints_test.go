package client_test

import (
	"crypto/tls"
	"errors"
	"sync/atomic"
	"testing"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/client"
	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// TestTLSMistakesNamed: a cleartext call to a TLS server and a call
// without the client certificate a server requires fail with errors that
// say so, on every protocol, the first call and the later ones; neither is
// retried.
func TestTLSMistakesNamed(t *testing.T) {
	serverCert, _, serverPair := certFiles(t)
	srv := startMutualTLS(t, serverPair, serverPair)
	withoutCert, err := client.LoadTLS(client.TLSFiles{CA: serverCert})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			for _, addr := range []string{"http://" + srv.Addr, srv.Addr} {
				c := dial(t, addr, client.WithProtocol(p))
				for range 2 {
					_, err := c.Stats(t.Context())
					wantCode(t, err, connect.CodeUnavailable)
					if !errors.Is(err, client.ErrServerSpeaksTLS) {
						t.Errorf("cleartext Stats to a TLS server at %s: %v, want ErrServerSpeaksTLS", addr, err)
					}
				}
			}
			c := dial(t, srv.URL, client.WithProtocol(p), client.WithTLS(withoutCert))
			for range 3 {
				_, err := c.Stats(t.Context())
				wantCode(t, err, connect.CodeUnauthenticated)
				if !errors.Is(err, client.ErrClientCertRequired) {
					t.Errorf("Stats without a client certificate: %v, want ErrClientCertRequired", err)
				}
			}
		})
	}
}

// TestServerSpeaksTLSNotRetried: the mistake is the caller's, so asking
// again cannot help. Each failed attempt probes the server with one TLS
// handshake: one handshake means one attempt.
func TestServerSpeaksTLSNotRetried(t *testing.T) {
	_, _, pair := certFiles(t)
	var handshakes atomic.Int64
	srv := startServer(t, "127.0.0.1:0", storetest.Open(t, "memory"), serverOptions{tls: &tls.Config{
		Certificates: []tls.Certificate{pair},
		NextProtos:   []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			handshakes.Add(1)
			return nil, nil
		},
	}})
	for _, p := range protocols {
		handshakes.Store(0)
		_, err := dial(t, "http://"+srv.Addr, client.WithProtocol(p), client.WithRetry(4, 0)).Stats(t.Context())
		if !errors.Is(err, client.ErrServerSpeaksTLS) {
			t.Fatalf("%s: Stats: %v, want ErrServerSpeaksTLS", p, err)
		}
		if got, want := handshakes.Load(), int64(1); got != want {
			t.Errorf("%s: %d TLS probes, want %d: one attempt, not retried", p, got, want)
		}
	}
}

// TestPlacementService: the Client's PlacementService carries its token.
func TestPlacementService(t *testing.T) {
	for _, p := range protocols {
		t.Run(string(p), func(t *testing.T) {
			srv := startServer(t, "127.0.0.1:0", storetest.Open(t, "memory"), serverOptions{token: "s3cret"})
			req := &smspb.ListPlacementPenaltiesRequest{}
			_, err := dial(t, srv.URL, client.WithProtocol(p)).PlacementService().ListPlacementPenalties(t.Context(), req)
			wantCode(t, err, connect.CodeUnauthenticated)
			if _, err := dial(t, srv.URL, client.WithProtocol(p), client.WithToken("s3cret")).PlacementService().ListPlacementPenalties(t.Context(), req); err != nil {
				t.Fatalf("ListPlacementPenalties with the token: %v", err)
			}
		})
	}
}
