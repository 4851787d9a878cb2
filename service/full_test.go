package service_test

import (
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// On a full disk (SQLite capped with max_page_count): writes answer
// resource_exhausted saying the disk is full, reads keep working, /healthz
// stays 200 but says degraded, and after space is freed (nodes deleted)
// registrations succeed again and /healthz is ok, without a restart.
func TestDiskFullThroughTheWire(t *testing.T) {
	store, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sms.db"), sqlite.Options{MaxPages: 128})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := newEnv(t, store, connectHTTP, nil)
	big := map[string]string{}
	for i := range 60 {
		big[string(rune('a'+i%26))+strings.Repeat("k", i)] = strings.Repeat("v", 4000)
	}
	var ids []string
	var full error
	for len(ids) < 10_000 {
		resp, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1, Metadata: big}})
		if err != nil {
			full = err
			break
		}
		ids = append(ids, resp.GetNodeUuid())
	}
	if got := connect.CodeOf(full); got != connect.CodeResourceExhausted || !strings.Contains(full.Error(), "disk is full") {
		t.Fatalf("RegisterNode on a full disk: %v (%v), want resource_exhausted saying the disk is full", full, got)
	}
	if len(ids) == 0 {
		t.Fatal("the disk was full before the first registration")
	}
	for _, id := range ids {
		if _, err := e.client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id}); err != nil {
			t.Fatalf("GetNode of an acknowledged node on a full disk: %v", err)
		}
	}
	if status, body := healthzBody(t, e); status != http.StatusOK || !strings.HasPrefix(body, "degraded") {
		t.Fatalf("GET /healthz on a full disk = %d %q, want 200 \"degraded: ...\"", status, body)
	}

	for _, id := range ids[:len(ids)/2+1] {
		if _, err := e.client.DeleteNode(t.Context(), &smspb.DeleteNodeRequest{Uuid: id}); err != nil {
			t.Fatalf("DeleteNode on a full disk: %v", err)
		}
	}
	if _, err := e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1, Metadata: big}}); err != nil {
		t.Fatalf("RegisterNode after freeing space: %v", err)
	}
	if status, body := healthzBody(t, e); status != http.StatusOK || body != "ok" {
		t.Fatalf("GET /healthz after freeing space = %d %q, want 200 \"ok\"", status, body)
	}
}

func healthzBody(t *testing.T, e *env) (int, string) {
	t.Helper()
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatalf("GET /healthz: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}
