package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/memory"
)

// gatewayFuzzRoutes are the gateway routes FuzzGateway sends to; {id} is a
// uuid the fuzzer chooses (or mangles).
var gatewayFuzzRoutes = []string{
	"/api/v1/nodes",
	"/api/v1/nodes/{id}",
	"/api/v1/nodes/{id}/heartbeat",
	"/api/v1/nodes/{id}/resource",
	"/api/v1/nodes/{id}/with-resource",
	"/api/v1/resources",
	"/api/v1/placement/invocations/place",
	"/api/v1/placement/invocations/report-outcome",
	"/api/v1/{id}",
}

// FuzzGateway sends arbitrary methods, path uuids, query strings, content
// types and bodies to SPEAR's HTTP gateway: every answer must be JSON, never
// a panic or a 5xx, and every error must be SPEAR's {"success": false, ...}.
func FuzzGateway(f *testing.F) {
	f.Add(uint8(0), "POST", "", "", "application/json", []byte(`{"ip_address":"10.0.0.1","port":1,"metadata":{"a":"b"}}`))
	f.Add(uint8(1), "PUT", "urn:uuid:00000000-0000-4000-8000-000000000001", "", "application/json", []byte(`{"port":70000,"status":"ONLINE"}`))
	f.Add(uint8(3), "PUT", "00000000-0000-4000-8000-000000000001", "", "application/json; charset=utf-8", []byte(`{"used_disk_bytes":18446744073709551616,"cpu_usage_percent":1e400}`))
	f.Add(uint8(5), "GET", "", "node_uuids=a,,b&x=%zz", "", []byte(nil))
	f.Add(uint8(6), "POST", "", "", "application/json", []byte(`{"request_id":"r","task_id":"t","max_candidates":4294967296,"labels":{"":""}}`))
	f.Add(uint8(7), "POST", "", "", "application/json", []byte(`{"decision_id":"d","request_id":"r","task_id":"t","node_uuid":"{00000000-0000-4000-8000-000000000001}","outcome_class":-1}`))
	f.Add(uint8(2), "POST", "%7B00000000-0000-4000-8000-000000000001%7D", "", "text/plain", []byte("{}"))

	store := memory.New()
	view := registry.NewView(store)
	f.Cleanup(view.Close)
	nodes := view.Nodes()
	if _, err := nodes.Register(context.Background(), registry.Node{UUID: "00000000-0000-4000-8000-000000000001", IPAddress: "10.0.0.1", Port: 1}); err != nil {
		f.Fatal(err)
	}
	handler := service.NewHandler(service.Config{
		Nodes:           nodes,
		Resources:       view.Resources(),
		Store:           store,
		MaxRequestBytes: 64 << 10,
	})
	f.Fuzz(func(t *testing.T, route uint8, method, id, query, contentType string, body []byte) {
		path := strings.ReplaceAll(gatewayFuzzRoutes[int(route)%len(gatewayFuzzRoutes)], "{id}", id)
		if query != "" {
			path += "?" + query
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, "http://sms"+path, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(req.URL.Path, "/api/") {
			return // not a request a client could send to the gateway
		}
		if contentType != "" && validHeaderValue(contentType) {
			req.Header.Set("Content-Type", contentType)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s (%q): HTTP %d %q", method, path, contentType, rec.Code, rec.Body.String())
		}
		if rec.Code == http.StatusMovedPermanently || rec.Code == http.StatusTemporaryRedirect || rec.Code == http.StatusPermanentRedirect {
			return // net/http's path cleaning, before any gateway code
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("%s %s: HTTP %d with Content-Type %q, body %q", method, path, rec.Code, ct, rec.Body.String())
		}
		if method == http.MethodHead {
			return
		}
		var answer map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("%s %s: HTTP %d body %q is not a JSON object", method, path, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && answer["success"] != false {
			t.Fatalf("%s %s: HTTP %d body %q, want success false", method, path, rec.Code, rec.Body.String())
		}
	})
}
