package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
)

// TestLogs: --log-level debug adds one line per request, and durations read
// the same in text and JSON ("1m30s", not nanoseconds).
func TestLogs(t *testing.T) {
	t.Run("json", func(t *testing.T) {
		addr, logs := startRun(t, nil, "--kv-backend", "memory", "--log-format", "json", "--log-level", "debug")
		client := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr)
		if _, err := client.ListNodes(t.Context(), &smspb.ListNodesRequest{}); err != nil {
			t.Fatal(err)
		}
		var listening, rpc map[string]any
		for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			var rec map[string]any
			if err := json.Unmarshal([]byte(line), &rec); err != nil {
				t.Fatalf("log line %q is not JSON: %v", line, err)
			}
			switch rec["msg"] {
			case "sms listening":
				listening = rec
			case "rpc":
				rpc = rec
			}
		}
		if got := listening["heartbeat_timeout"]; got != "1m30s" {
			t.Errorf("heartbeat_timeout in JSON = %v (%T), want \"1m30s\"", got, got)
		}
		if rpc == nil {
			t.Fatalf("no rpc line at debug level:\n%s", logs)
		}
		if rpc["procedure"] != "/sms.NodeService/ListNodes" || rpc["code"] != "ok" || rpc["peer"] == "" {
			t.Errorf("rpc line = %v, want procedure, code ok and peer", rpc)
		}
		if d, _ := rpc["duration"].(string); d == "" {
			t.Errorf("rpc duration = %v, want a duration string", rpc["duration"])
		} else if _, err := time.ParseDuration(d); err != nil {
			t.Errorf("rpc duration %q: %v", d, err)
		}
	})
	t.Run("text", func(t *testing.T) {
		_, logs := startRun(t, nil, "--kv-backend", "memory")
		if !strings.Contains(logs.String(), "heartbeat_timeout=1m30s") {
			t.Errorf("text start line lacks heartbeat_timeout=1m30s:\n%s", logs)
		}
	})
}
