package service_test

import (
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"

	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// gatewayCall sends method path (with a JSON body, if not empty) and
// returns the HTTP status and the decoded JSON body.
func gatewayCall(t *testing.T, url, method, path, body string, header http.Header) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	var got map[string]any
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("%s %s: status %d, body %q is not a JSON object: %v", method, path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, got
}

// wantStatus fails the test unless status is want.
func wantStatus(t *testing.T, what string, status, want int, body map[string]any) {
	t.Helper()
	if status != want {
		t.Fatalf("%s: status %d, want %d (body %v)", what, status, want, body)
	}
}

// TestGatewaySPEARCases runs the checks of SPEAR's own HTTP tests, as a
// SPEAR client would make them (decoding the JSON, not comparing bytes), on
// every backend.
func TestGatewaySPEARCases(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, backend), connectHTTP, nil)

			status, body := gatewayCall(t, e.url, "POST", "/api/v1/nodes",
				`{"ip_address":"192.168.1.100","port":8080,"metadata":{"region":"us-west-1","zone":"a"}}`, nil)
			wantStatus(t, "register", status, http.StatusCreated, body)
			id, _ := body["node_uuid"].(string)
			if body["success"] != true || len(id) != 36 {
				t.Fatalf("register = %v, want success with a node_uuid", body)
			}

			status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes", "", nil)
			wantStatus(t, "list", status, http.StatusOK, body)
			found := false
			for _, n := range body["nodes"].([]any) {
				found = found || n.(map[string]any)["uuid"] == id
			}
			if !found {
				t.Fatalf("list = %v, want it to contain %s", body, id)
			}

			status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/"+id, "", nil)
			wantStatus(t, "get", status, http.StatusOK, body)
			node := body["node"].(map[string]any)
			if node["ip_address"] != "192.168.1.100" || node["port"] != 8080.0 {
				t.Fatalf("get = %v, want the registered node", body)
			}

			status, body = gatewayCall(t, e.url, "PUT", "/api/v1/nodes/"+id, `{"port":9090}`, nil)
			wantStatus(t, "partial update", status, http.StatusOK, body)
			_, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/"+id, "", nil)
			node = body["node"].(map[string]any)
			md := node["metadata"].(map[string]any)
			if node["port"] != 9090.0 || node["ip_address"] != "192.168.1.100" || md["region"] != "us-west-1" {
				t.Fatalf("after a partial update = %v, want port 9090 and the rest kept", node)
			}

			status, body = gatewayCall(t, e.url, "POST", "/api/v1/nodes/"+id+"/heartbeat", `{"health_info":{"cpu":"ok"}}`, nil)
			wantStatus(t, "heartbeat", status, http.StatusOK, body)

			const cpu, load = 45.123456789, 1.000000001 // float32 would lose both
			status, body = gatewayCall(t, e.url, "PUT", "/api/v1/nodes/"+id+"/resource",
				`{"cpu_usage_percent":45.123456789,"memory_usage_percent":60.5,"total_memory_bytes":8589934592,"load_average_1m":1.000000001}`, nil)
			wantStatus(t, "put resource", status, http.StatusOK, body)
			status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/"+id+"/resource", "", nil)
			wantStatus(t, "get resource", status, http.StatusOK, body)
			if got := body["cpu_usage_percent"].(float64); math.Abs(got-cpu) > 1e-12 {
				t.Errorf("cpu_usage_percent = %v, want %v", got, cpu)
			}
			if got := body["load_average_1m"].(float64); math.Abs(got-load) > 1e-12 {
				t.Errorf("load_average_1m = %v, want %v", got, load)
			}
			if body["total_memory_bytes"] != 8589934592.0 || body["node_uuid"] != id {
				t.Errorf("resource = %v", body)
			}

			status, body = gatewayCall(t, e.url, "DELETE", "/api/v1/nodes/"+id, "", nil)
			wantStatus(t, "delete", status, http.StatusOK, body)
			status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/"+id, "", nil)
			wantStatus(t, "get after delete", status, http.StatusNotFound, body)

			// SPEAR answers 500 here; SMS 400.
			status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/invalid-uuid", "", nil)
			wantStatus(t, "non-uuid path", status, http.StatusBadRequest, body)
			if body["success"] != false || body["error"] == "" {
				t.Errorf("non-uuid path: %v, want success false and an error", body)
			}
		})
	}
}

func TestGatewayNeedsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.AuthToken = "s3cret" })

	status, body := gatewayCall(t, e.url, "GET", "/api/v1/nodes", "", nil)
	wantStatus(t, "no token", status, http.StatusUnauthorized, body)
	if got, want := body["error"], "missing or invalid bearer token"; got != want {
		t.Errorf("no token: error = %v, want %v", got, want)
	}
	status, body = gatewayCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":1}`,
		http.Header{"Authorization": {"Bearer wrong"}})
	wantStatus(t, "wrong token", status, http.StatusUnauthorized, body)
	status, body = gatewayCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":1}`,
		http.Header{"Authorization": {"Bearer s3cret"}})
	wantStatus(t, "token", status, http.StatusCreated, body)
	status, body = gatewayCall(t, e.url, "POST", "/api/v1/placement/invocations/place", `{"request_id":"r","task_id":"t"}`, nil)
	wantStatus(t, "place without a token", status, http.StatusUnauthorized, body)
	// SPEAR's health probe stays open, like /healthz.
	status, body = gatewayCall(t, e.url, "GET", "/health", "", nil)
	wantStatus(t, "health without a token", status, http.StatusOK, body)
}

func TestGatewayBodyLimit(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.MaxRequestBytes = 1024 })
	big := `{"ip_address":"10.0.0.5","port":1,"metadata":{"k":"` + strings.Repeat("x", 2000) + `"}}`
	status, body := gatewayCall(t, e.url, "POST", "/api/v1/nodes", big, nil)
	wantStatus(t, "oversized register", status, http.StatusRequestEntityTooLarge, body)
	if got, want := body["message"], "request body is larger than the 1024 byte limit"; got != want {
		t.Errorf("message = %v, want %v", got, want)
	}
}

// TestGatewayHealth: SPEAR's GET /health is 200 "healthy" while the store
// answers and 503 "unhealthy" once it does not, on every backend.
func TestGatewayHealth(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, openStore(t, backend), connectHTTP, nil)
			status, body := gatewayCall(t, e.url, "GET", "/health", "", nil)
			wantStatus(t, "health", status, http.StatusOK, body)
			if body["status"] != "healthy" || body["service"] != "sms" {
				t.Errorf("health = %v, want healthy sms", body)
			}
			if err := e.store.Close(); err != nil {
				t.Fatal(err)
			}
			status, body = gatewayCall(t, e.url, "GET", "/health", "", nil)
			wantStatus(t, "health of a closed store", status, http.StatusServiceUnavailable, body)
			if body["status"] != "unhealthy" {
				t.Errorf("health of a closed store = %v, want unhealthy", body)
			}
		})
	}
}

func TestGatewayMetrics(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.Metrics = metrics.New() })
	status, body := gatewayCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":1}`, nil)
	wantStatus(t, "register", status, http.StatusCreated, body)
	status, body = gatewayCall(t, e.url, "GET", "/api/v1/nodes/"+absentUUID, "", nil)
	wantStatus(t, "get absent", status, http.StatusNotFound, body)
	status, body = gatewayCall(t, e.url, "GET", "/api/v1/nope", "", nil)
	wantStatus(t, "unknown route", status, http.StatusNotFound, body)

	resp, err := http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`sms_http_requests_total{method="POST",route="/api/v1/nodes",status="201"} 1`,
		`sms_http_requests_total{method="GET",route="/api/v1/nodes/{uuid}",status="404"} 1`,
		`sms_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
	} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
