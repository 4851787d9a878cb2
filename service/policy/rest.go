package policy

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"connectrpc.com/connect"
)

// readREST reads r's body, inflating it if it is gzip, into memory, and
// puts it back as a plain body: at most MaxRequestBytes as sent and as
// inflated (inflation stops one byte past the limit), so whatever handler
// serves the route never sees more. Errors: resource_exhausted (413) over
// the limit, unimplemented (415) for a content coding other than gzip,
// invalid_argument (400) for a corrupt gzip stream.
func (p *Policy) readREST(r *http.Request) error {
	if r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	var src io.Reader = io.LimitReader(r.Body, p.maxBytes+1)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body: gzip: %w", err))
		}
		src = zr
	default:
		return connect.NewError(connect.CodeUnimplemented,
			fmt.Errorf("request body: content coding %q is not supported (use gzip or none)", enc))
	}
	body, err := io.ReadAll(io.LimitReader(src, p.maxBytes+1))
	switch {
	case int64(len(body)) > p.maxBytes:
		return errTooLarge(p.maxBytes)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader):
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("request body: %w", err))
	case err != nil:
		if ce := new(connect.Error); errors.As(err, &ce) {
			return ce // the body's deadline passed
		}
		// The client went away.
		return connect.NewError(connect.CodeCanceled, fmt.Errorf("read request body: %w", err))
	}
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	r.Header.Del("Content-Encoding")
	r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

// restStatus is the HTTP status of a REST call the policy rejects with
// code.
func restStatus(code connect.Code) int {
	switch code {
	case connect.CodeUnauthenticated:
		return http.StatusUnauthorized
	case connect.CodeResourceExhausted:
		return http.StatusRequestEntityTooLarge
	case connect.CodeUnimplemented:
		return http.StatusUnsupportedMediaType
	case connect.CodeCanceled, connect.CodeDeadlineExceeded:
		return http.StatusRequestTimeout
	default:
		return http.StatusBadRequest
	}
}

// writeRESTError answers a REST call with status and the gateway's error
// body, {"success": false, "error": "..."}, or, for SPEAR's register
// (POST /api/v1/nodes), which answers its errors under "message" like its
// successes, {"success": false, "message": "..."}.
func writeRESTError(w http.ResponseWriter, r *http.Request, status int, err error) {
	msg := err.Error()
	var ce *connect.Error
	if errors.As(err, &ce) {
		msg = ce.Message()
	}
	type envelope struct {
		Success bool   `json:"success"`
		Error   string `json:"error,omitempty"`
		Message string `json:"message,omitempty"`
	}
	e := envelope{Error: msg}
	if r.Method == http.MethodPost && strings.TrimSuffix(r.URL.Path, "/") == RESTPrefix+"nodes" {
		e = envelope{Message: msg}
	}
	body, _ := json.Marshal(e)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}
