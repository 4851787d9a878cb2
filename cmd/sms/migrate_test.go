package main

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

func TestMigrateCommand(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")

	backends := []struct {
		name   string
		store  func(t *testing.T) []string
		latest string // the last migration
	}{
		{"sqlite", func(t *testing.T) []string {
			return []string{"--kv-path", filepath.Join(t.TempDir(), "sms.db")}
		}, "00010_records.go"},
		{"postgres", func(t *testing.T) []string {
			return []string{"--kv-backend", "postgres", "--kv-dsn", storetest.PostgresDSN(t)}
		}, "00010_records.go"},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			storeFlags := b.store(t)
			migrate := func(command string, flags ...string) (string, string, int) {
				t.Helper()
				return testutil.RunBinary(t, bin, append(append([]string{"migrate", command}, flags...), storeFlags...)...)
			}

			out, errOut, status := migrate("status")
			if status != 0 {
				t.Fatalf("migrate status on a new database: status %d\n%s", status, errOut)
			}
			if !strings.Contains(out, "pending") || strings.Contains(out, "applied") {
				t.Errorf("migrate status on a new database = %q, want only pending migrations", out)
			}

			// The server refuses an unmigrated database with one line.
			addr := testutil.HoldPort(t)
			serverArgs := append([]string{"--addr", addr, "--skip-migrations"}, storeFlags...)
			_, errOut, status = testutil.RunBinary(t, bin, serverArgs...)
			if status != 1 {
				t.Fatalf("sms --skip-migrations on an unmigrated database: status %d, want 1\n%s", status, errOut)
			}
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "schema not migrated") || !strings.Contains(errOut, "sms migrate up") {
				t.Errorf("stderr = %q, want one line saying the schema is not migrated and to run sms migrate up", errOut)
			}

			out, errOut, status = migrate("up")
			if status != 0 {
				t.Fatalf("migrate up: status %d\n%s", status, errOut)
			}
			if !strings.Contains(out, "applied "+b.latest) {
				t.Errorf("migrate up = %q, want it to apply %s", out, b.latest)
			}
			out, _, _ = migrate("status")
			if strings.Contains(out, "pending") || !strings.Contains(out, "applied") {
				t.Errorf("migrate status after up = %q, want every migration applied", out)
			}
			out, _, status = migrate("up")
			if status != 0 || strings.Contains(out, "applied ") {
				t.Errorf("second migrate up = %q, status %d; want nothing applied, status 0", out, status)
			}

			// Now the server starts without migrating.
			p := testutil.StartProcess(t, bin, serverArgs...)
			p.WaitHealthy(t, "http://"+addr)
			registerOverHTTP(t, "http://"+addr)
			if b.name == "sqlite" {
				// A server holds the file: down refuses, naming it.
				_, errOut, status = migrate("down", "--yes")
				if want := fmt.Sprintf("in use by process %d", p.Cmd.Process.Pid); status != 1 || !strings.Contains(errOut, want) {
					t.Errorf("migrate down --yes next to a server: status %d, stderr %q; want 1, %q", status, errOut, want)
				}
			}
			p.Stop(t, syscall.SIGTERM)

			// Off a terminal, down says what it would do and needs --yes.
			out, errOut, status = migrate("down")
			if status != 2 || out != "" || !strings.Contains(errOut, "rolls back "+b.latest) || !strings.Contains(errOut, "--yes") {
				t.Errorf("migrate down without --yes: status %d, stdout %q, stderr %q; want 2, the plan and --yes", status, out, errOut)
			}
			if !strings.Contains(errOut, "deletes none") {
				t.Errorf("migrate down of the records migration: stderr %q, want it to say it deletes nothing", errOut)
			}
			out, errOut, status = migrate("down", "--yes")
			if status != 0 || !strings.Contains(out, "rolled back "+b.latest) {
				t.Fatalf("migrate down --yes = %q, status %d; want %s rolled back\n%s", out, status, b.latest, errOut)
			}
			if b.name == "sqlite" {
				// Next is the first migration, which drops the table.
				_, errOut, _ = migrate("down")
				if !strings.Contains(errOut, "rolls back 00001_kv.sql") || !regexp.MustCompile(`[1-9][0-9]* keys will be deleted`).MatchString(errOut) {
					t.Errorf("migrate down of the first migration: stderr %q, want how many keys it deletes", errOut)
				}
			}
			out, _, _ = migrate("status")
			if !strings.Contains(out, "pending") {
				t.Errorf("migrate status after down = %q, want a pending migration", out)
			}
			_, errOut, status = testutil.RunBinary(t, bin, serverArgs...)
			if status != 1 || !strings.Contains(errOut, "schema not migrated") {
				t.Errorf("sms --skip-migrations after down: status %d, stderr %q; want 1, schema not migrated", status, errOut)
			}
		})
	}

	t.Run("usage errors exit 2 with one line", func(t *testing.T) {
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"migrate"}, "sms: migrate needs a command: up, down or status; see sms migrate --help"},
			{[]string{"migrate", "sideways"}, `sms: unknown migrate command "sideways"; want up, down or status`},
			{[]string{"migrate", "up", "--kv-backend", "memory"}, "sms: --kv-backend (KV_BACKEND): the memory backend has no migrations; want sqlite or postgres"},
			{[]string{"migrate", "up", "--kv-backend", "postgres"}, "sms: --kv-dsn (KV_DSN): missing, and the postgres backend needs the connection string; want a Postgres URL such as postgres://user:pass@host:5432/sms"},
		} {
			stdout, stderr, status := testutil.RunBinary(t, bin, tt.args...)
			if status != 2 || stderr != tt.want+"\n" || stdout != "" {
				t.Errorf("sms %q: status %d, stdout %q, stderr %q; want 2, nothing, %q", tt.args, status, stdout, stderr, tt.want)
			}
		}
	})

	t.Run("down with nothing applied exits 1", func(t *testing.T) {
		_, stderr, status := testutil.RunBinary(t, bin, "migrate", "down", "--kv-path", filepath.Join(t.TempDir(), "sms.db"))
		if status != 1 || stderr != "sms: migrate down: no migration is applied\n" {
			t.Errorf("migrate down on a new database: status %d, stderr %q; want 1, no migration is applied", status, stderr)
		}
	})
}

// registerOverHTTP registers one node through the Connect protocol's JSON.
func registerOverHTTP(t *testing.T, baseURL string) {
	t.Helper()
	resp, err := http.Post(baseURL+"/sms.NodeService/RegisterNode", "application/json",
		strings.NewReader(`{"node":{"ip_address":"10.0.0.5","port":8080}}`))
	if err != nil {
		t.Fatalf("RegisterNode: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("RegisterNode: HTTP %d", resp.StatusCode)
	}
}

func TestMigrateDownAsksOnATerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sms.db")
	ctx := context.Background()
	run := func(in string, args ...string) (string, string, error) {
		var stdout, stderr strings.Builder
		err := runMigrate(ctx, append(args, "--kv-path", path), func(string) string { return "" },
			terminal{in: strings.NewReader(in), isTerminal: true}, &stdout, &stderr)
		return stdout.String(), stderr.String(), err
	}
	if _, _, err := run("", "up"); err != nil {
		t.Fatalf("migrate up: %v", err)
	}
	_, prompt, err := run("no\n", "down")
	if err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Errorf("down answered no: err %v, want not confirmed", err)
	}
	if !strings.Contains(prompt, "rolls back 00010_records.go") || !strings.Contains(prompt, "deletes none") || !strings.Contains(prompt, "Type yes") {
		t.Errorf("down prompt = %q, want the plan and Type yes", prompt)
	}
	if out, _, _ := run("", "status"); strings.Contains(out, "pending") {
		t.Fatalf("status after an unconfirmed down = %q, want nothing rolled back", out)
	}
	out, _, err := run("yes\n", "down")
	if err != nil || !strings.Contains(out, "rolled back") {
		t.Errorf("down answered yes: stdout %q, err %v; want rolled back", out, err)
	}
}
