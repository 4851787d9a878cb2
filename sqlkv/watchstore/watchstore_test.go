package watchstore_test

import (
	"testing"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/kvtest"
	"github.com/spear-next/sms/sqlkv/memory"
	"github.com/spear-next/sms/sqlkv/storetest"
	"github.com/spear-next/sms/sqlkv/watchstore"
)

func TestStore(t *testing.T) {
	kvtest.TestStore(t, func(t *testing.T) sqlkv.Store {
		s := watchstore.New(memory.New())
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestWatch(t *testing.T) {
	for _, backend := range []string{"memory", "sqlite"} {
		t.Run(backend, func(t *testing.T) {
			kvtest.TestWatch(t, func(t *testing.T) sqlkv.Store {
				var inner sqlkv.Store = memory.New()
				if backend == "sqlite" {
					inner = storetest.Open(t, "sqlite")
				}
				s := watchstore.New(inner)
				t.Cleanup(func() { s.Close() })
				return s
			})
		})
	}
}
