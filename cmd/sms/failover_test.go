package main

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/testutil"
)

// The failover topology .ci/failover creates: two throw-away clusters of
// this Postgres version, a primary and a synchronous streaming standby.
const (
	envFailoverVersion = "SMS_TEST_FAILOVER_PG_VERSION"
	envFailoverRounds  = "SMS_FAILOVER_ROUNDS" // RELIABILITY.md's figures: 10
)

var failoverClusters = []struct {
	name string
	port int
}{{"failover_a", 5441}, {"failover_b", 5442}}

func failoverVersion(t *testing.T) string {
	t.Helper()
	v := os.Getenv(envFailoverVersion)
	if v == "" {
		msg := envFailoverVersion + " is not set; it names the Postgres version of the failover clusters .ci/failover creates on 5441 and 5442 (see RELIABILITY.md)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return v
}

func clusterDB(t *testing.T, port int) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable&connect_timeout=5", port))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// primaryIndex returns which of failoverClusters is the read-write one.
func primaryIndex(t *testing.T) int {
	t.Helper()
	for i, c := range failoverClusters {
		db := clusterDB(t, c.port)
		var primary bool
		err := db.QueryRowContext(context.Background(), "SELECT NOT pg_is_in_recovery()").Scan(&primary)
		db.Close()
		if err == nil && primary {
			return i
		}
	}
	t.Fatal("neither failover cluster is a primary; run .ci/failover")
	return 0
}

func execOn(t *testing.T, port int, stmts ...string) {
	t.Helper()
	db := clusterDB(t, port)
	defer db.Close()
	for _, s := range stmts {
		if _, err := db.ExecContext(t.Context(), s); err != nil {
			t.Fatalf("%s on :%d: %v", s, port, err)
		}
	}
}

// waitSync waits until the primary on port has a synchronous standby.
func waitSync(t *testing.T, port int) {
	t.Helper()
	db := clusterDB(t, port)
	defer db.Close()
	deadline := time.Now().Add(giveUp)
	for {
		var n int
		err := db.QueryRowContext(t.Context(), "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'").Scan(&n)
		if err == nil && n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no synchronous standby on :%d (last error %v)", port, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Postgres failover under a steady write load: SMS, connected with a
// multi-host DSN and target_session_attrs=read-write, loses its primary
// (stopped with -m immediate), the synchronous standby is promoted, and
// SMS serves again from it without a restart: calls in the gap answer
// only unavailable, no acknowledged registration is lost, and a watch
// opened before either resumes or ends with unavailable and works again.
// SMS_FAILOVER_ROUNDS sets the number of failovers (1 by default); each
// rebuilds the old primary as the new one's standby.
func TestPostgresFailover(t *testing.T) {
	version := failoverVersion(t)
	rounds := 1
	if s := os.Getenv(envFailoverRounds); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil || rounds < 1 {
			t.Fatalf("%s=%q: want a positive number", envFailoverRounds, s)
		}
	}
	bin := testutil.BuildBinary(t, ".", "sms")
	p := primaryIndex(t)
	execOn(t, failoverClusters[p].port, "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()")
	waitSync(t, failoverClusters[p].port)

	var b [6]byte
	rand.Read(b[:])
	schema := "sms_failover_" + hex.EncodeToString(b[:])
	execOn(t, failoverClusters[p].port, "CREATE SCHEMA "+schema)
	t.Cleanup(func() {
		port := failoverClusters[primaryIndex(t)].port
		db := clusterDB(t, port)
		defer db.Close()
		db.Exec("DROP SCHEMA " + schema + " CASCADE")
	})
	dsn := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/postgres?sslmode=disable&target_session_attrs=read-write&connect_timeout=2&search_path=%s",
		failoverClusters[0].port, failoverClusters[1].port, schema)
	addr := testutil.HoldPort(t)
	baseURL := "http://" + addr
	proc := testutil.StartProcess(t, bin, "--addr", addr, "--kv-backend", "postgres", "--kv-dsn", dsn)
	proc.WaitHealthy(t, baseURL)
	client := smspbconnect.NewNodeServiceClient(h2cClient(), baseURL)

	var totalAcked, totalLost int
	for round := range rounds {
		events, streamErr := openWatch(t, client)
		old, next := failoverClusters[p], failoverClusters[1-p]

		var mu sync.Mutex
		var acked []string
		codes := map[connect.Code]int{}
		ctx, stop := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					id := uuid.NewString()
					callCtx, cancel := context.WithTimeout(ctx, callTimeout)
					_, err := client.RegisterNode(callCtx, &smspb.RegisterNodeRequest{Node: &smspb.Node{Uuid: id, IpAddress: "10.0.0.1", Port: 1}})
					cancel()
					if ctx.Err() != nil {
						return
					}
					mu.Lock()
					if err == nil {
						acked = append(acked, id)
					} else {
						codes[connect.CodeOf(err)]++
					}
					mu.Unlock()
					if err != nil {
						time.Sleep(20 * time.Millisecond)
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)

		// The primary dies; the synchronous standby is promoted and, with
		// no standby of its own yet, stops waiting for one (as Patroni does
		// outside strict synchronous mode).
		pgCtlCluster(t, version, old.name, "stop", "-m", "immediate")
		failed := time.Now()
		execOn(t, next.port, "SELECT pg_promote(true, 60)",
			"ALTER SYSTEM SET synchronous_standby_names = ''", "SELECT pg_reload_conf()")
		took := waitRecovered(t, client, baseURL, failed, proc)
		time.Sleep(500 * time.Millisecond)
		stop()
		wg.Wait()

		for code, n := range codes {
			if code != connect.CodeUnavailable {
				t.Errorf("round %d: %d calls in the gap ended with %v, want unavailable\n%s", round, n, code, proc.Output)
			}
		}
		lost := 0
		for _, id := range acked {
			resp, err := client.GetNode(t.Context(), &smspb.GetNodeRequest{Uuid: id})
			if err != nil || !resp.GetFound() {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("round %d: %d of %d acknowledged registrations lost in the failover", round, lost, len(acked))
		}
		totalAcked += len(acked)
		totalLost += lost
		t.Logf("measured: failover %d: serving again %v after the primary stopped; %d writes acknowledged, %d lost; %d calls unavailable in the gap",
			round+1, took.Round(time.Millisecond), len(acked), lost, codes[connect.CodeUnavailable])
		t.Log(watchOutcome(t, client, events, streamErr))

		// The old primary comes back as the new one's synchronous standby.
		if out, err := exec.Command("../../.ci/failover", "standby", strconv.Itoa(next.port), old.name).CombinedOutput(); err != nil {
			t.Fatalf("rebuild %s as a standby: %v\n%s", old.name, err, out)
		}
		execOn(t, next.port, "ALTER SYSTEM RESET synchronous_standby_names", "SELECT pg_reload_conf()")
		waitSync(t, next.port)
		p = 1 - p
	}
	t.Logf("measured: %d failovers: %d writes acknowledged, %d lost", rounds, totalAcked, totalLost)
	proc.Stop(t, syscall.SIGTERM)
}
