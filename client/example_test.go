package client_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/client"
	"github.com/spear-next/sms/service"
	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv/kvstore"
)

// exampleServer starts an SMS server in-process, on a loopback port over a
// memory store, for the examples to talk to. A real program dials the URL
// of a running sms instead.
func exampleServer() (url string, stop func()) {
	store, err := kvstore.Open(context.Background(), kvstore.Memory())
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(service.NewHandler(service.Config{
		Nodes:     registry.NewNodeRegistry(store),
		Resources: registry.NewNodeResourceRegistry(store),
		Store:     store,
	}))
	return srv.URL, func() { srv.Close(); store.Close() }
}

func Example() {
	url, stop := exampleServer()
	defer stop()

	c, err := client.Dial(url) // or client.Dial("https://sms.example:50051", client.WithToken(token))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	id, err := c.Register(ctx, client.Node{
		UUID: "0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b", Address: "10.0.0.7", Port: 50052,
		Metadata: map[string]string{"zone": "a"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, id, nil); err != nil {
		log.Fatal(err)
	}
	n, err := c.GetNode(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n.UUID, n.Address, n.Port, n.Status, n.Metadata["zone"])
	// Output: 0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b 10.0.0.7 50052 active a
}

func ExampleClient_GetNode_notFound() {
	url, stop := exampleServer()
	defer stop()
	c, err := client.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	_, err = c.GetNode(context.Background(), "0b6f8a1e-3c2d-4e5f-8a9b-1c2d3e4f5a6b")
	if connect.CodeOf(err) == connect.CodeNotFound {
		fmt.Println("no such node:", connect.CodeOf(err))
	}
	// Output: no such node: not_found
}

func ExampleClient_ListNodes() {
	url, stop := exampleServer()
	defer stop()
	c, err := client.Dial(url, client.WithProtocol(client.ProtocolGRPCWeb))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	for i, zone := range []string{"a", "b", "a"} {
		n := client.Node{Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 50052, Metadata: map[string]string{"zone": zone}}
		if _, err := c.Register(ctx, n); err != nil {
			log.Fatal(err)
		}
	}
	nodes, err := c.ListNodes(ctx, client.ListOptions{Status: client.StatusActive, Metadata: map[string]string{"zone": "a"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(nodes), "active nodes in zone a")
	// Output: 2 active nodes in zone a
}

func ExampleClient_ReportResource() {
	url, stop := exampleServer()
	defer stop()
	c, err := client.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	id, err := c.Register(ctx, client.Node{Address: "10.0.0.7", Port: 50052})
	if err != nil {
		log.Fatal(err)
	}
	err = c.ReportResource(ctx, client.Resource{NodeUUID: id, CPUPercent: 37.5, MemoryTotal: 16 << 30, MemoryUsed: 4 << 30, MemoryPercent: 25})
	if err != nil {
		log.Fatal(err)
	}
	stats, err := c.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d node, average CPU %.1f %%, memory %d GiB of %d GiB\n",
		stats.NodesWithResources, stats.AverageCPUPercent, stats.MemoryUsed>>30, stats.MemoryTotal>>30)
	// Output: 1 node, average CPU 37.5 %, memory 4 GiB of 16 GiB
}

// staticMetrics is a MetricsSource with fixed figures; sms-agent uses
// hostmetrics.New, which measures the machine.
type staticMetrics struct{}

func (staticMetrics) Collect(context.Context) (client.Resource, error) {
	return client.Resource{CPUPercent: 12, MemoryTotal: 8 << 30, MemoryUsed: 2 << 30, MemoryPercent: 25}, nil
}

func ExampleClient_NewAgent() {
	url, stop := exampleServer()
	defer stop()
	c, err := client.Dial(url)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	agent := c.NewAgent(client.AgentConfig{
		Node:    client.Node{UUID: client.NodeUUID("5f1d7c2a9b8e4f6a8c3d2e1f0a9b8c7d", "10.0.0.7", 50052), Address: "10.0.0.7", Port: 50052},
		Metrics: staticMetrics{},
	})
	// Once registers and reports once; a daemon calls agent.Run(ctx),
	// which heartbeats and reports until ctx is done, then marks the node
	// inactive.
	if err := agent.Once(ctx); err != nil {
		log.Fatal(err)
	}
	r, found, err := c.GetResource(ctx, agent.UUID())
	if err != nil || !found {
		log.Fatal(found, err)
	}
	fmt.Println(agent.UUID(), r.CPUPercent, r.MemoryPercent)
	// Output: 688c054c-b274-5da2-81c2-a3a9fb40c2fb 12 25
}

func ExampleNodeUUID() {
	// The same machine, address and port give the same uuid on every
	// start of the agent.
	fmt.Println(client.NodeUUID("5f1d7c2a9b8e4f6a8c3d2e1f0a9b8c7d", "10.0.0.7", 50052))
	fmt.Println(client.NodeUUID("5f1d7c2a9b8e4f6a8c3d2e1f0a9b8c7d", "10.0.0.7", 50053))
	// Output:
	// 688c054c-b274-5da2-81c2-a3a9fb40c2fb
	// 20eb4aae-6821-54a0-9c7b-ce64351c7257
}
