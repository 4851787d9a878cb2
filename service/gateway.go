package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
)

// The SPEAR HTTP gateway: SPEAR's own routes under /api/v1/ with its JSON
// shapes (snake_case keys, int64s as JSON numbers, {"success": ...}
// envelopes) and statuses, written as plain handlers over the registries
// rather than transcoded from protobuf. gateway_nodes.go and
// gateway_placement.go hold the routes; this file holds what every route
// shares: method dispatch, the request checks (token, query parameters,
// Content-Type, size) and the error answers.

// gateway serves the SPEAR HTTP routes.
type gateway struct {
	nodes     *registry.NodeRegistry
	resources *registry.NodeResourceRegistry
	placer    *placement.Placer
	logger    *slog.Logger
	maxBytes  int64
	// checkToken, if not nil, admits a request by its headers (the bearer
	// token), before any byte of the body is read.
	checkToken func(ctx context.Context, procedure string, h http.Header) error
	metrics    *metrics.Metrics // nil: not counted
}

// routes registers every /api/v1/ route on mux, and a JSON 404 for any other
// path under /api/.
func (g *gateway) routes(mux *http.ServeMux) {
	g.route(mux, "/api/v1/nodes", methods{
		http.MethodGet:  g.listNodes,
		http.MethodPost: g.registerNode,
	})
	g.route(mux, "/api/v1/nodes/{uuid}", methods{
		http.MethodGet:    g.getNode,
		http.MethodPut:    g.updateNode,
		http.MethodDelete: g.deleteNode,
	})
	g.route(mux, "/api/v1/nodes/{uuid}/heartbeat", methods{http.MethodPost: g.heartbeat})
	g.route(mux, "/api/v1/nodes/{uuid}/resource", methods{
		http.MethodGet: g.getResource,
		http.MethodPut: g.putResource,
	})
	g.route(mux, "/api/v1/nodes/{uuid}/with-resource", methods{http.MethodGet: g.getNodeWithResource})
	g.route(mux, "/api/v1/resources", methods{http.MethodGet: g.listResources})
	g.route(mux, "/api/v1/placement/invocations/place", methods{http.MethodPost: g.place})
	g.route(mux, "/api/v1/placement/invocations/report-outcome", methods{http.MethodPost: g.reportOutcome})
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		w = &statusWriter{ResponseWriter: w}
		defer g.observe(w, r, "unmatched")()
		writeError(w, http.StatusNotFound, "error", "no route for "+r.Method+" "+r.URL.Path)
	})
}

// observe starts timing a request of route; the function it returns
// records it, with the status written to w.
func (g *gateway) observe(w http.ResponseWriter, r *http.Request, route string) func() {
	if g.metrics == nil {
		return func() {}
	}
	start := time.Now()
	return func() {
		status := 0
		if sw, ok := w.(*statusWriter); ok {
			status = sw.status
		}
		g.metrics.ObserveHTTP(metricMethod(r.Method), route, status, time.Since(start))
	}
}

// metricMethod is the method label of a request: a client cannot grow the
// metrics with made-up methods.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

// statusWriter remembers the status written, for metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// gatewayFunc handles one method of one route. It returns the status and
// the value to answer with as JSON, or an error, which writeFailure turns
// into a status and a JSON error body.
type gatewayFunc func(r *http.Request) (int, any, error)

type methods map[string]gatewayFunc

// route serves pattern (a path without a method) with one handler per
// method; other methods get a JSON 405 with an Allow header. Every route
// checks the token first, before anything of the body is read.
func (g *gateway) route(mux *http.ServeMux, pattern string, m methods) {
	if get, ok := m[http.MethodGet]; ok {
		m[http.MethodHead] = get
	}
	allow := make([]string, 0, len(m))
	for method := range m {
		allow = append(allow, method)
	}
	slices.Sort(allow)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w = &statusWriter{ResponseWriter: w}
		defer g.observe(w, r, pattern)()
		h, ok := m[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, "error",
				fmt.Sprintf("method %s not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		// A SPEAR register answers its errors under "message", like its
		// successes; every other route under "error".
		key := "error"
		if pattern == "/api/v1/nodes" && r.Method == http.MethodPost {
			key = "message"
		}
		if g.checkToken != nil {
			if err := g.checkToken(r.Context(), r.Method+" "+pattern, r.Header); err != nil {
				msg := err.Error()
				if ce := new(connect.Error); errors.As(err, &ce) {
					msg = ce.Message()
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="sms"`)
				writeError(w, http.StatusUnauthorized, key, msg)
				return
			}
		}
		status, body, err := h(r)
		if err != nil {
			g.writeFailure(w, r, key, err)
			return
		}
		writeJSON(w, status, body)
	})
}

// requestError is an error answered with its own status and text.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// errNodeNotFound is SPEAR's answer for an absent node.
const errNodeNotFound = "Node not found"

// writeFailure answers err: a *requestError with its status; anything else
// through connectError, the one error table, and the Connect protocol's
// code-to-HTTP-status mapping (invalid_argument 400, not_found 404,
// unavailable 503, ...). A not_found is SPEAR's "Node not found".
func (g *gateway) writeFailure(w http.ResponseWriter, r *http.Request, key string, err error) {
	if re := (*requestError)(nil); errors.As(err, &re) {
		writeError(w, re.status, key, re.msg)
		return
	}
	ce := connectError(r.Context(), g.logger, err).(*connect.Error)
	msg := ce.Message()
	if ce.Code() == connect.CodeNotFound {
		msg = errNodeNotFound
	}
	writeError(w, httpStatus(ce.Code()), key, msg)
}

// httpStatus is the Connect protocol's HTTP status for code.
func httpStatus(code connect.Code) int {
	switch code {
	case connect.CodeCanceled:
		return 499
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeOutOfRange:
		return http.StatusBadRequest
	case connect.CodeDeadlineExceeded:
		return http.StatusGatewayTimeout
	case connect.CodeNotFound:
		return http.StatusNotFound
	case connect.CodeAlreadyExists, connect.CodeAborted:
		return http.StatusConflict
	case connect.CodePermissionDenied:
		return http.StatusForbidden
	case connect.CodeResourceExhausted:
		return http.StatusTooManyRequests
	case connect.CodeUnimplemented:
		return http.StatusNotImplemented
	case connect.CodeUnavailable:
		return http.StatusServiceUnavailable
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// writeError answers {"success": false, key: msg}, key being "error" or
// "message".
func writeError(w http.ResponseWriter, status int, key, msg string) {
	if key == "message" {
		writeJSON(w, status, okJSON{Success: false, Message: msg})
		return
	}
	writeJSON(w, status, struct {
		Success bool   `json:"success"`
		Error   string `json:"error"`
	}{false, msg})
}

// writeJSON answers v as JSON, as SPEAR writes it: no HTML escaping, no
// trailing newline.
func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Every answer is built from strings, integers and finite floats.
		panic(fmt.Sprintf("gateway: encode %T: %v", v, err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// query checks r's query string: it must parse, every parameter must be one
// of allowed and appear at most once. It returns the values.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query string: %v", err)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	slices.Sort(names) // of several bad parameters, always name the same one
	for _, name := range names {
		if !slices.Contains(allowed, name) {
			if len(allowed) == 0 {
				return nil, badRequest("unknown query parameter %q; this route takes none", clip(name))
			}
			return nil, badRequest("unknown query parameter %q; this route takes %s", clip(name), strings.Join(allowed, ", "))
		}
		if len(q[name]) > 1 {
			return nil, badRequest("query parameter %q given %d times; give it once", name, len(q[name]))
		}
	}
	return q, nil
}

// decodeBody reads r's JSON body into v. The body must be application/json
// (415 otherwise: a form or text body is never read as JSON, so a browser
// cannot send a "simple" cross-origin write) and not compressed (415); a
// request without a body and
// without a Content-Type counts as {}. A body larger than the limit is 413;
// one that is not JSON is 400; one whose values have the wrong types is 422,
// as SPEAR answers.
func (g *gateway) decodeBody(r *http.Request, v any) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return json.Unmarshal([]byte("{}"), v)
	}
	// The request policy (service/policy) inflates gzip bodies within the
	// size limit and drops their Content-Encoding, and refuses other
	// codings, before this runs; a coding that still arrives here (the
	// gateway served without the policy) is refused rather than inflated.
	if ce := r.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return &requestError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Encoding %q is not supported; send the JSON body uncompressed", clip(ce))}
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return &requestError{status: http.StatusUnsupportedMediaType,
			msg: fmt.Sprintf("Content-Type must be application/json, got %q", clip(ct))}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.maxBytes+1))
	if err != nil {
		return fmt.Errorf("read request body: %w", err)
	}
	if int64(len(body)) > g.maxBytes {
		return &requestError{status: http.StatusRequestEntityTooLarge,
			msg: fmt.Sprintf("request body larger than %d bytes", g.maxBytes)}
	}
	if !json.Valid(body) {
		return badRequest("request body is not valid JSON")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "request body"
			}
			return &requestError{status: http.StatusUnprocessableEntity,
				msg: fmt.Sprintf("%s: want a JSON %s, got %s", field, jsonType(te.Type.Kind().String()), te.Value)}
		}
		return &requestError{status: http.StatusUnprocessableEntity, msg: "request body: " + err.Error()}
	}
	return nil
}

// jsonType names the JSON type a Go kind is decoded from.
func jsonType(kind string) string {
	switch {
	case strings.HasPrefix(kind, "int"), strings.HasPrefix(kind, "uint"):
		return "integer"
	case strings.HasPrefix(kind, "float"):
		return "number"
	case kind == "map", kind == "struct":
		return "object"
	case kind == "slice":
		return "array"
	}
	return kind
}

// missing is SPEAR's 422 for a required field that is absent.
func missing(field string) error {
	return &requestError{status: http.StatusUnprocessableEntity, msg: field + ": required"}
}

// clip shortens user input quoted in error messages.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
