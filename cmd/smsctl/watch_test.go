package main

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
)

// nodes watch asks for a batched snapshot and prints it one node per line,
// as a server without batches would have it (table and JSON).
func TestWatchPrintsBatchedSnapshotPerNode(t *testing.T) {
	url := startServer(t, "")
	env := map[string]string{"SMS_ADDR": url}
	var ids []string
	for range 3 {
		ids = append(ids, strings.TrimSpace(ok(t, env, "nodes", "register", "--ip", "10.0.0.8", "--port", "1", "--label", "batch=yes")))
	}
	slices.Sort(ids) // the snapshot's order
	for _, format := range []string{"table", "json"} {
		t.Run(format, func(t *testing.T) {
			// The watch runs until its output has the snapshot's end.
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			out := &cancelAfter{what: "SNAPSHOT_END", cancel: cancel}
			var errOut testutil.SyncBuffer
			if status := run(ctx, []string{"nodes", "watch", "-o", format, "--label", "batch=yes"},
				func(k string) string { return env[k] }, out, &errOut); status != 0 || !strings.Contains(out.String(), "SNAPSHOT_END") {
				t.Fatalf("nodes watch: status %d, output\n%s\nstderr %q; want status 0 after SNAPSHOT_END", status, out.String(), errOut.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if len(lines) != len(ids)+1 {
				t.Fatalf("watch printed %d lines, want one per node and SNAPSHOT_END:\n%s", len(lines), out.String())
			}
			for i, id := range ids {
				if !strings.Contains(lines[i], id) || !strings.Contains(lines[i], "SNAPSHOT") {
					t.Errorf("line %d = %q, want the SNAPSHOT of %s", i, lines[i], id)
				}
				if format == "json" {
					var ev struct {
						SnapshotNodes []any `json:"snapshot_nodes"`
					}
					if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil || len(ev.SnapshotNodes) != 0 {
						t.Errorf("line %q: %v, want one node and no snapshotNodes", lines[i], err)
					}
				}
			}
		})
	}
}

// cancelAfter is an output that calls cancel once it has received what.
type cancelAfter struct {
	testutil.SyncBuffer
	what   string
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	n, err := w.SyncBuffer.Write(p)
	if strings.Contains(w.String(), w.what) {
		w.cancel()
	}
	return n, err
}
