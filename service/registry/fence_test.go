package registry_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spear-next/sms/service/registry"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// A write that has committed but is not yet in the in-process feed is seen
// by whoever reads the store (here a second Delete, which answers
// not_found); a read through a view that starts after that answer must not
// see the node either, through the same view (one process, as SMS runs on
// memory and SQLite) or through another view of the same store. This is the
// interleaving porcupine found in TestServiceLinearizableAcrossReplicas
// (update -> not_found, then get -> the deleted node): the second Delete
// answered from a write the feed did not have yet, so the read fence, which
// covers what the feed was handed, did not cover it.
func TestViewReadFenceCoversCommittedWrites(t *testing.T) {
	for _, backend := range storetest.Backends {
		if backend == kvstore.BackendPostgres {
			continue // Watchable itself; its fence is a NOTIFY in commit order
		}
		for _, views := range []int{1, 2} {
			name := backend + "/one-view"
			if views == 2 {
				name = backend + "/two-views"
			}
			t.Run(name, func(t *testing.T) {
				paused := &pausingStore{Store: storetest.Open(t, backend)}
				store := watchstore.New(paused)
				writer := registry.NewView(store)
				t.Cleanup(writer.Close)
				reader := writer
				if views == 2 {
					reader = registry.NewView(store)
					t.Cleanup(reader.Close)
				}
				ctx := t.Context()
				if _, err := writer.Nodes().Register(ctx, registry.Node{UUID: uuidA, IPAddress: "10.0.0.1", Port: 1}); err != nil {
					t.Fatal(err)
				}
				// Both views have applied the registration: nothing is
				// left for a read to wait for but what follows.
				for _, v := range []*registry.View{writer, reader} {
					if _, err := v.Nodes().Get(ctx, uuidA); err != nil {
						t.Fatal(err)
					}
				}

				release := paused.pauseNextApply()
				deleted := make(chan error, 1)
				go func() { deleted <- writer.Nodes().Delete(ctx, uuidA) }()
				<-paused.committed

				// The paused write goes on once a call waits after the
				// store answered it (a backend may wait on the context
				// before: SQLite's group commit does).
				waiting := onWait(ctx, func() {
					if paused.answered.Load() {
						release()
					}
				})
				if err := reader.Nodes().Delete(waiting, uuidA); !errors.Is(err, registry.ErrNotFound) {
					t.Fatalf("second Delete while the first is committed and unpublished = %v; want ErrNotFound", err)
				}
				_, err := reader.Nodes().Get(waiting, uuidA)
				release()
				if !errors.Is(err, registry.ErrNotFound) {
					t.Fatalf("Get after Delete answered not_found = %v; want ErrNotFound (the view missed a committed delete)", err)
				}
				if err := <-deleted; err != nil {
					t.Fatalf("first Delete: %v", err)
				}
			})
		}
	}
}

// pausingStore holds the Apply that pauseNextApply arms just after the
// wrapped store committed it, until released; answered is set once an Apply
// after it has returned.
type pausingStore struct {
	sqlkv.Store
	mu        sync.Mutex
	armed     chan struct{} // closed to release; nil when not armed
	committed chan struct{}
	answered  atomic.Bool
}

// pauseNextApply arms the pause and returns the function releasing it (safe
// to call more than once).
func (s *pausingStore) pauseNextApply() (release func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	gate := make(chan struct{})
	s.armed, s.committed = gate, make(chan struct{})
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}

func (s *pausingStore) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	res, err := s.Store.Apply(ctx, ops...)
	s.mu.Lock()
	gate, committed := s.armed, s.committed
	s.armed = nil
	s.mu.Unlock()
	if gate != nil {
		close(committed)
		<-gate
	} else if committed != nil {
		s.answered.Store(true)
	}
	return res, err
}

// onWait returns ctx, calling f whenever someone asks for its Done
// channel, which is what a caller about to block on it does.
func onWait(ctx context.Context, f func()) context.Context {
	return &waitHook{Context: ctx, f: f}
}

type waitHook struct {
	context.Context
	f func()
}

func (c *waitHook) Done() <-chan struct{} {
	c.f()
	return c.Context.Done()
}
