package service_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/spear-next/sms/service"
)

// restCall sends method path (with body, if not empty) to the REST routes
// and returns the HTTP status and the decoded JSON body.
func restCall(t *testing.T, url, method, path, body string, header http.Header) (int, map[string]any) {
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

func TestRESTRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	const absent = "00000000-0000-4000-8000-000000000000"

	status, body := restCall(t, e.url, "POST", "/api/v1/nodes",
		`{"ip_address":"10.0.0.5","port":8080,"metadata":{"zone":"a"}}`, nil)
	wantStatus(t, "register", status, http.StatusCreated, body)
	id, _ := body["nodeUuid"].(string)
	if len(id) != 36 {
		t.Fatalf("register: nodeUuid = %v, want a uuid (body %v)", body["nodeUuid"], body)
	}

	t.Run("register errors are 400, not 201", func(t *testing.T) {
		status, body := restCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":0}`, nil)
		wantStatus(t, "register port 0", status, http.StatusBadRequest, body)
		if !strings.Contains(body["message"].(string), "port") {
			t.Errorf("message = %q, want it to name the port", body["message"])
		}
		status, body = restCall(t, e.url, "POST", "/api/v1/nodes", `{not json`, nil)
		wantStatus(t, "register bad JSON", status, http.StatusBadRequest, body)
	})

	t.Run("get", func(t *testing.T) {
		status, body := restCall(t, e.url, "GET", "/api/v1/nodes/"+strings.ToUpper(id), "", nil)
		wantStatus(t, "get", status, http.StatusOK, body)
		node := body["node"].(map[string]any)
		if got, want := node["uuid"], id; got != want {
			t.Errorf("uuid = %v, want %v", got, want)
		}
		if got, want := node["ipAddress"], "10.0.0.5"; got != want {
			t.Errorf("ipAddress = %v, want %v", got, want)
		}
		if got, want := node["status"], "active"; got != want {
			t.Errorf("status = %v, want %v", got, want)
		}
	})

	t.Run("bad uuid is 400, absent is 404", func(t *testing.T) {
		for _, c := range []struct{ method, path, body string }{
			{"GET", "/api/v1/nodes/{id}", ""},
			{"PUT", "/api/v1/nodes/{id}", `{"ip_address":"10.0.0.5","port":1}`},
			{"DELETE", "/api/v1/nodes/{id}", ""},
			{"POST", "/api/v1/nodes/{id}/heartbeat", `{}`},
			{"PUT", "/api/v1/nodes/{id}/resource", `{"cpu_usage_percent":1}`},
		} {
			status, body := restCall(t, e.url, c.method, strings.ReplaceAll(c.path, "{id}", "nope"), c.body, nil)
			wantStatus(t, c.method+" "+c.path+" bad uuid", status, http.StatusBadRequest, body)
			status, body = restCall(t, e.url, c.method, strings.ReplaceAll(c.path, "{id}", absent), c.body, nil)
			wantStatus(t, c.method+" "+c.path+" absent", status, http.StatusNotFound, body)
			if got, want := body["code"], float64(5); got != want { // google.rpc.Code NOT_FOUND
				t.Errorf("%s %s absent: code = %v, want %v", c.method, c.path, got, want)
			}
		}
		for _, path := range []string{"/api/v1/nodes/nope/resource", "/api/v1/nodes/nope/with-resource"} {
			status, body := restCall(t, e.url, "GET", path, "", nil)
			wantStatus(t, "GET "+path, status, http.StatusBadRequest, body)
		}
	})

	t.Run("update, heartbeat, resource, list", func(t *testing.T) {
		status, body := restCall(t, e.url, "PUT", "/api/v1/nodes/"+id,
			`{"ip_address":"10.0.0.6","port":8081,"status":"inactive"}`, nil)
		wantStatus(t, "update", status, http.StatusOK, body)

		status, body = restCall(t, e.url, "POST", "/api/v1/nodes/"+id+"/heartbeat", `{"health_info":{"disk":"ok"}}`, nil)
		wantStatus(t, "heartbeat", status, http.StatusOK, body)
		if _, ok := body["serverTimestamp"].(string); !ok { // int64 is a JSON string
			t.Errorf("heartbeat: serverTimestamp = %v, want an int64 string", body["serverTimestamp"])
		}

		status, body = restCall(t, e.url, "PUT", "/api/v1/nodes/"+id+"/resource", `{"cpu_usage_percent":42.5}`, nil)
		wantStatus(t, "PUT resource", status, http.StatusOK, body)
		status, body = restCall(t, e.url, "POST", "/api/v1/nodes/"+id+"/resource", `{"cpu_usage_percent":43.5,"memory_usage_percent":10}`, nil)
		wantStatus(t, "POST resource", status, http.StatusOK, body)

		status, body = restCall(t, e.url, "GET", "/api/v1/nodes/"+id+"/resource", "", nil)
		wantStatus(t, "GET resource", status, http.StatusOK, body)
		if res := body["resource"].(map[string]any); res["cpuUsagePercent"] != 43.5 || res["nodeUuid"] != id {
			t.Errorf("GET resource = %v, want cpu 43.5 of %s", res, id)
		}

		status, body = restCall(t, e.url, "GET", "/api/v1/nodes/"+id+"/with-resource", "", nil)
		wantStatus(t, "with-resource", status, http.StatusOK, body)
		if body["found"] != true || body["node"].(map[string]any)["status"] != "inactive" ||
			body["resource"].(map[string]any)["memoryUsagePercent"] != 10.0 {
			t.Errorf("with-resource = %v, want the inactive node with memory 10", body)
		}

		status, body = restCall(t, e.url, "GET", "/api/v1/resources", "", nil)
		wantStatus(t, "resources", status, http.StatusOK, body)
		if got := len(body["resources"].([]any)); got != 1 {
			t.Errorf("resources: %d reports, want 1", got)
		}

		for filter, want := range map[string]int{"inactive": 1, "active": 0, "": 1} {
			status, body = restCall(t, e.url, "GET", "/api/v1/nodes?status_filter="+filter, "", nil)
			wantStatus(t, "list "+filter, status, http.StatusOK, body)
			if got := len(body["nodes"].([]any)); got != want {
				t.Errorf("list status_filter=%q: %d nodes, want %d", filter, got, want)
			}
		}
		status, body = restCall(t, e.url, "GET", "/api/v1/nodes?status_filter=bogus", "", nil)
		wantStatus(t, "list bogus status", status, http.StatusBadRequest, body)

		status, body = restCall(t, e.url, "GET", "/api/v1/stats", "", nil)
		wantStatus(t, "stats", status, http.StatusOK, body)
		if got, want := body["totalNodes"], "1"; got != want {
			t.Errorf("stats totalNodes = %v, want %v", got, want)
		}
	})

	t.Run("delete", func(t *testing.T) {
		id := registerREST(t, e.url)
		status, body := restCall(t, e.url, "DELETE", "/api/v1/nodes/"+id, "", nil)
		wantStatus(t, "delete", status, http.StatusOK, body)
		status, body = restCall(t, e.url, "GET", "/api/v1/nodes/"+id, "", nil)
		wantStatus(t, "get deleted", status, http.StatusNotFound, body)
		status, body = restCall(t, e.url, "GET", "/api/v1/nodes/"+id+"/with-resource", "", nil)
		wantStatus(t, "with-resource deleted", status, http.StatusOK, body)
		if body["found"] != false {
			t.Errorf("with-resource of a deleted node: found = %v, want false", body["found"])
		}
	})
}

// registerREST registers a node through POST /api/v1/nodes and returns its
// uuid.
func registerREST(t *testing.T, url string) string {
	t.Helper()
	status, body := restCall(t, url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.9","port":9}`, nil)
	wantStatus(t, "register", status, http.StatusCreated, body)
	return body["nodeUuid"].(string)
}

func TestRESTBodyWithoutJSONContentType(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	for _, ct := range []string{"", "application/x-www-form-urlencoded"} {
		req, err := http.NewRequestWithContext(t.Context(), "POST", e.url+"/api/v1/nodes",
			strings.NewReader(`{"ip_address":"10.0.0.5","port":1}`))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Del("Content-Type")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got, want := resp.StatusCode, http.StatusCreated; got != want {
			t.Errorf("Content-Type %q: status %d, want %d", ct, got, want)
		}
	}
}

func TestRESTNeedsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) { c.AuthToken = "s3cret" })

	status, body := restCall(t, e.url, "GET", "/api/v1/nodes", "", nil)
	wantStatus(t, "no token", status, http.StatusUnauthorized, body)
	status, body = restCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":1}`,
		http.Header{"Authorization": {"Bearer wrong"}})
	wantStatus(t, "wrong token", status, http.StatusUnauthorized, body)
	status, body = restCall(t, e.url, "POST", "/api/v1/nodes", `{"ip_address":"10.0.0.5","port":1}`,
		http.Header{"Authorization": {"Bearer s3cret"}})
	wantStatus(t, "token", status, http.StatusCreated, body)
}

func TestRESTUnknownRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	req, err := http.NewRequestWithContext(t.Context(), "GET", e.url+"/api/v1/nope", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusNotFound; got != want {
		t.Errorf("GET /api/v1/nope: status %d, want %d", got, want)
	}
}
