package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestPlace(t *testing.T) {
	url := startServer(t, "")
	for _, protocol := range []string{"connect", "grpc", "grpcweb"} {
		t.Run(protocol, func(t *testing.T) {
			env := map[string]string{"SMS_ADDR": url}
			cmd := func(args ...string) []string { return append([]string{"--protocol", protocol}, args...) }
			register := func(ip, cpu string) string {
				id := strings.TrimSpace(ok(t, env, cmd("nodes", "register", "--ip", ip, "--port", "7000", "--label", "proto="+protocol)...))
				ok(t, env, cmd("resources", "update", id, "--cpu", cpu)...)
				return id
			}
			busy, idle := register("10.0.1.1", "80"), register("10.0.1.2", "10")

			out := ok(t, env, cmd("place", "--label", "proto="+protocol, "--max", "5")...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 4 || !strings.HasPrefix(lines[0], "decision ") || !strings.HasPrefix(lines[1], "RANK") ||
				!strings.Contains(lines[2], idle) || !strings.Contains(lines[2], "95.00") || !strings.Contains(lines[3], busy) {
				t.Fatalf("place =\n%s\nwant the decision, then %s (95) before %s", out, idle, busy)
			}

			ok(t, env, cmd("place", "report", idle, "timeout")...)
			var resp map[string]any
			if err := json.Unmarshal([]byte(ok(t, env, cmd("place", "-o", "json", "--label", "proto="+protocol)...)), &resp); err != nil {
				t.Fatal(err)
			}
			cands, _ := resp["candidates"].([]any)
			if len(cands) != 1 || cands[0].(map[string]any)["node_uuid"] != busy {
				t.Fatalf("place -o json after a timeout on %s = %v, want only %s", idle, resp, busy)
			}
			out = ok(t, env, cmd("place", "penalties")...)
			if rows := strings.Split(strings.TrimSpace(out), "\n"); len(rows) != 2 || !strings.Contains(rows[1], idle) ||
				!strings.Contains(rows[1], " 1 ") || !strings.Contains(rows[1], " 10 ") || !strings.Contains(rows[1], "for ") {
				t.Fatalf("place penalties =\n%s\nwant %s with 1 failure, penalty 10, blocked", out, idle)
			}

			ok(t, env, cmd("place", "report", idle, "SUCCESS")...)
			if out := ok(t, env, cmd("place", "penalties")...); strings.Contains(out, idle) {
				t.Fatalf("place penalties after success =\n%s\nwant no %s", out, idle)
			}
			if _, _, status := smsctl(t, env, cmd("place", "report", idle, "late")...); status != exitUsage {
				t.Errorf("place report with an unknown outcome: status %d, want %d", status, exitUsage)
			}
			if _, errOut, status := smsctl(t, env, cmd("place", "--task-id", "")...); status != exitRPC || !strings.Contains(errOut, "invalid_argument") {
				t.Errorf("place without a task id: status %d, stderr %q; want %d and invalid_argument", status, errOut, exitRPC)
			}
		})
	}
}
