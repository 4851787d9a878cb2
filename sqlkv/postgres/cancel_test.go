package postgres

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/spear-next/sms/internal/faultproxy"
)

// A statement whose context ends must not make pgx send a cancel request
// when the store runs unprepared, behind a pooler (see finishBeforeClosing).
// A cancel request comes on a connection of its own, so a proxy in front of
// the server (faultproxy, without faults) counts them: one connection for
// the session, and with pgx's default a second for the cancel request.
func TestPooledStatementsSendNoCancelRequest(t *testing.T) {
	dsn := os.Getenv("KV_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("KV_TEST_POSTGRES_DSN is not set (required under CI)")
		}
		t.Skip("KV_TEST_POSTGRES_DSN is not set")
	}
	for _, tc := range []struct {
		name   string
		pooled bool
		want   int64
	}{
		{"pgx default closes the connection and sends a cancel request", false, 2},
		{"pooled lets the statement finish", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, proxied, err := faultproxy.StartURL(dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			cfg, err := pgx.ParseConfig(proxied)
			if err != nil {
				t.Fatal(err)
			}
			if tc.pooled {
				finishBeforeClosing(cfg)
			}
			conn, err := pgx.ConnectConfig(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())

			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			_, err = conn.Exec(ctx, "SELECT pg_sleep(0.5)")
			if tc.pooled {
				if err != nil {
					t.Fatalf("a statement that finishes within the grace: %v", err)
				}
				if err := conn.Ping(t.Context()); err != nil {
					t.Fatalf("the connection after it: %v", err)
				}
			} else if err == nil {
				t.Fatal("Exec past its deadline succeeded")
			}
			// pgx sends the cancel request before closing the connection;
			// wait for the close, and the proxy has counted every dial.
			if !tc.pooled {
				<-conn.PgConn().CleanupDone()
			}
			if got := p.Accepted(); got != tc.want {
				t.Fatalf("the proxy took %d connections, want %d", got, tc.want)
			}
		})
	}
}
