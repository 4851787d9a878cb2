// Package testutil holds the helpers that tests of several packages share:
// a log buffer safe for concurrent writes, and an HTTP server and client
// pair that speak cleartext HTTP/2 (h2c), which gRPC needs.
package testutil

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// SyncBuffer is a bytes.Buffer that a running server or command may write
// (its logs, say) while the test reads it. The zero value is ready to use.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what has been written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// H2CClient returns a client that speaks prior-knowledge cleartext HTTP/2
// (and only that, or net/http would pick HTTP/1.1 for http:// URLs), so one
// client serves Connect, gRPC and gRPC-web, streams included.
func H2CClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}}
}

// StartH2CServer serves h on a loopback port over HTTP/1.1 and cleartext
// HTTP/2 until the test ends, and returns its URL and an H2CClient whose idle
// connections are closed then too.
func StartH2CServer(t testing.TB, h http.Handler) (string, *http.Client) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	client := H2CClient()
	t.Cleanup(client.CloseIdleConnections)
	return srv.URL, client
}
