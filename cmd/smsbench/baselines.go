package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/internal/records"
	"github.com/spear-next/sms/sqlkv"
)

// baselines measures, for the single-RPC workload, the storage limit (the
// same writes or reads as plain SQL on a second store of the same backend
// and settings) and the RPC limit (a no-op handler of the same protocol),
// interleaved with the service in c.repeat rounds (the machine's speed
// drifts), and prints the medians and the service's rate as a ratio of each
// and of their combination.
func baselines(ctx context.Context, c config, dir string, out io.Writer, service func() *stats) error {
	if c.workload == "stats" {
		return latencyBaseline(ctx, c, out, service)
	}
	storage, closeStorage, err := storageLimit(ctx, c, dir)
	if err != nil {
		return fmt.Errorf("storage baseline: %w", err)
	}
	defer closeStorage()
	rpcs, err := rpcLimits(ctx, c)
	for _, r := range rpcs {
		defer r.close()
	}
	if err != nil {
		return fmt.Errorf("rpc baseline: %w", err)
	}
	var svc, sto, comb, ratio, perRPC []float64
	rp := make([][]float64, len(rpcs))
	for round := range c.repeat {
		s, err := storage()
		if err != nil {
			return fmt.Errorf("storage baseline: %w", err)
		}
		var rates []string
		for i, lim := range rpcs {
			rs, err := lim.measure()
			if err != nil {
				return fmt.Errorf("rpc baseline %s: %w", lim.name, err)
			}
			rp[i] = append(rp[i], rs.rate())
			rates = append(rates, fmt.Sprintf("%s %s/s", lim.name, fmtRate(rs.rate())))
		}
		v := service().rate()
		r := rp[0][round]
		cb := 1 / (1/s + 1/r)
		svc, sto, comb, ratio = append(svc, v), append(sto, s), append(comb, cb), append(ratio, v/cb)
		perRPC = append(perRPC, v/r)
		fmt.Fprintf(out, "round %d: service %s/s, storage %s/s, %s, combined %s/s, service/combined %.2f\n",
			round+1, fmtRate(v), fmtRate(s), strings.Join(rates, ", "), fmtRate(cb), v/cb)
	}
	fmt.Fprintf(out, "\n%s, %d clients, median of %d rounds [min-max]:\n", c.workload, c.concurrency, c.repeat)
	fmt.Fprintf(out, "  service                     %s\n", spread(svc))
	fmt.Fprintf(out, "  storage limit (raw SQL)     %s   service/storage %.2f\n", spread(sto), median(svc)/median(sto))
	for i, lim := range rpcs {
		fmt.Fprintf(out, "  %-27s %s   service/rpc %.2f", lim.name, spread(rp[i]), median(svc)/median(rp[i]))
		if i > 0 {
			fmt.Fprintf(out, "   %s/%s %.2f", lim.short, rpcs[0].short, median(rp[i])/median(rp[0]))
		}
		fmt.Fprintln(out)
	}
	fmt.Fprintf(out, "  combined 1/(1/s+1/r)        %s   (r: %s)\n", spread(comb), rpcs[0].name)
	fmt.Fprintf(out, "  service/combined            %.2f [%.2f-%.2f]\n", median(ratio), slices.Min(ratio), slices.Max(ratio))
	// The ratio within each round is steadier than the ratio of medians
	// when the machine's speed changes between rounds.
	fmt.Fprintf(out, "  service/rpc, per round      %.2f [%.2f-%.2f]   (rpc: %s)\n", median(perRPC), slices.Min(perRPC), slices.Max(perRPC), rpcs[0].name)
	return nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func spread(v []float64) string {
	return fmt.Sprintf("%8s/s [%s-%s]", fmtRate(median(v)), fmtRate(slices.Min(v)), fmtRate(slices.Max(v)))
}

// storageLimit sets up the workload's storage work straight on the
// database and returns a function that measures one round of it.
func storageLimit(ctx context.Context, c config, dir string) (func() (float64, error), func(), error) {
	store, closeStore, err := baselineStore(ctx, c, dir)
	if err != nil {
		return nil, nil, err
	}
	if store == nil { // memory: the store is the storage
		store, err = openStore(ctx, c, "")
		if err != nil {
			return nil, nil, err
		}
		closeStore = func() { store.Close() }
	}
	n := c.nodes
	if c.storageNodes > 0 {
		n = c.storageNodes
	}
	ids := make([]string, n)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	slices.Sort(ids)
	// Values of the size and format the registry stores.
	node := (&records.Node{IP: "10.0.0.1", Port: 8080, HTTPPort: 8081, Status: "active", RegisteredAt: 1764000000000000000, Metadata: map[string]string{"rack": "r1", "zone": "a"}}).AppendProto(nil)
	hb := (&records.Heartbeat{LastHeartbeat: 1764000000000000000, HealthInfo: health}).AppendProto(nil)
	var batch []sqlkv.Entry
	for _, id := range ids {
		batch = append(batch, sqlkv.Entry{Key: []byte("node:" + id), Value: node}, sqlkv.Entry{Key: []byte("heartbeat:" + id), Value: hb})
		if len(batch) >= 2000 {
			if err := sqlkv.BatchPut(ctx, store, batch); err != nil {
				closeStore()
				return nil, nil, err
			}
			batch = batch[:0]
		}
	}
	if err := sqlkv.BatchPut(ctx, store, batch); err != nil {
		closeStore()
		return nil, nil, err
	}

	raw := rawOf(store)
	if raw == nil {
		raw = kvRaw{store}
	}
	name := c.workload
	return func() (float64, error) {
		st := phase(ctx, c.duration, c.concurrency, []string{name}, func(ctx context.Context, w int, rec map[string]*recorder) {
			rng := rand.New(rand.NewPCG(uint64(w), 3))
			r := rec[name]
			for ctx.Err() == nil {
				id := ids[rng.IntN(len(ids))]
				switch name {
				case "heartbeat":
					r.call(func() error { return raw.Put(ctx, []byte("heartbeat:"+id), hb) })
				case "get":
					r.call(func() error { return raw.Get(ctx, []byte("node:"+id)) })
				case "list":
					r.call(func() error {
						_, err := raw.Range(ctx, []byte("node:"+id), []byte("node;"), c.pageSize)
						return err
					})
				}
			}
		})
		if n := len(st[name].errs); n > 0 {
			return 0, fmt.Errorf("errors: %v", st[name].errs)
		}
		return st[name].rate(), nil
	}, closeStore, nil
}

// kvRaw is the memory store as its own baseline.
type kvRaw struct{ s sqlkv.Store }

func (k kvRaw) Put(ctx context.Context, key, value []byte) error {
	_, err := sqlkv.PutValue(ctx, k.s, key, value)
	return err
}

func (k kvRaw) Get(ctx context.Context, key []byte) error {
	_, err := k.s.Get(ctx, key)
	return err
}

func (k kvRaw) Range(ctx context.Context, lo, hi []byte, limit int) (int, error) {
	e, err := k.s.Range(ctx, sqlkv.RangeOptions{Start: lo, End: hi, Limit: limit})
	return len(e), err
}

// latencyBaseline is the baseline of a workload whose target is a latency
// (GetClusterStats p99): the service and the no-op servers of rpcLimits in
// c.repeat interleaved rounds, their p50 and p99.
func latencyBaseline(ctx context.Context, c config, out io.Writer, service func() *stats) error {
	rpcs, err := rpcLimits(ctx, c)
	for _, r := range rpcs {
		defer r.close()
	}
	if err != nil {
		return fmt.Errorf("rpc baseline: %w", err)
	}
	var svc99 []float64
	rpc99 := make([][]float64, len(rpcs))
	for round := range c.repeat {
		var noops []string
		for i, lim := range rpcs {
			rs, err := lim.measure()
			if err != nil {
				return fmt.Errorf("rpc baseline %s: %w", lim.name, err)
			}
			rpc99[i] = append(rpc99[i], ms(rs.pct(0.99)))
			noops = append(noops, fmt.Sprintf("%s %s/s p50 %s p99 %s", lim.name, fmtRate(rs.rate()), fmtDur(rs.pct(0.5)), fmtDur(rs.pct(0.99))))
		}
		s := service()
		svc99 = append(svc99, ms(s.pct(0.99)))
		fmt.Fprintf(out, "round %d: service %s/s p50 %s p99 %s; %s\n", round+1,
			fmtRate(s.rate()), fmtDur(s.pct(0.5)), fmtDur(s.pct(0.99)), strings.Join(noops, "; "))
	}
	fmt.Fprintf(out, "\n%s, %d clients, p99 median of %d rounds [min-max]:\n", c.workload, c.concurrency, c.repeat)
	fmt.Fprintf(out, "  service                     %.2fms [%.2f-%.2f]\n", median(svc99), slices.Min(svc99), slices.Max(svc99))
	for i, lim := range rpcs {
		fmt.Fprintf(out, "  %-27s %.2fms [%.2f-%.2f]\n", lim.name, median(rpc99[i]), slices.Min(rpc99[i]), slices.Max(rpc99[i]))
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// rpcLimit is one RPC baseline: a no-op handler behind one server.
type rpcLimit struct {
	name, short string
	measure     func() (*stats, error)
	close       func()
}

// rpcLimits starts the no-op servers of c's protocol in-process; the first
// is the RPC limit the service is combined with. For gRPC: grpc-go's bare
// server (the limit), the same behind SMS's grpc-go policy (what the
// --grpc-addr listener adds), and connect-go's (the --addr listener's
// transport); for Connect and gRPC-web: connect-go's.
func rpcLimits(ctx context.Context, c config) ([]rpcLimit, error) {
	type server struct {
		name, short string
		start       func() (string, func(), error)
	}
	connectNoop := func() (string, func(), error) {
		return serveOne(newNoopHandler(c.pageSize, 0))
	}
	servers := []server{{"rpc limit (no-op handler)", "connect-go", connectNoop}}
	if c.protocol == "grpc" {
		servers = []server{
			{"grpc-go no-op (bare)", "bare", func() (string, func(), error) { return serveGRPC(noopGRPCServer(c.pageSize, 0, false)) }},
			{"grpc-go no-op + SMS policy", "policy", func() (string, func(), error) { return serveGRPC(noopGRPCServer(c.pageSize, 0, true)) }},
			{"connect-go no-op", "connect-go", connectNoop},
		}
	}
	var limits []rpcLimit
	for _, s := range servers {
		url, stop, err := s.start()
		if err != nil {
			return limits, err
		}
		client, err := newClient(url, c.protocol, c.concurrency)
		if err != nil {
			stop()
			return limits, err
		}
		limits = append(limits, rpcLimit{name: s.name, short: s.short, measure: func() (*stats, error) { return rpcRound(ctx, c, client) }, close: stop})
	}
	return limits, nil
}

// rpcRound measures one round of the workload's RPC against a no-op
// server.
func rpcRound(ctx context.Context, c config, client nodeClient) (*stats, error) {
	name := c.workload
	st := phase(ctx, c.duration, c.concurrency, []string{name}, func(ctx context.Context, w int, rec map[string]*recorder) {
		r := rec[name]
		id := uuid.NewString()
		for ctx.Err() == nil {
			switch name {
			case "heartbeat":
				r.call(func() error {
					_, err := client.Heartbeat(ctx, &sms.HeartbeatRequest{Uuid: id, HealthInfo: health})
					return err
				})
			case "get":
				r.call(func() error {
					_, err := client.GetNode(ctx, &sms.GetNodeRequest{Uuid: id})
					return err
				})
			case "list":
				r.call(func() error {
					_, err := client.ListNodes(ctx, &sms.ListNodesRequest{PageSize: int32(c.pageSize)})
					return err
				})
			case "stats":
				r.call(func() error { return statsCall(ctx, client) })
			}
		}
	})
	if n := len(st[name].errs); n > 0 {
		return nil, fmt.Errorf("errors: %v", st[name].errs)
	}
	return st[name], nil
}
