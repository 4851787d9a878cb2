package service_test

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	smspb "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/faultproxy"
	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// giveUp only keeps a broken build from hanging a test; the tests assert
// outcomes, and the times they log ("measured:") are figures.
const giveUp = time.Minute

// A silent network between SMS and Postgres (a proxy that holds every byte,
// connections left open): every call ends with unavailable, none with
// deadline_exceeded or anything else; /healthz turns 503; goroutines do not
// pile up; and once the network heals, calls succeed and /healthz is 200
// again without a restart. Then with latency injected, no call fails.
func TestSilentNetworkToPostgres(t *testing.T) {
	// Both server stacks: connect-go's (one port) and grpc-go's.
	for _, p := range []testutil.Protocol{connectHTTP, grpcGo} {
		t.Run(p.Name, func(t *testing.T) { testSilentNetwork(t, p) })
	}
}

func testSilentNetwork(t *testing.T, p testutil.Protocol) {
	proxy, dsn, err := faultproxy.StartURL(storetest.PostgresDSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	store, err := kvstore.Open(t.Context(), kvstore.Postgres(dsn))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := newEnv(t, store, p, nil)
	node := must(e.client.RegisterNode(t.Context(), &smspb.RegisterNodeRequest{Node: &smspb.Node{IpAddress: "10.0.0.1", Port: 1}}))(t).GetNodeUuid()
	call := func(ctx context.Context, i int) error {
		if i%2 == 0 {
			_, err := e.client.GetNode(ctx, &smspb.GetNodeRequest{Uuid: node})
			return err
		}
		_, err := e.client.Heartbeat(ctx, &smspb.HeartbeatRequest{Uuid: node})
		return err
	}
	baseline := runtime.NumGoroutine()

	t.Run("blackhole", func(t *testing.T) {
		proxy.Blackhole(true)
		const workers, deadline = 8, 2 * time.Second
		var mu sync.Mutex
		codes := map[connect.Code]int{} // answers from SMS
		cutByClient := 0
		examples := map[connect.Code]error{}
		var slowest time.Duration
		peak := 0
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				for i := w; ; i += workers {
					select {
					case <-stop:
						return
					default:
					}
					ctx, cancel := context.WithTimeout(context.Background(), deadline)
					start := time.Now()
					err := call(ctx, i)
					took := time.Since(start)
					expired := ctx.Err() != nil
					cancel()
					mu.Lock()
					code := connect.CodeOf(err)
					if code == connect.CodeDeadlineExceeded && expired {
						// The client's own deadline cut the call: SMS
						// answered unavailable too late for it (the machine
						// is loaded). Bounded by the deadline all the same.
						cutByClient++
					} else {
						if code != connect.CodeUnavailable && examples[code] == nil {
							examples[code] = fmt.Errorf("after %v: %w", took.Round(time.Millisecond), err)
						}
						codes[code]++
					}
					slowest = max(slowest, took)
					peak = max(peak, runtime.NumGoroutine())
					mu.Unlock()
				}
			})
		}
		silent := time.Now()
		waitHealthz(t, e, http.StatusServiceUnavailable)
		notServing := time.Since(silent)
		time.Sleep(deadline) // every worker has had a call end in the silence
		close(stop)
		wg.Wait()
		for code, n := range codes {
			if code != connect.CodeUnavailable {
				t.Errorf("SMS answered %d calls in the silence with %v, want unavailable only; e.g. %v", n, code, examples[code])
			}
		}
		if codes[connect.CodeUnavailable] == 0 {
			t.Fatal("no call ended in the silence: the test did not test anything")
		}
		// Each in-flight call holds a few goroutines (HTTP/2 stream,
		// handler, driver); a pile-up would grow with the calls made.
		if limit := baseline + 20*workers; peak > limit {
			t.Errorf("%d goroutines during the silence (baseline %d, %d workers): calls pile up", peak, baseline, workers)
		}
		t.Logf("measured: silent network: %d calls answered unavailable, %d cut by the client's deadline first; slowest %v with a %v deadline; /healthz 503 after %v; peak goroutines %d (baseline %d)",
			codes[connect.CodeUnavailable], cutByClient, slowest.Round(time.Millisecond), deadline, notServing.Round(time.Millisecond), peak, baseline)

		proxy.Blackhole(false)
		healed := time.Now()
		for {
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			err := call(ctx, 1)
			cancel()
			if err == nil {
				break
			}
			if time.Since(healed) > giveUp {
				t.Fatalf("calls still fail after the network healed: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		waitHealthz(t, e, http.StatusOK)
		t.Logf("measured: silent network: serving again %v after it healed", time.Since(healed).Round(time.Millisecond))
		for n := runtime.NumGoroutine(); n > baseline+10; n = runtime.NumGoroutine() {
			if time.Since(healed) > giveUp {
				t.Fatalf("%d goroutines after healing, baseline %d: leaked", n, baseline)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("latency", func(t *testing.T) {
		run := func() []time.Duration {
			const workers, calls = 4, 50
			var mu sync.Mutex
			var took []time.Duration
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range calls {
						ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
						start := time.Now()
						err := call(ctx, w+i)
						d := time.Since(start)
						cancel()
						if err != nil {
							t.Errorf("call with latency injected: %v", err)
							return
						}
						mu.Lock()
						took = append(took, d)
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			slices.Sort(took)
			return took
		}
		p := func(ds []time.Duration, q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
		base := run()
		const delay = 20 * time.Millisecond
		proxy.Delay(delay)
		defer proxy.Delay(0)
		slow := run()
		if t.Failed() {
			return
		}
		t.Logf("measured: latency: without delay p50 %v p99 %v; with %v each way p50 %v p99 %v (p99 ratio %.1fx)",
			p(base, .5), p(base, .99), delay, p(slow, .5), p(slow, .99), float64(p(slow, .99))/float64(p(base, .99)))
	})
}

// waitHealthz polls GET /healthz until it answers want.
func waitHealthz(t *testing.T, e *env, want int) {
	t.Helper()
	deadline := time.Now().Add(giveUp)
	for {
		c := &http.Client{Timeout: 10 * time.Second}
		resp, err := c.Get(e.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz never answered %d (gave up after %v)", want, giveUp)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
