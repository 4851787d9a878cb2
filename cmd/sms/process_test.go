package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// These tests build the real binary and drive it as an operator would:
// flags, signals, exit codes and a SQLite file that outlives the process.

func TestProcess(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")

	backends := []struct {
		name  string
		store func(t *testing.T) []string // the store's flags
	}{
		{"sqlite", func(t *testing.T) []string {
			return []string{"--kv-path", filepath.Join(t.TempDir(), "sms.db")}
		}},
		{"postgres", func(t *testing.T) []string {
			return []string{"--kv-backend", "postgres", "--kv-dsn", storetest.PostgresDSN(t)}
		}},
	}
	for _, b := range backends {
		t.Run("persists across a graceful restart/"+b.name, func(t *testing.T) {
			storeFlags := b.store(t)
			addr := testutil.HoldPort(t)
			baseURL := "http://" + addr
			client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)
			ctx := context.Background()
			args := append([]string{"--addr", addr}, storeFlags...)

			p := testutil.StartProcess(t, bin, args...)
			p.WaitHealthy(t, baseURL)
			reg, err := client.RegisterNode(ctx, &smspb.RegisterNodeRequest{Node: &smspb.Node{
				IpAddress: "10.1.2.3", Port: 9000, Metadata: map[string]string{"zone": "a"},
			}})
			if err != nil {
				t.Fatalf("RegisterNode: %v\n%s", err, p.Output)
			}
			before, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if err != nil || !before.GetFound() {
				t.Fatalf("GetNode before restart = %v, %v; want found\n%s", before, err, p.Output)
			}
			p.Stop(t, syscall.SIGTERM)

			// Rebinding the same port right away also checks that the first
			// process really let go of it.
			p = testutil.StartProcess(t, bin, args...)
			p.WaitHealthy(t, baseURL)
			after, err := client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
			if err != nil || !after.GetFound() {
				t.Fatalf("GetNode after restart = %v, %v; want found\n%s", after, err, p.Output)
			}
			if got, want := after.GetNode().GetRegisteredAt(), before.GetNode().GetRegisteredAt(); got != want || got == 0 {
				t.Errorf("registered_at after restart = %d, want %d (non-zero)", got, want)
			}
			if got, want := after.GetNode().GetIpAddress(), "10.1.2.3"; got != want {
				t.Errorf("ip_address after restart = %q, want %q", got, want)
			}
			p.Stop(t, os.Interrupt)
		})
	}

	t.Run("unreachable postgres exits 1 with one line and no password", func(t *testing.T) {
		// Port 1 refuses connections, so no database is needed.
		for _, dsn := range []string{
			"postgres://sms:hunter2@127.0.0.1:1/sms?sslmode=disable",
			"host=127.0.0.1 port=1 user=sms password=hunter2 sslmode=disable",
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "--kv-backend", "postgres", "--kv-dsn", dsn, "--addr", "127.0.0.1:0")
			cmd.Env = testutil.CleanEnv()
			var output testutil.SyncBuffer
			cmd.Stdout, cmd.Stderr = &output, &output
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 {
				t.Fatalf("sms with an unreachable Postgres exited with %v, want status 1\n%s", err, output.String())
			}
			out := output.String()
			if !strings.HasPrefix(out, "sms: open postgres store: ") || strings.Count(out, "\n") != 1 {
				t.Errorf("output = %q, want one line starting \"sms: open postgres store: \"", out)
			}
			if strings.Contains(out, "hunter2") {
				t.Errorf("output = %q, shows the DSN password", out)
			}
		}
	})

	t.Run("bad setting exits 2 with one line", func(t *testing.T) {
		tests := []struct {
			name string
			args []string
			env  []string
			want string
		}{
			{"flag", []string{"--heartbeat-timeout", "abc"}, nil,
				`sms: --heartbeat-timeout (SMS_HEARTBEAT_TIMEOUT): "abc" is not a duration; want a Go duration > 0 such as 90s`},
			{"env", nil, []string{"KV_BACKEND=mysql"},
				`sms: --kv-backend (KV_BACKEND): "mysql" is not a backend; want memory, sqlite or postgres`},
			{"unknown flag", []string{"--nope"}, nil,
				`sms: flag provided but not defined: -nope; see sms --help`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				cmd := testutil.Command(t, ctx, bin, tt.args...)
				cmd.Env = append(cmd.Env, tt.env...)
				stdout, stderr, status := testutil.Run(t, cmd)
				if status != 2 {
					t.Fatalf("sms %q exited with status %d, want 2\n%s", tt.args, status, stderr)
				}
				if got, want := stderr, tt.want+"\n"; got != want {
					t.Errorf("stderr = %q, want exactly one line %q", got, want)
				}
				if stdout != "" {
					t.Errorf("stdout = %q, want nothing", stdout)
				}
			})
		}
	})

	t.Run("help exits 0", func(t *testing.T) {
		cmd := exec.Command(bin, "--help")
		cmd.Env = testutil.CleanEnv()
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("sms --help: %v\n%s", err, out)
		}
		for _, w := range []string{"--kv-backend", "KV_BACKEND", "--auth-token-file", "SMS_AUTH_TOKEN_FILE", "127.0.0.1:50051"} {
			if !strings.Contains(string(out), w) {
				t.Errorf("--help output does not mention %q:\n%s", w, out)
			}
		}
	})
}

func TestVersion(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	stdout, stderr, status := testutil.RunBinary(t, bin, "--version")
	if want := "sms "; status != 0 || stderr != "" || !strings.HasPrefix(stdout, want) || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("sms --version: status %d, stdout %q, stderr %q; want 0 and a line starting %q naming %s", status, stdout, stderr, want, runtime.Version())
	}
}
