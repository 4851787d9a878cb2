package client

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
)

// Errors that replace a transport's obscure one with what is wrong, each in
// a *connect.Error (errors.Is finds them): a cleartext call to a TLS server
// (unavailable; Go's server answers 400 "Client sent an HTTP request to an
// HTTPS server", h2c just fails), and a TLS server refusing a call without
// a client certificate (unauthenticated; a broken pipe, a reset or a
// "certificate required" alert otherwise, depending on when the refusal
// arrives). Neither is retried.
var (
	ErrServerSpeaksTLS    = errors.New("the server speaks TLS; use an https:// address")
	ErrClientCertRequired = errors.New("client certificate required: the server asks for one")
)

// hints is a Client's own transport, with the errors above.
type hints struct {
	next          http.RoundTripper
	cleartext     bool
	certRequested atomic.Bool // the server asked for a client certificate
}

// withHints wraps t, whose TLS configuration it completes so that a
// request for a client certificate the Client does not have is noted.
func withHints(t *http.Transport, useTLS bool) *hints {
	h := &hints{next: t, cleartext: !useTLS}
	if !useTLS {
		return h
	}
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if len(t.TLSClientConfig.Certificates) == 0 && t.TLSClientConfig.GetClientCertificate == nil {
		// With TLS 1.3 the server's refusal arrives after the handshake,
		// as a broken pipe or an alert on some later read.
		t.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			h.certRequested.Store(true)
			return &tls.Certificate{}, nil
		}
	}
	return h
}

func (h *hints) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := h.next.RoundTrip(r)
	if err != nil && h.certRequested.Load() {
		return nil, connect.NewError(connect.CodeUnauthenticated, ErrClientCertRequired)
	}
	if !h.cleartext {
		return resp, err
	}
	// Go's raw 400 answer to plain HTTP on a TLS port has no Content-Type;
	// Connect's own errors always have one.
	if err != nil || resp.StatusCode == http.StatusBadRequest && resp.Header.Get("Content-Type") == "" {
		if speaksTLS(r.Context(), r.URL.Host) {
			if resp != nil {
				resp.Body.Close()
			}
			return nil, connect.NewError(connect.CodeUnavailable, ErrServerSpeaksTLS)
		}
	}
	return resp, err
}

// speaksTLS reports whether a TLS handshake with host (host:port) gets as
// far as the server's answer: the server's certificate is not checked, and
// nothing is sent after the handshake.
func speaksTLS(ctx context.Context, host string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err == nil {
		conn.Close()
		return true
	}
	// A server that wants a client certificate may end the handshake with
	// an alert; that still is a TLS server.
	var alert tls.AlertError
	var netErr net.Error
	return errors.As(err, &alert) && !errors.As(err, &netErr)
}
