package metrics_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
)

// Calls rejected before any handler runs count in sms_rpc_requests_total
// too, by code: unauthenticated, oversized, undecodable, unknown paths, and
// REST calls the policy refused. Failed authentications also count in
// sms_auth_failures_total.
func TestRejectedCallsAreCounted(t *testing.T) {
	url, _ := start(t)
	post := func(path, contentType, auth string, body []byte) int {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", contentType)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	bearer := "Bearer " + token
	post("/sms.NodeService/GetNode", "application/json", bearer, []byte("{not json"))
	post("/sms.NodeService/GetNode", "application/json", bearer, []byte(`{"uuid": 7}`))
	post("/sms.NodeService/RegisterNode", "application/json", bearer, []byte(`{"node":{"metadata":{"k":"`+strings.Repeat("x", 5<<20)+`"}}}`))
	post("/sms.NodeService/GetNode", "application/json", "Bearer wrong", []byte(`{}`))
	post("/sms.NodeService/GetNode", "application/json", "", []byte(`{}`))
	post("/sms.NodeService/NoSuchMethod", "application/json", bearer, []byte(`{}`))
	post("/sms.NoSuchService/X", "application/json", bearer, []byte(`{}`))
	post("/api/v1/nodes", "application/json", "", []byte(`{}`))

	// Probes, scrapes and the dashboard are not RPCs.
	for _, path := range []string{"/healthz", "/", "/metrics"} {
		if resp, err := http.Get(url + path); err == nil {
			resp.Body.Close()
		}
	}

	families := scrape(t, url)
	if got, ok := value(families, "sms_rpc_requests_total", map[string]string{"code": "ok"}); ok {
		t.Errorf("sms_rpc_requests_total{code=ok} = %v: probes or scrapes were counted as calls", got)
	}
	for _, tt := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"procedure": "/sms.NodeService/GetNode", "code": "invalid_argument"}, 2},
		{map[string]string{"procedure": "/sms.NodeService/RegisterNode", "code": "resource_exhausted"}, 1},
		{map[string]string{"procedure": "/sms.NodeService/GetNode", "code": "unauthenticated"}, 2},
		{map[string]string{"procedure": "unknown", "code": "unimplemented"}, 2},
		{map[string]string{"procedure": "rest", "code": "unauthenticated"}, 1},
	} {
		got, ok := value(families, "sms_rpc_requests_total", tt.labels)
		if !ok || got != tt.want {
			t.Errorf("sms_rpc_requests_total%v = %v (present %v), want %v", tt.labels, got, ok, tt.want)
		}
	}
	if got, _ := value(families, "sms_auth_failures_total", nil); got != 3 {
		t.Errorf("sms_auth_failures_total = %v, want 3", got)
	}
}
