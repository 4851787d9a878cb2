package placement_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
	"github.com/spear-next/sms/service/placement"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

type clock = testutil.Clock

// replica is what one SMS process has: registries and a placer over the
// shared store, on the shared clock.
type replica struct {
	nodes     *registry.NodeRegistry
	resources *registry.NodeResourceRegistry
	placer    *placement.Placer
}

func newReplica(tb testing.TB, store sqlkv.Store, c *clock) *replica {
	tb.Helper()
	view := registry.NewView(store, registry.WithClock(c.Now))
	tb.Cleanup(view.Close)
	if err := view.WaitLoaded(tb.Context()); err != nil {
		tb.Fatalf("view: %v", err)
	}
	nodes, resources := view.Nodes(), view.Resources()
	return &replica{nodes, resources,
		placement.New(store, nodes, resources, placement.Options{HeartbeatTimeout: time.Minute, Now: c.Now})}
}

// eachBackend runs fn once per backend with a fresh store and clock.
func eachBackend(t *testing.T, fn func(t *testing.T, store sqlkv.Store, c *clock)) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			fn(t, watchable(storetest.Open(t, backend)), testutil.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)))
		})
	}
}

// addNode registers a node with metadata md and, unless res is nil, its
// resource report; it returns the uuid.
func (r *replica) addNode(t *testing.T, ip string, md map[string]string, res *registry.Resource) string {
	t.Helper()
	n, err := r.nodes.Register(t.Context(), registry.Node{IPAddress: ip, Port: 8080, Metadata: md})
	if err != nil {
		t.Fatal(err)
	}
	if res != nil {
		res.NodeUUID = n.UUID
		if _, err := r.resources.Update(t.Context(), *res); err != nil {
			t.Fatal(err)
		}
	}
	return n.UUID
}

// place returns the candidates' addresses, best first.
func (r *replica) place(t *testing.T, req placement.Request) []string {
	t.Helper()
	if req.RequestID == "" {
		req.RequestID, req.TaskID = "req", "task"
	}
	d, err := r.placer.Place(t.Context(), req)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	if len(d.ID) != 36 {
		t.Fatalf("Place: decision id %q, want a uuid", d.ID)
	}
	out := make([]string, len(d.Candidates))
	for i, c := range d.Candidates {
		out[i] = c.IPAddress
	}
	return out
}

func (r *replica) report(t *testing.T, node string, o placement.Outcome) {
	t.Helper()
	if err := r.placer.Report(t.Context(), placement.Report{DecisionID: "d", RequestID: "req", TaskID: "task", NodeUUID: node, Outcome: o}); err != nil {
		t.Fatalf("Report(%v): %v", o, err)
	}
}

func wantOrder(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: candidates %v, want %v", what, got, want)
	}
}

func TestScore(t *testing.T) {
	for _, c := range []struct {
		res     registry.Resource
		penalty float64
		want    float64
	}{
		{registry.Resource{}, 0, 100},
		{registry.Resource{CPUUsagePercent: 40, MemoryUsagePercent: 20, DiskUsagePercent: 10, LoadAverage1m: 4}, 0, 70.5},
		{registry.Resource{CPUUsagePercent: 100, MemoryUsagePercent: 100, DiskUsagePercent: 100, LoadAverage1m: 64}, 0, 0},
		{registry.Resource{LoadAverage1m: 16}, 10, 40},
		{registry.Resource{}, 3, 85},
	} {
		if got := placement.Score(c.res, c.penalty); got != c.want {
			t.Errorf("Score(%+v, %v) = %v, want %v", c.res, c.penalty, got, c.want)
		}
	}
}

func TestPlaceRanksByLoad(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		r := newReplica(t, store, c)
		r.addNode(t, "10.0.0.1", nil, &registry.Resource{CPUUsagePercent: 90})
		r.addNode(t, "10.0.0.2", nil, &registry.Resource{CPUUsagePercent: 10, MemoryUsagePercent: 10})
		r.addNode(t, "10.0.0.3", nil, &registry.Resource{LoadAverage1m: 32}) // 100 - 10
		r.addNode(t, "10.0.0.4", nil, nil)                                   // no report: idle
		r.addNode(t, "10.0.0.5", nil, &registry.Resource{DiskUsagePercent: 100, MemoryUsagePercent: 50})

		// Scores: .4 100, .2 92, .3 90, .5 75, .1 55.
		wantOrder(t, "default 3", r.place(t, placement.Request{}), "10.0.0.4", "10.0.0.2", "10.0.0.3")
		wantOrder(t, "all", r.place(t, placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: 10}),
			"10.0.0.4", "10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.1")
		wantOrder(t, "one", r.place(t, placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: 1}), "10.0.0.4")
	})
}

func TestPlaceCandidates(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		ctx := t.Context()
		r := newReplica(t, store, c)
		stale := r.addNode(t, "10.0.0.1", map[string]string{"zone": "a"}, nil)
		c.Advance(2 * time.Minute) // past the heartbeat timeout of 1m
		inactive := r.addNode(t, "10.0.0.2", map[string]string{"zone": "a"}, nil)
		if _, err := r.nodes.Update(ctx, inactive, registry.Node{IPAddress: "10.0.0.2", Port: 8080, Status: "offline",
			Metadata: map[string]string{"zone": "a"}}); err != nil {
			t.Fatal(err)
		}
		r.addNode(t, "10.0.0.3", map[string]string{"zone": "a", "gpu": "yes"}, &registry.Resource{CPUUsagePercent: 10})
		r.addNode(t, "10.0.0.4", map[string]string{"zone": "b"}, &registry.Resource{CPUUsagePercent: 20})

		all := placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: 10}
		wantOrder(t, "fresh active nodes", r.place(t, all), "10.0.0.3", "10.0.0.4")
		zoneA := all
		zoneA.Labels = map[string]string{"zone": "a"}
		wantOrder(t, "labels select by metadata", r.place(t, zoneA), "10.0.0.3")
		zoneA.Labels = map[string]string{"zone": "a", "gpu": "no"}
		wantOrder(t, "every label must match", r.place(t, zoneA))

		// A heartbeat makes the stale node a candidate again.
		if _, err := r.nodes.Heartbeat(ctx, stale, nil); err != nil {
			t.Fatal(err)
		}
		wantOrder(t, "after a heartbeat", r.place(t, all), "10.0.0.1", "10.0.0.3", "10.0.0.4")
	})
}

func TestBlockedNodeReturnsAfterBackoff(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		r := newReplica(t, store, c)
		busy := r.addNode(t, "10.0.0.1", nil, nil)
		r.addNode(t, "10.0.0.2", nil, &registry.Resource{CPUUsagePercent: 50}) // 75
		heartbeat := func() {
			for _, n := range must(r.nodes.List(t.Context(), registry.ListOptions{}))(t) {
				if _, err := r.nodes.Heartbeat(t.Context(), n.UUID, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		all := placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: 10}

		r.report(t, busy, placement.OutcomeTimeout)
		wantOrder(t, "blocked for 20s", r.place(t, all), "10.0.0.2")
		c.Advance(19 * time.Second)
		wantOrder(t, "still blocked at 19s", r.place(t, all), "10.0.0.2")
		c.Advance(time.Second)
		// Back, with a penalty of one failure: 100 - 5 = 95.
		wantScores(t, r, all, map[string]float64{"10.0.0.1": 95, "10.0.0.2": 75})

		r.report(t, busy, placement.OutcomeOverloaded)
		c.Advance(39 * time.Second)
		heartbeat()
		wantOrder(t, "second failure blocks for 40s", r.place(t, all), "10.0.0.2")
		c.Advance(time.Second)
		wantScores(t, r, all, map[string]float64{"10.0.0.1": 90, "10.0.0.2": 75})

		// Outcomes that are not the node's fault change nothing.
		for _, o := range []placement.Outcome{placement.OutcomeRejected, placement.OutcomeBadRequest,
			placement.OutcomeInternal, placement.OutcomeUnknown} {
			r.report(t, busy, o)
		}
		wantScores(t, r, all, map[string]float64{"10.0.0.1": 90, "10.0.0.2": 75})

		r.report(t, busy, placement.OutcomeSuccess)
		wantScores(t, r, all, map[string]float64{"10.0.0.1": 100, "10.0.0.2": 75})
		if got := must(r.placer.Penalties(t.Context()))(t); len(got) != 0 {
			t.Fatalf("Penalties after SUCCESS = %+v, want none", got)
		}
	})
}

func TestBlockGrowsAndIsCapped(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		r := newReplica(t, store, c)
		node := r.addNode(t, "10.0.0.1", nil, nil)
		for i, want := range []time.Duration{20, 40, 80, 160, 300, 300, 300} {
			r.report(t, node, placement.OutcomeUnavailable)
			p := must(r.placer.Penalties(t.Context()))(t)
			if len(p) != 1 || p[0].ConsecutiveFailures != i+1 {
				t.Fatalf("after %d failures: penalties %+v", i+1, p)
			}
			if got := p[0].BlockedUntil.Sub(c.Now()); got != want*time.Second {
				t.Errorf("failure %d blocks for %v, want %v", i+1, got, want*time.Second)
			}
			if got := p[0].Value(c.Now()); got != 10 {
				t.Errorf("penalty while blocked = %v, want 10", got)
			}
		}
		// Forgotten an hour after the last failure.
		c.Advance(placement.PenaltyTTL - time.Second)
		if p := must(r.placer.Penalties(t.Context()))(t); len(p) != 1 || p[0].Value(c.Now()) != 7 {
			t.Fatalf("before the penalty TTL: %+v, want 7 failures", p)
		}
		c.Advance(time.Second)
		if p := must(r.placer.Penalties(t.Context()))(t); len(p) != 0 {
			t.Fatalf("after the penalty TTL: %+v, want none", p)
		}
		// A failure after the TTL starts counting afresh.
		r.report(t, node, placement.OutcomeTimeout)
		if p := must(r.placer.Penalties(t.Context()))(t); len(p) != 1 || p[0].ConsecutiveFailures != 1 {
			t.Fatalf("failure after the TTL: %+v, want 1 failure", p)
		}
	})
}

// TestReplicasShareOnePenalty: two SMS processes on one store (on Postgres,
// one database) see each other's reports.
func TestReplicasShareOnePenalty(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		a, b := newReplica(t, store, c), newReplica(t, store, c)
		node := a.addNode(t, "10.0.0.1", nil, nil)
		b.addNode(t, "10.0.0.2", nil, &registry.Resource{CPUUsagePercent: 50})
		all := placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: 10}

		a.report(t, node, placement.OutcomeTimeout)
		wantOrder(t, "replica b after a's report", b.place(t, all), "10.0.0.2")
		b.report(t, node, placement.OutcomeTimeout)
		if p := must(a.placer.Penalties(t.Context()))(t); len(p) != 1 || p[0].ConsecutiveFailures != 2 {
			t.Fatalf("replica a after b's report: %+v, want one penalty of 2 failures", p)
		}
		a.report(t, node, placement.OutcomeSuccess)
		wantOrder(t, "replica b after a's success", b.place(t, all), "10.0.0.1", "10.0.0.2")
	})
}

// TestConcurrentReportsAllCount: failures reported at once, from two
// replicas, are each counted.
func TestConcurrentReportsAllCount(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		a, b := newReplica(t, store, c), newReplica(t, store, c)
		node := a.addNode(t, "10.0.0.1", nil, nil)
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, 2*n)
		for i := range n {
			for j, r := range []*replica{a, b} {
				wg.Go(func() {
					errs[2*i+j] = r.placer.Report(context.Background(), placement.Report{DecisionID: "d", RequestID: "r",
						TaskID: "t", NodeUUID: node, Outcome: placement.OutcomeTimeout})
				})
			}
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if p := must(a.placer.Penalties(t.Context()))(t); len(p) != 1 || p[0].ConsecutiveFailures != 2*n {
			t.Fatalf("penalties %+v, want %d failures", p, 2*n)
		}
	})
}

func TestSweep(t *testing.T) {
	eachBackend(t, func(t *testing.T, store sqlkv.Store, c *clock) {
		ctx := t.Context()
		r := newReplica(t, store, c)
		node := r.addNode(t, "10.0.0.1", nil, nil)
		r.place(t, placement.Request{})
		r.report(t, node, placement.OutcomeTimeout)
		if got := must(r.placer.Sweep(ctx))(t); got != (placement.SweepResult{}) {
			t.Fatalf("Sweep of fresh records = %+v, want nothing deleted", got)
		}
		c.Advance(placement.DecisionTTL)
		if got, want := must(r.placer.Sweep(ctx))(t), (placement.SweepResult{Decisions: 1}); got != want {
			t.Fatalf("Sweep after the decision TTL = %+v, want %+v", got, want)
		}
		c.Advance(placement.PenaltyTTL)
		if got, want := must(r.placer.Sweep(ctx))(t), (placement.SweepResult{Penalties: 1}); got != want {
			t.Fatalf("Sweep after the penalty TTL = %+v, want %+v", got, want)
		}
		if n := must(sqlkv.Count(ctx, store, []byte("placement-")))(t); n != 0 {
			t.Fatalf("%d placement records left after the sweeps, want 0", n)
		}
	})
}

func TestSweepCapsDecisions(t *testing.T) {
	t.Parallel()
	store := storetest.Open(t, "memory")
	c := testutil.NewClock(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	r := newReplica(t, store, c)
	req := placement.Request{RequestID: "r", TaskID: "t"}
	var first string
	for i := range placement.MaxDecisions + 5 {
		d := must(r.placer.Place(t.Context(), req))(t)
		if i == 5 {
			first = d.ID // the oldest that must survive
		}
	}
	if got, want := must(r.placer.Sweep(t.Context()))(t), (placement.SweepResult{Decisions: 5}); got != want {
		t.Fatalf("Sweep = %+v, want %+v", got, want)
	}
	keys := must(sqlkv.Keys(t.Context(), store, []byte("placement-decision:")))(t)
	if len(keys) != placement.MaxDecisions || string(keys[0]) != "placement-decision:"+first {
		t.Fatalf("after the sweep: %d decisions, first %q; want %d, first %s", len(keys), keys[0], placement.MaxDecisions, first)
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	store := storetest.Open(t, "memory")
	r := newReplica(t, store, testutil.NewClock(time.Now()))
	ctx := t.Context()
	for _, c := range []struct {
		req   placement.Request
		field string
	}{
		{placement.Request{TaskID: "t"}, "request_id"},
		{placement.Request{RequestID: "r"}, "task_id"},
		{placement.Request{RequestID: "r", TaskID: "t", MaxCandidates: -1}, "max_candidates"},
	} {
		_, err := r.placer.Place(ctx, c.req)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field {
			t.Errorf("Place(%+v) = %v, want a validation error of %s", c.req, err, c.field)
		}
	}
	ok := placement.Report{DecisionID: "d", RequestID: "r", TaskID: "t", NodeUUID: "00000000-0000-4000-8000-000000000000"}
	for _, c := range []struct {
		edit  func(*placement.Report)
		field string
	}{
		{func(r *placement.Report) { r.DecisionID = "" }, "decision_id"},
		{func(r *placement.Report) { r.RequestID = "" }, "request_id"},
		{func(r *placement.Report) { r.TaskID = "" }, "task_id"},
		{func(r *placement.Report) { r.NodeUUID = "" }, "node_uuid"},
		{func(r *placement.Report) { r.NodeUUID = "nope" }, "node_uuid"},
		{func(r *placement.Report) { r.Outcome = 8 }, "outcome_class"},
	} {
		rep := ok
		c.edit(&rep)
		err := r.placer.Report(ctx, rep)
		var ve *registry.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("Report(%+v) = %v, want a validation error of %s", rep, err, c.field)
		}
	}
}

// wantScores places every candidate and checks their scores.
func wantScores(t *testing.T, r *replica, req placement.Request, want map[string]float64) {
	t.Helper()
	d := must(r.placer.Place(t.Context(), req))(t)
	got := map[string]float64{}
	for _, c := range d.Candidates {
		got[c.IPAddress] = c.Score
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("scores %v, want %v", got, want)
	}
}

func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// watchable returns store reporting its writes, as cmd/sms opens it, so that
// replicas' views over one store see each other's writes.
func watchable(store sqlkv.Store) sqlkv.Store {
	if _, ok := store.(sqlkv.Watchable); ok {
		return store
	}
	return watchstore.New(store)
}
