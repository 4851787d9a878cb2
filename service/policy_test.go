package service_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
)

// bombSize is what the gzip bombs inflate to: 512 times bombLimit, the
// request limit of the server they are sent to.
const (
	bombSize  = 128 << 20
	bombLimit = 256 << 10
)

var (
	bombOnce            sync.Once
	protoBomb, jsonBomb []byte
)

// gzipBombs returns two gzip streams of about 135 KB (below bombLimit as
// sent) that inflate to bombSize bytes: a RegisterNodeRequest (an unknown
// bytes field full of zeros) and a REST registration (a metadata value full
// of "a").
func gzipBombs(t *testing.T) (proto, json []byte) {
	t.Helper()
	bombOnce.Do(func() {
		// Field 9999, wire type 2 (bytes), then its length.
		head := binary.AppendUvarint(nil, 9999<<3|2)
		head = binary.AppendUvarint(head, bombSize)
		protoBomb = testutil.GzipBomb(head, 0, bombSize, nil)
		jsonBomb = testutil.GzipBomb([]byte(`{"ip_address":"10.0.0.1","port":1,"metadata":{"k":"`), 'a', bombSize, []byte(`"}}`))
	})
	return protoBomb, jsonBomb
}

// envelope frames b as one compressed gRPC message.
func envelope(b []byte) []byte {
	out := []byte{1, 0, 0, 0, 0} // flag 1: compressed
	binary.BigEndian.PutUint32(out[1:], uint32(len(b)))
	return append(out, b...)
}

// surface is one way to send a request body to RegisterNode.
type surface struct {
	name        string
	path        string
	contentType string
	encoding    string // the header naming the compression
	frame       func([]byte) []byte
	code        func(resp *http.Response, body []byte) string
}

func connectCode(_ *http.Response, b []byte) string {
	var e struct{ Code string }
	json.Unmarshal(b, &e)
	return e.Code
}

func grpcStatus(r *http.Response, _ []byte) string {
	return grpcCode(r.Header.Get("Grpc-Status") + r.Trailer.Get("Grpc-Status"))
}

func grpcWebStatus(r *http.Response, b []byte) string {
	if s := r.Header.Get("Grpc-Status"); s != "" {
		return grpcCode(s)
	}
	// Trailers in the body: a frame with flag 0x80 and "grpc-status: N".
	_, rest, _ := strings.Cut(string(b), "grpc-status:")
	s, _, _ := strings.Cut(strings.TrimSpace(rest), "\r\n")
	return grpcCode(s)
}

func restStatus(r *http.Response, _ []byte) string { return http.StatusText(r.StatusCode) }

var surfaces = []surface{
	{"connect", "/sms.NodeService/RegisterNode", "application/proto", "Content-Encoding", nil, connectCode},
	{"grpc", "/sms.NodeService/RegisterNode", "application/grpc", "Grpc-Encoding", envelope, grpcStatus},
	{"grpcweb", "/sms.NodeService/RegisterNode", "application/grpc-web+proto", "Grpc-Encoding", envelope, grpcWebStatus},
	{"rest", "/api/v1/nodes", "application/json", "Content-Encoding", nil, restStatus},
}

// post sends body to e's server at s and returns the code of the answer
// and how many bytes the process (server and client) allocated meanwhile.
func (s surface) post(t *testing.T, e *env, body []byte, header http.Header) (code string, allocated uint64) {
	t.Helper()
	if s.frame != nil {
		body = s.frame(body)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+s.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", s.contentType)
	req.Header.Set(s.encoding, "gzip")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	respBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	runtime.ReadMemStats(&after)
	code = s.code(resp, respBody)
	t.Logf("%s: HTTP %d, %s, %q; allocated %.2f MiB", s.name, resp.StatusCode, code, respBody, float64(after.TotalAlloc-before.TotalAlloc)/(1<<20))
	return code, after.TotalAlloc - before.TotalAlloc
}

// A gzip bomb is refused on every surface with bounded memory: without the
// token before a byte of it is read (unauthenticated, 401 on REST), with it
// once inflating passes the limit (resource_exhausted, 413 on REST). What
// the process allocates meanwhile (TotalAlloc: every allocation, the
// client's included, so it bounds the heap's growth) stays under 2 MiB
// without the token and 8 MiB with it (race detector included), 1/16 of
// what the bomb inflates to.
func TestGzipBombOnEverySurface(t *testing.T) {
	protoBomb, jsonBomb := gzipBombs(t)
	t.Logf("gzip bombs: %d and %d bytes compressed, %d MiB inflated, limit %d KiB",
		len(protoBomb), len(jsonBomb), bombSize>>20, bombLimit>>10)
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) {
		c.AuthToken = "s3cret"
		c.MaxRequestBytes = bombLimit
	})
	authorized := http.Header{"Authorization": {"Bearer s3cret"}}
	for _, s := range surfaces {
		body := protoBomb
		wantAnon, wantAuthed := connect.CodeUnauthenticated.String(), connect.CodeResourceExhausted.String()
		if s.name == "rest" {
			body = jsonBomb
			wantAnon, wantAuthed = http.StatusText(http.StatusUnauthorized), http.StatusText(http.StatusRequestEntityTooLarge)
		}
		t.Run(s.name+"/without token", func(t *testing.T) {
			code, allocated := s.post(t, e, body, nil)
			if code != wantAnon {
				t.Errorf("code = %q, want %q", code, wantAnon)
			}
			if limit := uint64(2 << 20); allocated > limit {
				t.Errorf("allocated %.1f MiB refusing an unauthenticated call, want < %d MiB", float64(allocated)/(1<<20), limit>>20)
			}
		})
		t.Run(s.name+"/with token", func(t *testing.T) {
			code, allocated := s.post(t, e, body, authorized)
			if code != wantAuthed {
				t.Errorf("code = %q, want %q", code, wantAuthed)
			}
			if limit := uint64(8 << 20); allocated > limit {
				t.Errorf("allocated %.1f MiB refusing a bomb of %d MiB, want < %d MiB", float64(allocated)/(1<<20), bombSize>>20, limit>>20)
			}
		})
	}
}

// rawPost sends body with contentType to path and returns the answer's
// code read the way s reads it.
func rawPost(t *testing.T, e *env, s surface, body []byte) string {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+s.path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", s.contentType)
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return s.code(resp, b)
}

// Truncated and malformed frames are the client's mistake:
// invalid_argument, not internal, on every enveloped protocol.
func TestMalformedFrames(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	frames := map[string][]byte{
		"prefix cut short":        {0, 0, 0},
		"message cut short":       {0, 0, 0, 0, 100, 0x0a, 0x02},
		"second prefix cut short": {0, 0, 0, 0, 0, 0, 0},
		"end-of-stream flag":      {0x80, 0, 0, 0, 0},
		"reserved flag":           {0x04, 0, 0, 0, 0},
		"compressed, no encoding": {1, 0, 0, 0, 3, 1, 2, 3}, // no Grpc-Encoding header
	}
	streaming := surface{"connect streaming", "/sms.NodeService/WatchNodes", "application/connect+proto", "", nil,
		func(_ *http.Response, b []byte) string {
			_, rest, _ := strings.Cut(string(b), `"code":"`)
			code, _, _ := strings.Cut(rest, `"`)
			return code
		}}
	for _, s := range []surface{surfaces[1], surfaces[2], streaming} {
		for name, body := range frames {
			t.Run(s.name+"/"+name, func(t *testing.T) {
				got := rawPost(t, e, s, body)
				if want := connect.CodeInvalidArgument.String(); got != want {
					t.Errorf("code = %q, want %q", got, want)
				}
			})
		}
	}
}

// Unauthenticated calls are logged at debug level only (a flood of them
// must not fill the log), and a gRPC one makes net/http log nothing (a
// WWW-Authenticate trailer would be "ignoring invalid trailer").
func TestUnauthenticatedCallsLogQuietly(t *testing.T) {
	t.Parallel()
	store := openStore(t, "memory")
	var logs testutil.SyncBuffer
	info := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := httptest.NewUnstartedServer(service.NewHandler(service.Config{
		Nodes: registry.NewNodeRegistry(store), Resources: registry.NewNodeResourceRegistry(store),
		Store: store, Logger: info, AuthToken: "s3cret",
	}))
	srv.Config.ErrorLog = slog.NewLogLogger(info.Handler(), slog.LevelWarn)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	t.Cleanup(srv.Close)
	client := testutil.H2CClient()

	for _, p := range protocols {
		c := smspbconnect.NewNodeServiceClient(client, srv.URL, p.Opts...)
		for range 10 {
			_, err := c.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: nodeA})
			wantCode(t, err, connect.CodeUnauthenticated)
		}
	}
	srv.Close() // flushes the server's connection logs
	if logs.String() != "" {
		t.Errorf("unauthenticated calls logged at info or above:\n%s", logs.String())
	}
}

// A client that sends its headers and then trickles its body is cut off
// once --read-body-timeout passes: over a real TCP connection, the server
// answers (deadline_exceeded, 408 on REST) and closes the connection
// before the body is complete, on Connect and REST alike.
func TestSlowBodyIsCutOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.BodyReadTimeout = 300 * time.Millisecond })
	addr := strings.TrimPrefix(e.url, "http://")
	for _, path := range []string{"/sms.NodeService/RegisterNode", "/api/v1/nodes"} {
		t.Run(path, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			const bodyLen = 1000
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: sms\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", path, bodyLen)
			// Trickle one byte every 50 ms from another goroutine, until
			// the server hangs up; all of it would take 50 s.
			trickled := make(chan int)
			go func() {
				n := 1
				for ; n < bodyLen; n++ {
					time.Sleep(50 * time.Millisecond)
					if _, err := conn.Write([]byte(" ")); err != nil {
						break
					}
				}
				trickled <- n
			}()
			conn.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hung test, not an assertion
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no answer while trickling the body: %v", err)
			}
			body, _ := io.ReadAll(resp.Body) // ends when the server closes
			t.Logf("answer: %s %q", resp.Status, body)
			if !resp.Close {
				t.Errorf("answer does not close the connection (Connection: close missing)")
			}
			if want := http.StatusRequestTimeout; path == "/api/v1/nodes" && resp.StatusCode != want {
				t.Errorf("REST status %d, want %d", resp.StatusCode, want)
			}
			if want := `"code":"deadline_exceeded"`; path != "/api/v1/nodes" && !strings.Contains(string(body), want) {
				t.Errorf("Connect answer %q, want %s", body, want)
			}
			if n := <-trickled; n >= bodyLen {
				t.Errorf("the client sent its whole body (%d bytes): the server never hung up", n)
			}
		})
	}
}

// Without the token, a call is unauthenticated whatever its body or query
// holds: the token is checked before either is parsed.
func TestAuthBeforeDecode(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.AuthToken = "s3cret" })
	for _, tt := range []struct {
		method, path, contentType, body string
		want                            int
	}{
		{"POST", "/sms.NodeService/GetNode", "application/json", "{not json", http.StatusUnauthorized},
		{"POST", "/sms.NodeService/GetNode", "application/proto", "\xff\xff\xff", http.StatusUnauthorized},
		{"GET", "/api/v1/nodes?page_size=abc", "", "", http.StatusUnauthorized},
		{"POST", "/api/v1/nodes", "application/json", "{not json", http.StatusUnauthorized},
	} {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, e.url+tt.path, strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if tt.contentType != "" {
			req.Header.Set("Content-Type", tt.contentType)
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s %q without a token: HTTP %d, want %d", tt.method, tt.path, tt.body, resp.StatusCode, tt.want)
		}
		if got := resp.Header.Get("WWW-Authenticate"); got == "" {
			t.Errorf("%s %s: no WWW-Authenticate header", tt.method, tt.path)
		}
	}
}

// Over HTTP/2 the body deadline is the stream's: a gRPC call whose body
// trickles fails with deadline_exceeded and its stream is reset, while the
// connection keeps serving other calls.
func TestSlowBodyIsCutOffOnHTTP2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.BodyReadTimeout = 300 * time.Millisecond })
	pr, pw := io.Pipe()
	trickled := make(chan int, 1)
	go func() {
		// A 1,000-byte message, announced, then one byte every 50 ms.
		n := 0
		if _, err := pw.Write([]byte{0, 0, 0, 3, 0xe8}); err == nil {
			for ; n < 1000; n++ {
				time.Sleep(50 * time.Millisecond)
				if _, err := pw.Write([]byte{0}); err != nil {
					break
				}
			}
		}
		trickled <- n
	}()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, e.url+"/sms.NodeService/RegisterNode", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.ReadAll(resp.Body) // to the answer's end; the body is still being sent
	if got, want := grpcStatus(resp, nil), connect.CodeDeadlineExceeded.String(); got != want {
		t.Errorf("code = %q, want %q", got, want)
	}
	// The server resets the stream, which stops the client's upload (the
	// response body is left open until then: closing it would reset the
	// stream from the client's side). The wait is a hang guard.
	select {
	case n := <-trickled:
		if n >= 1000 {
			t.Errorf("the client sent its whole body (%d bytes): the stream was never cut", n)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the client was still sending its body 20 s after the answer: the stream was not reset")
	}
	resp.Body.Close()
	pr.CloseWithError(errors.New("test done"))
	// The connection still serves.
	_, err = newClient(e, protocols[1]).GetClusterStats(t.Context(), &smspb.GetClusterStatsRequest{})
	if err != nil {
		t.Errorf("GetClusterStats after a cut stream: %v", err)
	}
}
