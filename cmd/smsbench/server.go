package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	sms "github.com/spear-next/sms/gen/sms"
	"github.com/spear-next/sms/gen/sms/smspbconnect"
	"github.com/spear-next/sms/internal/procstat"
	"github.com/spear-next/sms/internal/rawsql"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/postgres"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// openStore opens the configured backend through kvstore, the one store
// factory; the SQLite file is path.
func openStore(ctx context.Context, c config, path string) (sqlkv.Store, error) {
	sc := kvstore.Config{Backend: c.backend}
	switch c.backend {
	case kvstore.BackendSQLite:
		sc.Path, sc.SQLiteSynchronous, sc.GroupLanes = path, c.sync, c.groupLanes
	case kvstore.BackendPostgres:
		sc.DSN, sc.GroupLanes = c.dsn, c.groupLanes
	}
	return kvstore.Open(ctx, sc)
}

// serve serves h on a loopback port the way cmd/sms does (HTTP/1.1 and
// h2c) and returns its URL and a stop function.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	srv := &http.Server{Handler: h, Protocols: &protocols, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}

// startServer starts SMS in-process on store (see watchable), admitting at
// most maxWatchers WatchNodes streams: its HTTP server, or with grpcGo its
// grpc-go server (the --grpc-addr listener of SPEAR's layout). It returns
// the server's URL and its node registry (the idle workload sweeps through
// it, as cmd/sms's sweeper does); stop stops the server and its registry
// view.
func startServer(store sqlkv.Store, maxWatchers int, grpcGo bool) (string, *registry.NodeRegistry, func(), error) {
	view := registry.NewView(store)
	view.Start()
	cfg := service.Config{
		Nodes:       view.Nodes(),
		Resources:   view.Resources(),
		Store:       store,
		MaxWatchers: maxWatchers,
	}
	var (
		url  string
		stop func()
		err  error
	)
	if grpcGo {
		url, stop, err = serveGRPC(service.NewGRPCServer(cfg))
	} else {
		url, stop, err = serve(service.NewHandler(cfg))
	}
	if err != nil {
		view.Close()
		return "", nil, nil, err
	}
	return url, cfg.Nodes, func() { stop(); view.Close() }, nil
}

// watchable returns store, wrapped to report its writes in process when it
// cannot watch itself, as cmd/sms does for memory and SQLite. Everything the
// run writes (seeding too) goes through the wrapper, so the server's
// watchers see it.
func watchable(store sqlkv.Store) sqlkv.Store {
	if _, ok := store.(sqlkv.Watchable); ok {
		return store
	}
	return watchstore.New(store)
}

// listenerNote names the in-process listener gRPC calls go to.
func listenerNote(c config) string {
	switch {
	case c.protocol != "grpc":
		return ""
	case c.addr != "":
		return " (grpc-go client)"
	case c.listener == "grpc":
		return " (grpc-go client, grpc-go server: the --grpc-addr listener)"
	}
	return " (grpc-go client, connect-go server: the --addr / --http-addr listener)"
}

// connectGRPCClient is connect-go's gRPC client of url, over one
// prior-knowledge HTTP/2 connection: the streams of the watchers and watch
// workloads.
func connectGRPCClient(url string) smspbconnect.NodeServiceClient {
	protocols := new(http.Protocols)
	protocols.SetUnencryptedHTTP2(true)
	return smspbconnect.NewNodeServiceClient(&http.Client{Transport: &http.Transport{Protocols: protocols}}, url, connect.WithGRPC())
}

// newClient returns a NodeService client for url speaking protocol, with
// the transports smsctl uses: Connect and gRPC-web over HTTP/1.1 with a
// pool of conns connections (connect-h2c: Connect over one prior-knowledge
// HTTP/2 connection); gRPC with grpc-go's client over one HTTP/2
// connection.
func newClient(url, protocol string, conns int) (nodeClient, error) {
	if protocol == "grpc" {
		return newGRPCGoClient(url)
	}
	return newConnectClient(url, protocol, conns), nil
}

// watchClient returns connect-go's client of url for WatchNodes streams
// (the watch workload reads them through connect's stream API): for gRPC
// connectGRPCClient, otherwise newClient's Connect client.
func watchClient(url, protocol string, conns int) smspbconnect.NodeServiceClient {
	if protocol == "grpc" {
		return connectGRPCClient(url)
	}
	return newConnectClient(url, protocol, conns)
}

// newConnectClient is newClient's connect-go client (every protocol but
// grpc).
func newConnectClient(url, protocol string, conns int) smspbconnect.NodeServiceClient {
	transport := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: 0}
	protocols := new(http.Protocols)
	var opts []connect.ClientOption
	switch protocol {
	case "grpcweb":
		opts = append(opts, connect.WithGRPCWeb())
		protocols.SetHTTP1(true)
	case "connect-h2c":
		protocols.SetUnencryptedHTTP2(true)
	default:
		protocols.SetHTTP1(true)
	}
	transport.Protocols = protocols
	return smspbconnect.NewNodeServiceClient(&http.Client{Transport: transport}, url, opts...)
}

// noop answers Heartbeat, GetNode, ListNodes, GetClusterStats and
// WatchNodes with canned responses of the size the real service sends: the
// RPC limit. Its watch snapshot has watchNodes nodes.
type noop struct {
	smspbconnect.UnimplementedNodeServiceHandler
	node       *sms.Node
	page       []*sms.Node
	watchNodes int
}

func newNoop(pageSize, watchNodes int) *noop {
	n := fakeNode("00000000-0000-4000-8000-000000000000")
	n.Status, n.LastHeartbeat, n.RegisteredAt = "active", time.Now().Unix(), time.Now().Unix()
	page := make([]*sms.Node, pageSize)
	for i := range page {
		page[i] = n
	}
	return &noop{node: n, page: page, watchNodes: watchNodes}
}

func (h *noop) GetClusterStats(context.Context, *sms.GetClusterStatsRequest) (*sms.GetClusterStatsResponse, error) {
	return &sms.GetClusterStatsResponse{
		TotalNodes: 1_000_000, NodesByStatus: map[string]int64{"active": 999_000, "inactive": 500, "unhealthy": 400, "decommissioning": 100},
		NodesWithResources: 1_000_000, AverageCpuUsagePercent: 50.1, AverageMemoryUsagePercent: 49.9,
		TotalMemoryBytes: 64 << 50, UsedMemoryBytes: 27 << 50, HighLoadNodes: 1234,
	}, nil
}

func (h *noop) Heartbeat(context.Context, *sms.HeartbeatRequest) (*sms.HeartbeatResponse, error) {
	return &sms.HeartbeatResponse{Success: true, Message: "heartbeat recorded", ServerTimestamp: time.Now().Unix()}, nil
}

func (h *noop) GetNode(context.Context, *sms.GetNodeRequest) (*sms.GetNodeResponse, error) {
	return &sms.GetNodeResponse{Found: true, Node: h.node}, nil
}

func (h *noop) ListNodes(context.Context, *sms.ListNodesRequest) (*sms.ListNodesResponse, error) {
	return &sms.ListNodesResponse{Nodes: h.page, NextPageToken: "x"}, nil
}

func fakeNode(id string) *sms.Node {
	return &sms.Node{
		Uuid: id, IpAddress: "10.0.0.1", Port: 8080, HttpPort: 8081,
		Metadata: map[string]string{"zone": "a", "rack": "r1"},
	}
}

// dbSize returns the database's size on disk: the SQLite file and its WAL,
// or the kv table of Postgres with its indexes and TOAST; -1 if unknown.
func dbSize(ctx context.Context, c config, path string) int64 {
	switch c.backend {
	case "sqlite":
		var total int64 = -1
		for _, p := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(p); err == nil {
				total = max(total, 0) + fi.Size()
			}
		}
		return total
	case "postgres":
		cfg, err := pgxConfig(c.dsn)
		if err != nil {
			return -1
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		var n int64
		if err := db.QueryRowContext(ctx, `SELECT pg_total_relation_size('kv')`).Scan(&n); err != nil {
			return -1
		}
		return n
	}
	return -1
}

// sizeDetail says what dbSize counts: for SQLite, the main file and the
// WAL apart (the WAL is reused, not truncated, after a checkpoint, so it
// stays at its high-water mark).
func sizeDetail(c config, path string) string {
	if c.backend != "sqlite" {
		return ""
	}
	size := func(p string) int64 {
		fi, err := os.Stat(p)
		if err != nil {
			return 0
		}
		return fi.Size()
	}
	return fmt.Sprintf(" (file %d bytes + WAL %d bytes)", size(path), size(path+"-wal"))
}

// rss returns the resident set size of process pid (0: this one), or -1.
func rss(pid int) int64 { return procstat.RSS(pid) }

func startProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// baselineStore opens a second, empty store of the same backend and
// settings for the storage baseline: a new SQLite file next to path, or a
// private schema in the Postgres database.
func baselineStore(ctx context.Context, c config, dir string) (sqlkv.Store, func(), error) {
	switch c.backend {
	case "sqlite":
		s, err := openStore(ctx, c, filepath.Join(dir, "baseline.db"))
		if err != nil {
			return nil, nil, err
		}
		return s, func() { s.Close() }, nil
	case "postgres":
		cfg, err := pgxConfig(c.dsn)
		if err != nil {
			return nil, nil, err
		}
		db := stdlib.OpenDB(*cfg)
		defer db.Close()
		const schema = "smsbench_baseline"
		if _, err := db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+schema+` CASCADE; CREATE SCHEMA `+schema); err != nil {
			return nil, nil, err
		}
		bc := c
		bc.dsn = postgres.WithSearchPath(c.dsn, schema)
		s, err := openStore(ctx, bc, "")
		if err != nil {
			return nil, nil, err
		}
		return s, func() {
			s.Close()
			db := stdlib.OpenDB(*cfg)
			db.Exec(`DROP SCHEMA IF EXISTS ` + schema + ` CASCADE`)
			db.Close()
		}, nil
	}
	return nil, nil, nil
}

// rawStore is the raw-SQL baseline of a SQL store (internal/rawsql).
type rawStore interface {
	Put(ctx context.Context, key, value []byte) error
	Get(ctx context.Context, key []byte) error
	Range(ctx context.Context, lo, hi []byte, limit int) (int, error)
}

// rawOf returns s's raw-SQL baseline, or nil for the memory store.
func rawOf(s sqlkv.Store) rawStore {
	if b := rawsql.Of(s); b != nil {
		return b
	}
	return nil
}

func pgxConfig(dsn string) (*pgx.ConnConfig, error) { return pgx.ParseConfig(dsn) }

// newNoopHandler returns the no-op NodeService handler and its path.
func newNoopHandler(pageSize, watchNodes int) (string, http.Handler) {
	// The service's compression threshold, so that the two differ only in
	// what the handlers do.
	return smspbconnect.NewNodeServiceHandler(newNoop(pageSize, watchNodes), connect.WithCompressMinBytes(service.CompressMinBytes))
}

// serveOne serves h at path on a loopback port, as serve does.
func serveOne(path string, h http.Handler) (string, func(), error) {
	mux := http.NewServeMux()
	mux.Handle(path, h)
	return serve(mux)
}
