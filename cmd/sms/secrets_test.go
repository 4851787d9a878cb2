package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// A server with a DSN password and a bearer token, logging at debug level in
// both formats, serving good, missing and wrong tokens, never writes the
// token, the password, or a wrong token a client sent to its log. (The test
// database trusts 127.0.0.1, so any password is accepted.)
func TestSecretsNeverLogged(t *testing.T) {
	const (
		token    = "tok-7f3a9c2e51"
		password = "pw-e4d1b08a66"
		wrong    = "wrong-c0ffee1234"
	)
	u, err := url.Parse(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), password)
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) {
			file := writeFile(t, "token", token)
			addr, logs := startRun(t, map[string]string{"KV_DSN": u.String()},
				"--kv-backend", "postgres", "--auth-token-file", file, "--log-level", "debug", "--log-format", format)
			withToken := func(tok string) smspbconnect.NodeServiceClient {
				return smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr,
					connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
						return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
							if tok != "" {
								req.Header().Set("Authorization", "Bearer "+tok)
							}
							return next(ctx, req)
						}
					})))
			}
			ctx := context.Background()
			for _, tok := range []string{"", wrong} {
				_, err := withToken(tok).ListNodes(ctx, &smspb.ListNodesRequest{})
				if got, want := connect.CodeOf(err), connect.CodeUnauthenticated; got != want {
					t.Errorf("ListNodes with token %q: code %v, want %v", tok, got, want)
				}
			}
			registerAndGet(t, withToken(token))
			_, err := withToken(token).GetNode(ctx, &smspb.GetNodeRequest{Uuid: "bad"})
			if connect.CodeOf(err) != connect.CodeInvalidArgument {
				t.Errorf("GetNode(bad) = %v, want invalid_argument", err)
			}
			out := logs.String()
			if !strings.Contains(out, "sms listening") || !strings.Contains(out, "unauthenticated") {
				t.Fatalf("logs lack the startup line or the unauthenticated calls; the test checks nothing:\n%s", out)
			}
			for _, secret := range []string{token, password, wrong} {
				if strings.Contains(out, secret) {
					t.Errorf("logs contain %q:\n%s", secret, out)
				}
			}
		})
	}
}
