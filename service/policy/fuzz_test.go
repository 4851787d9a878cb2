package policy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// FuzzFrames reads arbitrary bodies through frameReader: every byte comes
// out unchanged, and the read ends with io.EOF or an invalid_argument
// error, never another error or a panic.
func FuzzFrames(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 8, 1}, false)
	f.Add([]byte{1, 0, 0, 0, 1, 0}, true)
	f.Add([]byte{0, 0, 0}, false)
	f.Add([]byte{0x80, 0, 0, 0, 0}, false)
	f.Fuzz(func(t *testing.T, body []byte, compressed bool) {
		r := &frameReader{body: io.NopCloser(bytes.NewReader(body)), compressed: compressed}
		got, err := io.ReadAll(r)
		if !bytes.HasPrefix(body, got) {
			t.Fatalf("read %x, not a prefix of the body %x", got, body)
		}
		if err == nil && len(got) != len(body) {
			t.Fatalf("read %d of %d bytes without an error", len(got), len(body))
		}
		if err != nil && connect.CodeOf(err) != connect.CodeInvalidArgument {
			t.Fatalf("error %v (code %v), want invalid_argument", err, connect.CodeOf(err))
		}
	})
}

// FuzzPolicy sends arbitrary requests through the policy (token, small
// limit, CORS for one origin) to a handler that reads the whole body: the
// answer is never a 5xx, a protected call without the token never reaches
// the handler, and the handler never reads more than the limit allows.
func FuzzPolicy(f *testing.F) {
	const limit = 64
	f.Add("POST", "/sms.NodeService/GetNode", "application/grpc", "", "Bearer tok", "", []byte{0, 0, 0, 0, 1, 0})
	f.Add("POST", "/api/v1/nodes", "application/json", "gzip", "Bearer tok", "", []byte("\x1f\x8b\x08\x00"))
	f.Add("OPTIONS", "/api/v1/nodes", "", "", "", "https://a.example", []byte(nil))
	f.Add("PUT", "/api/v1/nodes/x", "application/json", "br", "bearer tok", "https://b.example", []byte("{}"))
	f.Add("POST", "/grpc.health.v1.Health/Check", "application/proto", "", "", "", bytes.Repeat([]byte{1}, 200))

	p := New(Config{AuthToken: "tok", MaxRequestBytes: limit, CORSAllowOrigins: []string{"https://a.example"}})
	var reached bool
	var read int
	h := p.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached = true
		n, err := io.Copy(io.Discard, r.Body)
		read = int(n)
		if err != nil {
			var ce *connect.Error
			var mb *http.MaxBytesError
			if !errors.As(err, &ce) && !errors.As(err, &mb) {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	f.Fuzz(func(t *testing.T, method, path, contentType, encoding, auth, origin string, body []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequestWithContext(ctx, method, "http://sms"+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		for _, kv := range [][2]string{{"Content-Type", contentType}, {"Content-Encoding", encoding},
			{"Grpc-Encoding", encoding}, {"Authorization", auth}, {"Origin", origin}} {
			if kv[1] != "" && validHeader(kv[1]) {
				req.Header.Set(kv[0], kv[1])
			}
		}
		if method == http.MethodOptions {
			req.Header.Set("Access-Control-Request-Method", "POST")
		}
		reached, read = false, 0
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusNotImplemented {
			t.Fatalf("%s %s: HTTP %d %q", method, path, rec.Code, rec.Body.String())
		}
		protected := classify(req) != open
		if reached && protected && !strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(strings.ToLower(auth), "bearer ")), "tok") {
			t.Fatalf("%s %s with Authorization %q reached the handler", method, path, auth)
		}
		if read > limit+envelopePrefix {
			t.Fatalf("%s %s: the handler read %d bytes, limit %d", method, path, read, limit)
		}
	})
}

func validHeader(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
