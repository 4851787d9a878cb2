package registry_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// forEachBackend runs fn once per store backend, each with a fresh, empty
// store. Postgres runs when KV_TEST_POSTGRES_DSN is set (see storetest).
func forEachBackend(t *testing.T, fn func(t *testing.T, store sqlkv.Store)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) { fn(t, storetest.Open(t, backend)) })
	}
}

// clock is a settable clock for WithClock, safe for concurrent use.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is a pair of registries on one store with a fake clock.
type env struct {
	store sqlkv.Store
	clock *clock
	nodes *registry.NodeRegistry
	res   *registry.NodeResourceRegistry
}

func newEnv(store sqlkv.Store, opts ...registry.Option) *env {
	c := newClock()
	opts = append([]registry.Option{registry.WithClock(c.Now)}, opts...)
	return &env{
		store: store,
		clock: c,
		nodes: registry.NewNodeRegistry(store, opts...),
		res:   registry.NewNodeResourceRegistry(store, opts...),
	}
}

// register registers a valid node with the given uuid ("" = generated) and
// status and returns it.
func (e *env) register(t *testing.T, uuid string, status registry.Status) registry.Node {
	t.Helper()
	n, err := e.nodes.Register(context.Background(), registry.Node{
		UUID:      uuid,
		IPAddress: "10.0.0.1",
		Port:      8080,
		Status:    status,
	})
	if err != nil {
		t.Fatalf("Register(%q): %v", uuid, err)
	}
	return n
}

func (e *env) get(t *testing.T, uuid string) registry.Node {
	t.Helper()
	n, err := e.nodes.Get(context.Background(), uuid)
	if err != nil {
		t.Fatalf("Get(%q): %v", uuid, err)
	}
	return n
}

// hookStore runs before once, just before the first Apply, to simulate a
// writer that lands between a registry's read and its write.
type hookStore struct {
	sqlkv.Store
	once   sync.Once
	before func()
}

func (s *hookStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	s.once.Do(s.before)
	return s.Store.Apply(ctx, ops...)
}

// Fixed uuids, in ascending order.
const (
	uuidA = "0a8e4c4e-5d6b-4f8e-9a61-1b2c3d4e5f60"
	uuidB = "5b1f2a3c-4d5e-4f60-8172-839405a6b7c8"
	uuidC = "c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b"
)
