package metrics_test

import (
	"testing"

	"github.com/spear-next/sms/service/metrics"
	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

// The timed store is a Store like any other: it passes the conformance
// suites, the Watch one too when what it wraps is watchable.
func TestWrapStore(t *testing.T) {
	wrap := func(inner sqlkv.Store) func(t *testing.T) sqlkv.Store {
		return func(t *testing.T) sqlkv.Store {
			s := metrics.New().WrapStore("memory", inner)
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
	t.Run("Store", func(t *testing.T) {
		kvtest.TestStore(t, func(t *testing.T) sqlkv.Store { return wrap(memory.New())(t) })
	})
	t.Run("Watch", func(t *testing.T) {
		kvtest.TestWatch(t, func(t *testing.T) sqlkv.Store { return wrap(watchstore.New(memory.New()))(t) })
	})
}
