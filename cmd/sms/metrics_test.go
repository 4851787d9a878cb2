package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
)

// getMetrics GETs /metrics and returns the status code and body.
func getMetrics(t *testing.T, addr string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestMetricsEndpoint(t *testing.T) {
	t.Run("on by default, with the store's pools", func(t *testing.T) {
		addr, _ := startRun(t, nil, "--kv-path", filepath.Join(t.TempDir(), "sms.db"))
		client := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr)
		if _, err := client.RegisterNode(context.Background(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}}); err != nil {
			t.Fatal(err)
		}
		wants := []string{
			`sms_rpc_requests_total{code="ok",procedure="/sms.NodeService/RegisterNode"} 1`,
			`sms_nodes{status="active"} 1`,
			`sms_store_operation_duration_seconds_count{backend="sqlite",operation="apply"}`,
			`sms_db_wait_count_total{backend="sqlite",pool="writer"}`,
		}
		// The node gauges are the registry view's counters, read without a
		// read fence: a scrape right after a write may come before the view
		// applied it, so the test waits for them as a scraper would.
		var body string
		testutil.Eventually(t, "/metrics counts the registered node", func() bool {
			var status int
			status, body = getMetrics(t, addr)
			if status != http.StatusOK {
				t.Fatalf("GET /metrics: %d, want 200", status)
			}
			return strings.Contains(body, `sms_nodes{status="active"} 1`)
		})
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("/metrics has no line with %q", want)
			}
		}
	})
	t.Run("off with --metrics=false", func(t *testing.T) {
		addr, _ := startRun(t, map[string]string{"SMS_METRICS": "false"}, "--kv-backend", "memory")
		if status, _ := getMetrics(t, addr); status != http.StatusNotFound {
			t.Errorf("GET /metrics with SMS_METRICS=false: %d, want 404", status)
		}
	})
}
