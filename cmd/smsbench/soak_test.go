package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestMain lets the test binary be the soak's server process, as smsbench
// is for its own soak runs (startSoakServer runs the executable again with
// soakRoleEnv set).
func TestMain(m *testing.M) {
	if os.Getenv(soakRoleEnv) != "" {
		if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "smsbench soak server:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// A stall of the server delays every call due during it, and the open loop
// charges each of them the time since it was due: with one worker, the
// calls due in the 500 ms stall are sent after it, and a tenth of the run
// waited at least 250 ms. Measured from the send (coordinated omission),
// only the stalled call would be slow. The bounds hold however loaded the
// machine: the sleep is a floor.
func TestOpenLoopCountsLatencyFromDueTime(t *testing.T) {
	loop := openLoop{rate: 100, duration: 2 * time.Second, workers: 1, window: time.Second, timeout: 10 * time.Second}
	res := loop.run(t.Context(), func(ctx context.Context, i int64) error {
		if i == 10 {
			time.Sleep(500 * time.Millisecond)
		}
		return nil
	}, nil)
	total := res.total()
	if total.ok() != 200 || total.failed() != 0 {
		t.Fatalf("ok %d, failed %d; want 200 and 0", total.ok(), total.failed())
	}
	if p90 := time.Duration(total.lat.ValueAtQuantile(90)) * time.Microsecond; p90 < 250*time.Millisecond {
		t.Errorf("p90 %s: the calls queued behind the stall were not charged their wait", p90)
	}
	if lag := time.Duration(total.lag.ValueAtQuantile(90)) * time.Microsecond; lag < 250*time.Millisecond {
		t.Errorf("send lag p90 %s: want the queued calls' lag", lag)
	}
	// The slowest call is in the first window (calls due at 100 ms on), and
	// the slice of the stalled call (due at 100 ms) has its latency.
	if m := res.windows[0].lat.Max(); m < 500_000 {
		t.Errorf("window 1 max %d µs, want ≥ 500 ms", m)
	}
	if m, ok := res.maxDuring(res.start.Add(100*time.Millisecond), res.start.Add(150*time.Millisecond)); !ok || m < 500*time.Millisecond {
		t.Errorf("slowest call due at 100-150 ms: %s, %v; want ≥ 500 ms", m, ok)
	}
}

// A call the client reaches more than maxLag after it was due is not sent
// but counted as failed, "unsent", so that a client behind its schedule
// catches up instead of running on: with one worker and a 400 ms stall,
// the calls due in the first 300 ms of it are dropped, the rest answered.
func TestOpenLoopDropsCallsTooLateToSend(t *testing.T) {
	loop := openLoop{rate: 100, duration: time.Second, workers: 1, window: time.Second, timeout: 10 * time.Second, maxLag: 100 * time.Millisecond}
	sent := 0
	res := loop.run(t.Context(), func(ctx context.Context, i int64) error {
		sent++
		if i == 10 {
			time.Sleep(400 * time.Millisecond)
		}
		return nil
	}, nil)
	total := res.total()
	unsent := total.errs["unsent"]
	if unsent < 20 || int(total.ok())+unsent != 100 || sent != int(total.ok()) {
		t.Errorf("%d sent, %d answered, %d unsent: want ≥ 20 unsent, and the rest sent and answered", sent, total.ok(), unsent)
	}
	if n := total.lat.TotalCount(); n != 100 {
		t.Errorf("%d latencies recorded, want all 100 (the unsent at their lag)", n)
	}
}

// The schedule offers rate × duration calls, each in the window of its due
// time, and counts failures by code, a call's deadline as "timeout";
// progress sees every window once, in order.
func TestOpenLoopOffersTheSchedule(t *testing.T) {
	loop := openLoop{rate: 1000, duration: 1500 * time.Millisecond, workers: 8, window: time.Second, timeout: 50 * time.Millisecond}
	var seen []int
	res := loop.run(t.Context(), func(ctx context.Context, i int64) error {
		switch {
		case i == 1499:
			<-ctx.Done()
			return ctx.Err()
		case i%100 == 0:
			return connect.NewError(connect.CodeUnavailable, nil)
		}
		return nil
	}, func(r *loopResult, i int) {
		if w := r.windows[i]; w.taken != w.done {
			t.Errorf("window %d reported with %d of %d calls done", i, w.done, w.taken)
		}
		seen = append(seen, i)
	})
	if res.calls != 1500 || len(res.windows) != 2 {
		t.Fatalf("%d calls in %d windows, want 1500 in 2", res.calls, len(res.windows))
	}
	w0, w1 := res.windows[0], res.windows[1]
	if w0.done != 1000 || w0.ok() != 990 || w0.errs["unavailable"] != 10 {
		t.Errorf("window 1: %d done, %d ok, errors %v; want 1000, 990, 10 unavailable", w0.done, w0.ok(), w0.errs)
	}
	if w1.done != 500 || w1.ok() != 494 || w1.errs["unavailable"] != 5 || w1.errs["timeout"] != 1 {
		t.Errorf("window 2: %d done, %d ok, errors %v; want 500, 494, 5 unavailable and 1 timeout", w1.done, w1.ok(), w1.errs)
	}
	if fmt.Sprint(seen) != "[0 1]" {
		t.Errorf("progress saw windows %v, want [0 1]", seen)
	}
}

// The whole soak for real: a server process on a SQLite file, seeded, with
// a tenth of the fleet silent and a short heartbeat timeout, so that its
// sweeps mark exactly the silent nodes unhealthy (and delete every seeded
// resource report, which nothing refreshes) while the heartbeats flow;
// then the no-op baseline in a process of its own. Every call due is
// answered and reported, and the sweeps reach the report.
func TestSoakWorkload(t *testing.T) {
	if testing.Short() {
		t.Skip("starts server processes and runs for about 15 s")
	}
	var out bytes.Buffer
	err := run(t.Context(), []string{
		"--workload", "soak", "--kv-backend", "sqlite", "--kv-path", t.TempDir() + "/soak.db",
		"--register", "seed", "--nodes", "300", "--silent-nodes", "30", "--rate", "200",
		"--duration", "10s", "--baseline-duration", "2s",
		"--sweep-interval", "1s", "--heartbeat-timeout", "4s",
	}, &out)
	t.Log(out.String())
	if err != nil {
		t.Fatal(err)
	}
	report := out.String()
	for _, want := range []string{
		"offered 200/s (2000 calls due over 10s), achieved",
		"offered 200/s (400 calls due over 2s), achieved",
		"no-op Heartbeat handler",
		"windows with a sweep",
		"service / no-op baseline: p50",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, ok := range regexp.MustCompile(`(\d+) ok in`).FindAllStringSubmatch(report, -1) {
		if ok[1] != "2000" && ok[1] != "400" {
			t.Errorf("%s calls answered, want every call due", ok[1])
		}
	}
	if strings.Contains(report, "server n/a") {
		t.Error("the server process's CPU was not measured")
	}
	m := regexp.MustCompile(`sweeps: (\d+) every 1s .*; (\d+) failed; marked unhealthy (\d+), deleted (\d+) nodes and (\d+) resource reports`).FindStringSubmatch(report)
	if m == nil {
		t.Fatal("no sweep summary")
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	if n(m[1]) < 5 || n(m[2]) != 0 || n(m[3]) != 30 || n(m[4]) != 0 || n(m[5]) != 300 {
		t.Errorf("sweeps %s, failed %s, marked %s, deleted %s nodes and %s reports; want ≥ 5, 0, 30, 0, 300", m[1], m[2], m[3], m[4], m[5])
	}
}
