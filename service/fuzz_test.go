package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
)

// fuzzPaths are the paths FuzzHTTP sends to. The server streams that never
// end on their own (WatchNodes, health Watch) are left out: a valid request
// to them would keep the fuzzer waiting.
var fuzzPaths = []string{
	"/sms.NodeService/RegisterNode",
	"/sms.NodeService/UpdateNode",
	"/sms.NodeService/DeleteNode",
	"/sms.NodeService/Heartbeat",
	"/sms.NodeService/ListNodes",
	"/sms.NodeService/GetNode",
	"/sms.NodeService/UpdateNodeResource",
	"/sms.NodeService/GetNodeResource",
	"/sms.NodeService/ListNodeResources",
	"/sms.NodeService/GetNodeWithResource",
	"/sms.NodeService/GetClusterStats",
	"/sms.NodeService/NoSuchMethod",
	"/grpc.health.v1.Health/Check",
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	"/healthz",
	"/",
	"/api/v1/nodes",
	"/api/v1/nodes/6f1c1b8e-3f4a-4c2e-9b7d-0a1b2c3d4e5f",
	"/api/v1/nodes/6f1c1b8e-3f4a-4c2e-9b7d-0a1b2c3d4e5f/heartbeat",
	"/api/v1/nodes/6f1c1b8e-3f4a-4c2e-9b7d-0a1b2c3d4e5f/resource",
	"/api/v1/resources",
}

// fuzzToken is the bearer token of FuzzHTTP's server; seeds carry it, so the
// fuzzer reaches the handlers as well as the authentication check.
const fuzzToken = "fuzz-token"

// FuzzHTTP sends arbitrary bodies with arbitrary content types, encodings,
// methods and Authorization headers to every path, REST routes included,
// through the request policy: the answer must be a
// clean client error or a success, never a panic, a 5xx, or (for gRPC) an
// internal or unknown status. Seeds: testdata/fuzz/FuzzHTTP.
func FuzzHTTP(f *testing.F) {
	f.Add(uint8(0), "POST", "application/json", "", "Bearer "+fuzzToken, []byte(`{"node":{"ip_address":"10.0.0.1","port":1}}`))
	f.Add(uint8(5), "POST", "application/proto", "gzip", "Bearer "+fuzzToken, []byte("\x1f\x8b\x08\x00"))
	f.Add(uint8(4), "POST", "application/grpc", "", "Bearer "+fuzzToken, []byte("\x00\x00\x00\x00\x00"))
	f.Add(uint8(4), "POST", "application/grpc-web+proto", "", "Bearer "+fuzzToken, []byte("\x00\x00\x00\x00\x02\x08\x01"))
	f.Add(uint8(12), "POST", "application/grpc+json", "", "", []byte("\x00\x00\x00\x00\x02{}"))
	f.Add(uint8(15), "GET", "", "", "", []byte(nil))
	f.Add(uint8(1), "POST", "application/json; charset=latin1", "br", "bearer x", []byte("{"))

	store := memory.New()
	handler := service.NewHandler(service.Config{
		Nodes:     registry.NewNodeRegistry(store),
		Resources: registry.NewNodeResourceRegistry(store),
		Store:     store,
		AuthToken: fuzzToken,
	})
	f.Fuzz(func(t *testing.T, pathIdx uint8, method, contentType, encoding, auth string, body []byte) {
		path := fuzzPaths[int(pathIdx)%len(fuzzPaths)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://sms"+path, bytes.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		// HTTP/2, as gRPC requires; the other protocols accept it too.
		req.Proto, req.ProtoMajor, req.ProtoMinor = "HTTP/2.0", 2, 0
		for _, h := range []struct{ name, value string }{
			{"Content-Type", contentType}, {"Content-Encoding", encoding}, {"Grpc-Encoding", encoding},
			{"Connect-Content-Encoding", encoding}, {"Authorization", auth},
		} {
			if h.value != "" && validHeaderValue(h.value) {
				req.Header.Set(h.name, h.value)
			}
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		resp := rec.Result()
		// 501 is the Connect protocol's prescribed answer to an unsupported
		// Content-Encoding (code unimplemented): the client's mistake, not a
		// server failure. Every other 5xx is.
		unsupported := resp.StatusCode == http.StatusNotImplemented && strings.Contains(rec.Body.String(), `"code":"unimplemented"`)
		if resp.StatusCode >= 500 && !unsupported {
			t.Fatalf("%s %s (%q, %q): HTTP %d %q", method, path, contentType, encoding, resp.StatusCode, rec.Body.String())
		}
		status := resp.Header.Get("Grpc-Status") + resp.Trailer.Get("Grpc-Status")
		if strings.HasPrefix(contentType, "application/grpc-web") {
			if _, rest, ok := strings.Cut(rec.Body.String(), "grpc-status:"); ok {
				status, _, _ = strings.Cut(strings.TrimSpace(rest), "\r\n")
			}
		}
		// Malformed gRPC frames (truncated, bad flags) are invalid_argument
		// too (the policy's frame check), so internal and unknown are
		// always failures.
		message := resp.Header.Get("Grpc-Message") + resp.Trailer.Get("Grpc-Message")
		if n, err := strconv.Atoi(strings.TrimSpace(status)); err == nil && (n == 2 || n == 13) {
			t.Fatalf("%s %s (%q): grpc-status %d (%q, body %q)", method, path, contentType, n, message, rec.Body.String())
		}
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.StatusCode >= 400 {
			var e struct{ Code string }
			if json.Unmarshal(rec.Body.Bytes(), &e) == nil && (e.Code == "internal" || e.Code == "unknown") {
				t.Fatalf("%s %s (%q): Connect error %q", method, path, contentType, rec.Body.String())
			}
		}
	})
}

// validHeaderValue reports whether net/http would send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
