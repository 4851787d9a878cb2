package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// listUUIDs returns the uuids ListNodes answers, through the Connect
// protocol's JSON.
func listUUIDs(t *testing.T, baseURL string) []string {
	t.Helper()
	resp, err := http.Post(baseURL+"/sms.NodeService/ListNodes", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatalf("ListNodes: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct {
		Nodes []struct{ UUID string }
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &out) != nil {
		t.Fatalf("ListNodes: HTTP %d %s", resp.StatusCode, body)
	}
	var ids []string
	for _, n := range out.Nodes {
		ids = append(ids, n.UUID)
	}
	slices.Sort(ids)
	return ids
}

// TestBackupOfALiveServer backs up the SQLite file of a running server with
// `sms backup`, restores the copy by starting a second server on it, and
// finds the same nodes.
func TestBackupOfALiveServer(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	live, copyPath := filepath.Join(dir, "live.db"), filepath.Join(dir, "backup", "copy.db")
	addr := freeAddr(t)
	p := startProcess(t, bin, "--addr", addr, "--kv-path", live)
	p.waitHealthy(t, "http://"+addr)
	for range 3 {
		registerOverHTTP(t, "http://"+addr)
	}
	want := listUUIDs(t, "http://"+addr)

	if _, stderr, status := runBin(t, bin, "backup", "--kv-path", live, live); status != 1 || !strings.Contains(stderr, "file already exists") {
		t.Errorf("sms backup onto an existing file: status %d, stderr %q; want 1, file already exists", status, stderr)
	}
	stdout, stderr, status := runBin(t, bin, "backup", "--kv-path", live, copyPath)
	if status != 0 || !strings.HasPrefix(stdout, "backed up "+live+" to "+copyPath) {
		t.Fatalf("sms backup of a live server: status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
	// The live server keeps serving, and writes after the copy stay out of it.
	registerOverHTTP(t, "http://"+addr)

	restored := freeAddr(t)
	q := startProcess(t, bin, "--addr", restored, "--kv-path", copyPath)
	q.waitHealthy(t, "http://"+restored)
	if got := listUUIDs(t, "http://"+restored); !slices.Equal(got, want) {
		t.Errorf("nodes of the restored copy = %v, want those at backup time %v", got, want)
	}
	q.stop(t, syscall.SIGTERM)
	p.stop(t, syscall.SIGTERM)

	if _, stderr, status := runBin(t, bin, "backup", "--kv-backend", "postgres", copyPath+"2"); status != 2 || !strings.Contains(stderr, "pg_dump") {
		t.Errorf("sms backup --kv-backend postgres: status %d, stderr %q; want 2 and pg_dump named", status, stderr)
	}
}
