package metrics

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// A call the interceptor never sees (the policy rejected it, or connect-go
// could not decode its request) is counted by CountRejected instead, from
// its answer. The interceptor marks the calls it counts, so none is counted
// twice.

type callKey struct{}

// call is what CountRejected and the interceptor share about one request.
type call struct {
	counted bool         // the interceptor counted it
	code    connect.Code // set by Rejected; 0 means "read it off the answer"
}

func markCounted(ctx context.Context) {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.counted = true
	}
}

// Rejected records that the call of ctx was rejected with code before any
// handler ran, for CountRejected. Without CountRejected it does nothing.
func Rejected(ctx context.Context, code connect.Code) {
	if c, ok := ctx.Value(callKey{}).(*call); ok {
		c.code = code
	}
}

// knownProcedure reports whether name ("/pkg.Service/Method") is a method
// of a service linked into the binary.
func knownProcedure(name string) bool {
	service, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
	if !ok || !strings.HasPrefix(name, "/") {
		return false
	}
	full := protoreflect.FullName(service + "." + method)
	if !full.IsValid() {
		return false
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(full)
	if err != nil {
		return false
	}
	_, ok = d.(protoreflect.MethodDescriptor)
	return ok
}

// AuthFailed counts one call rejected for a missing or wrong token.
func (m *Metrics) AuthFailed() { m.authFailures.Inc() }

// CountRejected wraps next so that every call that reaches it is counted in
// sms_rpc_requests_total, by procedure (procedure(r); paths that are no
// known procedure are counted as "unknown", so that an attacker cannot mint
// label values) and code: the calls the interceptor counts, and the ones it
// never sees, whose code is the one given to Rejected or else the one in
// the answer (grpc-status, the Connect error's code, or the HTTP status).
func (m *Metrics) CountRejected(next http.Handler, procedure func(*http.Request) string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		c := &call{}
		rec := &recorder{ResponseWriter: w, call: c}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), callKey{}, c)))
		if c.counted {
			return
		}
		name := procedure(r)
		code := c.code
		if code == 0 {
			code = rec.code(name == "rest")
		}
		if name != "rest" && !knownProcedure(name) {
			name = "unknown"
		}
		label := "ok"
		if code != 0 {
			label = code.String()
		}
		m.observe(name, label, time.Since(start))
	})
}

// recorder keeps what CountRejected needs of an answer the interceptor did
// not see: its status, and the start of its body (where Connect and
// gRPC-web errors say their code).
type recorder struct {
	http.ResponseWriter
	call   *call
	status int
	head   []byte
}

const recordedBytes = 512

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if !r.call.counted && len(r.head) < recordedBytes {
		r.head = append(r.head, p[:min(len(p), recordedBytes-len(r.head))]...)
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(r.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var (
	connectCode = regexp.MustCompile(`"code"\s*:\s*"([a-z_]+)"`)
	webStatus   = regexp.MustCompile(`(?i)grpc-status:\s*([0-9]+)`)
)

// code reads the answer's code: grpc-status (header, trailer, or gRPC-web
// trailer frame), else a Connect error body's "code", else the HTTP status
// (of a REST answer if rest).
func (r *recorder) code(rest bool) connect.Code {
	h := r.Header()
	for _, v := range []string{h.Get("Grpc-Status"), h.Get(http.TrailerPrefix + "Grpc-Status")} {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			return grpcCode(n)
		}
	}
	if m := webStatus.FindSubmatch(r.head); m != nil {
		n, _ := strconv.Atoi(string(m[1]))
		return grpcCode(n)
	}
	if m := connectCode.FindSubmatch(r.head); m != nil {
		var c connect.Code
		if c.UnmarshalText(m[1]) == nil {
			return c
		}
	}
	if rest && r.status == http.StatusNotFound {
		return connect.CodeNotFound
	}
	return httpCode(r.status)
}

// grpcCode is the Code of grpc-status n (0 for ok).
func grpcCode(n int) connect.Code {
	if n < 0 || n > int(connect.CodeUnauthenticated) {
		return connect.CodeUnknown
	}
	return connect.Code(n)
}

// httpCode maps the HTTP status of an answer that carries no code (a REST
// answer, connect-go refusing a content type, the mux not knowing a path)
// to the nearest code, as gRPC clients do (404 is unimplemented); 0 for
// success.
func httpCode(status int) connect.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
		return connect.CodeInvalidArgument
	case http.StatusUnauthorized:
		return connect.CodeUnauthenticated
	case http.StatusForbidden:
		return connect.CodePermissionDenied
	case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotImplemented:
		return connect.CodeUnimplemented
	case http.StatusRequestTimeout:
		return connect.CodeDeadlineExceeded
	case http.StatusRequestEntityTooLarge, http.StatusTooManyRequests:
		return connect.CodeResourceExhausted
	case http.StatusServiceUnavailable:
		return connect.CodeUnavailable
	}
	if status >= 200 && status < 300 {
		return 0
	}
	return connect.CodeUnknown
}
