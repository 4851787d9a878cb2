package service_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service"
)

// TestRequestLog: at debug level every call is logged once it ends, with
// procedure, code, duration and peer, rejected calls and streams included;
// never the body or the token. At info level nothing is.
func TestRequestLog(t *testing.T) {
	t.Parallel()
	const token = "tok-3f9a1c"
	for _, p := range protocols {
		t.Run(p.Name, func(t *testing.T) {
			t.Parallel()
			var logs testutil.SyncBuffer
			e := newEnv(t, openStore(t, "memory"), p, func(c *service.Config) {
				c.AuthToken = token
				c.Logger = slogTo(&logs)
			})
			withToken := connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
				return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
					req.Header().Set("Authorization", "Bearer "+token)
					return next(ctx, req)
				}
			}))
			withTok := p
			withTok.Opts = append(p.Opts[:len(p.Opts):len(p.Opts)], withToken)
			authed := newClient(e, withTok)
			must(authed.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.9.8.7", Port: 8080}}))(t)
			_, err := e.client.ListNodes(t.Context(), &smspb.ListNodesRequest{})
			wantCode(t, err, connect.CodeUnauthenticated)

			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			var rpcs []string
			for _, l := range lines {
				if strings.Contains(l, "msg=rpc ") {
					rpcs = append(rpcs, l)
				}
			}
			if len(rpcs) != 2 {
				t.Fatalf("rpc log lines = %q, want 2", rpcs)
			}
			for i, want := range []string{"procedure=/sms.NodeService/RegisterNode", "procedure=/sms.NodeService/ListNodes"} {
				code := []string{"code=ok", "code=unauthenticated"}[i]
				protocol := p.Name
				if p.GRPCGo {
					protocol = "grpc"
				}
				for _, field := range []string{"level=DEBUG", want, code, "duration=", "peer=127.0.0.1:", "protocol=" + protocol} {
					if !strings.Contains(rpcs[i], field) {
						t.Errorf("rpc log line %q lacks %q", rpcs[i], field)
					}
				}
			}
			if out := logs.String(); strings.Contains(out, token) || strings.Contains(out, "10.9.8.7") {
				t.Errorf("logs hold the token or the request body:\n%s", out)
			}
		})
	}

	t.Run("nothing at info level", func(t *testing.T) {
		var logs testutil.SyncBuffer
		e := newEnv(t, openStore(t, "memory"), connectHTTP, func(c *service.Config) {
			c.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		must(e.client.ListNodes(ctx, &smspb.ListNodesRequest{}))(t)
		if strings.Contains(logs.String(), "msg=rpc") {
			t.Errorf("info-level logs hold request lines:\n%s", logs.String())
		}
	})
}
