package kvtest_test

import (
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/memory"
)

// durable pretends a memory store is a database that outlives its handles:
// Close closes the handle, not the data.
type durable struct{ *memory.Store }

func (durable) Close() error { return nil }

// TestReopenRuns runs TestReopen itself, which no in-tree backend could do
// before the SQL ones exist.
func TestReopenRuns(t *testing.T) {
	kvtest.TestReopen(t, func(t *testing.T) (sqlkv.Store, func(t *testing.T) sqlkv.Store) {
		db := memory.New()
		t.Cleanup(func() { db.Close() })
		return durable{db}, func(t *testing.T) sqlkv.Store { return durable{db} }
	})
}
