// Command sms-agent runs on a node: it registers the machine with an SMS
// server, heartbeats, and reports the machine's CPU, memory, disk, network
// and load (measured with gopsutil) until it is stopped, then marks the node
// inactive. Run `sms-agent --help` for the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/client/hostmetrics"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second one ends a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	os.Exit(exitCode(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr), os.Stderr))
}

// exitCode reports err on one line of stderr and maps it to an exit
// status: 0 for success, --help and --version, 2 for a bad setting, 1
// otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) || errors.Is(err, errVersion) {
		return 0
	}
	fmt.Fprintf(stderr, "sms-agent: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run is main without the process: it parses the configuration and runs
// the agent until ctx is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel})
	if cfg.logFormat == "json" {
		handler = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel})
	}
	logger := slog.New(handler)

	c, err := client.Dial(cfg.addr, cfg.dialOpts...)
	if err != nil {
		return err // parseConfig dialled the same settings already
	}
	defer c.Close()
	node, err := nodeOf(cfg, c.BaseURL())
	if err != nil {
		return err
	}
	agent := c.NewAgent(client.AgentConfig{
		Node:              node,
		Metrics:           hostmetrics.New(cfg.diskPath),
		HeartbeatInterval: cfg.heartbeatInterval,
		ReportInterval:    cfg.reportInterval,
		DeregisterOnExit:  cfg.deregisterOnExit,
		Logger:            logger,
	})
	if cfg.once {
		if err := agent.Once(ctx); err != nil {
			return err
		}
		logger.Info("node registered and reported", "node", agent.UUID())
		return nil
	}
	if cfg.metricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg.metricsAddr, agent, logger)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	return agent.Run(ctx)
}

// nodeOf is the node the agent registers: the configured or detected
// address, the configured or derived uuid, and the machine's metadata
// under the labels.
func nodeOf(cfg config, serverURL string) (client.Node, error) {
	n := client.Node{UUID: cfg.nodeUUID, Address: cfg.nodeAddr, Port: cfg.nodePort, HTTPPort: cfg.nodeHTTPPort}
	if n.Address == "" {
		addr, err := routeAddr(serverURL)
		if err != nil {
			return n, bad("node-addr", "cannot detect this machine's address: "+err.Error(), "the address to register for the node")
		}
		n.Address = addr
	}
	if n.UUID == "" {
		b, err := os.ReadFile(cfg.machineIDFile)
		id := strings.TrimSpace(string(b))
		if err == nil && id == "" {
			err = fmt.Errorf("%s is empty", cfg.machineIDFile)
		}
		if err != nil {
			return n, bad("machine-id-file", err.Error(), "a file holding the machine id, or --node-uuid")
		}
		n.UUID = client.NodeUUID(id, n.Address, n.Port)
	}
	n.Metadata = map[string]string{"os": runtime.GOOS, "arch": runtime.GOARCH}
	if h, err := os.Hostname(); err == nil {
		n.Metadata["hostname"] = h
	}
	maps.Copy(n.Metadata, cfg.labels)
	return n, nil
}

// routeAddr returns this machine's address on the route to the server at
// serverURL. Connecting a UDP socket sends nothing: it only asks the
// kernel which source address it would use.
func routeAddr(serverURL string) (string, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return "", err
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := net.Dial("udp", host)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}

// serveMetrics serves the agent's metrics on GET /metrics at addr until
// the returned function is called.
func serveMetrics(addr string, agent *client.Agent, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", metricsHandler(agent))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server", "error", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	}, nil
}
