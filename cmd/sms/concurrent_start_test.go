package main

import (
	"database/sql"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// Three replicas started at the same moment on an empty Postgres schema all
// come up, and goose's table shows every migration applied exactly once: the
// advisory lock serializes them, and the replicas that wait find nothing
// left to do. Repeated on fresh schemas, since the race is about timing.
func TestConcurrentStartPostgres(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	const replicas, attempts = 3, 3
	for attempt := range attempts {
		t.Run(fmt.Sprintf("attempt %d", attempt), func(t *testing.T) {
			dsn := storetest.PostgresDSN(t)
			var procs []*testutil.Process
			var addrs []string
			for range replicas {
				addr := testutil.HoldPort(t)
				addrs = append(addrs, addr)
				procs = append(procs, testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", dsn))
			}
			for i, p := range procs {
				p.WaitHealthy(t, "http://"+addrs[i])
			}
			// Every replica serves, and sees what another wrote.
			first := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addrs[0])
			reg, err := first.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}})
			if err != nil {
				t.Fatalf("RegisterNode on replica 0: %v", err)
			}
			for i, addr := range addrs {
				c := smspbconnect.NewNodeServiceClient(h2cClient(), "http://"+addr)
				got, err := c.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: reg.GetNodeUuid()})
				if err != nil || !got.GetFound() {
					t.Errorf("GetNode on replica %d = %v, %v; want found", i, got, err)
				}
			}

			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			rows, err := db.QueryContext(t.Context(),
				"SELECT version_id, count(*) FROM goose_db_version GROUP BY version_id ORDER BY version_id")
			if err != nil {
				t.Fatalf("read goose_db_version: %v", err)
			}
			defer rows.Close()
			var versions []int64
			for rows.Next() {
				var v, n int64
				if err := rows.Scan(&v, &n); err != nil {
					t.Fatal(err)
				}
				if n != 1 {
					t.Errorf("goose_db_version has %d rows for version %d, want 1 (applied once)", n, v)
				}
				versions = append(versions, v)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			// Version 0 is goose's own row; then one row per file and
			// one for the Go migration of the records.
			files, err := fs.Glob(migrations.Postgres, "*.sql")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(versions), 1+len(files)+1; got != want || versions[0] != 0 {
				t.Errorf("goose_db_version versions = %v, want 0, one per migration file (%d) and the records migration", versions, len(files))
			}
			for _, p := range procs {
				p.Stop(t, syscall.SIGTERM)
			}
		})
	}
}
