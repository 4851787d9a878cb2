package main

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// SMS behind PgBouncer in transaction mode: started with the pooler as its
// only DSN it refuses to start and says which setting to add; with
// default_query_exec_mode=exec and --kv-listen-dsn it serves, and a watcher
// hears a registration.
func TestBehindPgBouncerProcess(t *testing.T) {
	pooled, direct := storetest.PooledPostgres(t, storetest.PgBouncer(t))
	pooled += "&default_query_exec_mode=exec"
	bin := testutil.BuildBinary(t, ".", "sms")

	t.Run("LISTEN through the pooler is refused at start", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "--kv-backend", "postgres", "--kv-dsn", pooled, "--addr", "127.0.0.1:0")
		cmd.Env = testutil.CleanEnv()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("sms through a pooler without --kv-listen-dsn: %v, want a failed start\n%s", err, out)
		}
		for _, want := range []string{"connection pooler", "--kv-listen-dsn"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("output %q does not say %q", out, want)
			}
		}
	})

	t.Run("serves with a direct listen connection", func(t *testing.T) {
		addr := testutil.HoldPort(t)
		p := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", pooled, "--kv-listen-dsn", direct)
		p.WaitHealthy(t, "http://"+addr)
		client := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr)
		events, _ := openWatch(t, client)
		resp, err := client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
		if err != nil {
			t.Fatalf("RegisterNode through the pooler: %v", err)
		}
		select {
		case m := <-events:
			if m.GetNode().GetUuid() != resp.GetNodeUuid() {
				t.Fatalf("watcher got %v, want the registration of %s", m, resp.GetNodeUuid())
			}
		case <-time.After(giveUp):
			t.Fatalf("the watcher never heard of the registration\n%s", p.Output)
		}
		p.Stop(t, syscall.SIGTERM)
	})
}
