package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/storetest"
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
	bin := testutil.BuildBinary(t, ".", "sms")
	dir := t.TempDir()
	live, copyPath := filepath.Join(dir, "live.db"), filepath.Join(dir, "backup", "copy.db")
	addr := testutil.HoldPort(t)
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-path", live)
	p.WaitHealthy(t, "http://"+addr)
	for range 3 {
		registerOverHTTP(t, "http://"+addr)
	}
	want := listUUIDs(t, "http://"+addr)

	if _, stderr, status := testutil.RunBinary(t, bin, "backup", "--kv-path", live, live); status != 1 || !strings.Contains(stderr, "file already exists") {
		t.Errorf("sms backup onto an existing file: status %d, stderr %q; want 1, file already exists", status, stderr)
	}
	stdout, stderr, status := testutil.RunBinary(t, bin, "backup", "--kv-path", live, copyPath)
	if status != 0 || !strings.HasPrefix(stdout, "backed up "+live+" to "+copyPath) {
		t.Fatalf("sms backup of a live server: status %d, stdout %q, stderr %q", status, stdout, stderr)
	}
	// The live server keeps serving, and writes after the copy stay out of it.
	registerOverHTTP(t, "http://"+addr)

	restored := testutil.HoldPort(t)
	q := testutil.StartProcess(t, bin, "--addr", restored, "--kv-path", copyPath)
	q.WaitHealthy(t, "http://"+restored)
	if got := listUUIDs(t, "http://"+restored); !slices.Equal(got, want) {
		t.Errorf("nodes of the restored copy = %v, want those at backup time %v", got, want)
	}
	q.Stop(t, syscall.SIGTERM)
	p.Stop(t, syscall.SIGTERM)

	if _, stderr, status := testutil.RunBinary(t, bin, "backup", "--kv-backend", "postgres", copyPath+"2"); status != 2 || !strings.Contains(stderr, "pg_dump") {
		t.Errorf("sms backup --kv-backend postgres: status %d, stderr %q; want 2 and pg_dump named", status, stderr)
	}
}

// TestPgDumpRestore follows the README's Postgres backup: pg_dump of a live
// server's schema, pg_restore into a new database, a server started on the
// restored copy answers the same nodes.
func TestPgDumpRestore(t *testing.T) {
	dsn := storetest.PostgresDSN(t)
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (apt-get install postgresql-client)", tool)
			}
			t.Skipf("%s not found (apt-get install postgresql-client)", tool)
		}
	}
	bin := testutil.BuildBinary(t, ".", "sms")
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("search_path")
	base := *u // libpq tools take no search_path parameter
	q := base.Query()
	q.Del("search_path")
	base.RawQuery = q.Encode()

	addr := testutil.HoldPort(t)
	p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", dsn)
	p.WaitHealthy(t, "http://"+addr)
	for range 3 {
		registerOverHTTP(t, "http://"+addr)
	}
	want := listUUIDs(t, "http://"+addr)

	dump := filepath.Join(t.TempDir(), "sms.dump")
	if out, err := exec.Command("pg_dump", "--format=custom", "--schema", schema, "--file", dump, base.String()).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump of a live server: %v\n%s", err, out)
	}
	p.Stop(t, syscall.SIGTERM)

	cfg, err := pgx.ParseConfig(base.String())
	if err != nil {
		t.Fatal(err)
	}
	db := stdlib.OpenDB(*cfg)
	restoredDB := schema + "_restored"
	if _, err := db.ExecContext(t.Context(), "CREATE DATABASE "+restoredDB); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer db.Close()
		if _, err := db.ExecContext(context.Background(), "DROP DATABASE "+restoredDB+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", restoredDB, err)
		}
	})
	target := base
	target.Path = "/" + restoredDB
	if out, err := exec.Command("pg_restore", "--dbname", target.String(), dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}

	addr = testutil.HoldPort(t)
	r := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", postgres.WithSearchPath(target.String(), schema))
	r.WaitHealthy(t, "http://"+addr)
	if got := listUUIDs(t, "http://"+addr); !slices.Equal(got, want) {
		t.Errorf("nodes of the restored database = %v, want %v", got, want)
	}
	r.Stop(t, syscall.SIGTERM)
}
