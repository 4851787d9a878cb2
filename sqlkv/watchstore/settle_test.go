package watchstore

import (
	"context"
	"errors"
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/memory"
)

// A write the wrapped store commits after its caller gave up (as SQLite's
// group commit does with a group it took) is published all the same, and
// a read of its key answers only once it is.
func TestWriteOfACallerThatGaveUpIsPublished(t *testing.T) {
	inner := &lateCommit{Store: memory.New(), committed: make(chan struct{}), release: make(chan struct{})}
	s := New(inner)
	t.Cleanup(func() { s.Close() })
	sub, err := s.Watch(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	put := make(chan error, 1)
	go func() {
		_, err := sqlkv.PutValue(ctx, s, []byte("k"), []byte("v"))
		put <- err
	}()
	<-inner.committed
	cancel()
	if err := <-put; !errors.Is(err, context.Canceled) {
		t.Fatalf("PutValue whose caller gave up = %v; want context.Canceled", err)
	}
	close(inner.release)
	e, err := s.Get(t.Context(), []byte("k"))
	if err != nil {
		t.Fatalf("Get of the committed key = %v", err)
	}
	if got := sub.Position(); got != 1 {
		t.Fatalf("Position after a Get that saw the write (version %d) = %d; want 1: the committed write was never published", e.Version, got)
	}
}

// lateCommit commits each Apply at once and then answers like a group
// commit whose caller may stop waiting: at release, or with the caller's
// context error if that ends first (the write stays committed).
type lateCommit struct {
	sqlkv.Store
	committed, release chan struct{}
}

func (s *lateCommit) Apply(ctx context.Context, ops ...sqlkv.Op) ([]sqlkv.OpResult, error) {
	res, err := s.Store.Apply(context.WithoutCancel(ctx), ops...)
	close(s.committed)
	select {
	case <-s.release:
		return res, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
