package service_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestDashboardMounted checks that NewHandler serves the dashboard (package
// web) at / and its assets under /ui/, next to the RPC and REST routes.
func TestDashboardMounted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, openStore(t, "memory"), connectHTTP, nil)
	for path, want := range map[string]string{"/": "<title>SMS dashboard</title>", "/ui/app.js": "listNodes"} {
		resp, err := http.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: status %d, body contains %q: %v; want 200 and true", path, resp.StatusCode, want, strings.Contains(string(body), want))
		}
	}
}
