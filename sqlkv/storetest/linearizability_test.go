package storetest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/spear-next/sms/sqlkv"
	"github.com/spear-next/sms/sqlkv/storetest"
)

// kvInput is one store call of a linearizability history.
type kvInput struct {
	op    string // "get", "put" or "cas"
	key   string
	value string
	want  int64 // cas: the version required (0: must not exist)
}

// kvOutput is what the call returned.
type kvOutput struct {
	value    string
	version  int64 // 0: not found (get), or the failed cas
	conflict bool  // cas: ErrConflict
}

// kvState is one key's state in the model.
type kvState struct {
	value   string
	version int64 // 0: absent
}

// kvModel is a versioned register per key: put and a successful cas set the
// value and a new version, larger than the last; get returns the current
// value and version; cas succeeds exactly when the version matches.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(kvInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return kvState{} },
	Step: func(state, input, output any) (bool, any) {
		s, in, out := state.(kvState), input.(kvInput), output.(kvOutput)
		switch in.op {
		case "get":
			return out.value == s.value && out.version == s.version, s
		case "put":
			return out.version > s.version, kvState{in.value, out.version}
		case "cas":
			if in.want != s.version {
				return out.conflict, s
			}
			return !out.conflict && out.version > s.version, kvState{in.value, out.version}
		}
		return false, s
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		return fmt.Sprintf("%s(%s, %q, want v%d) -> %q v%d conflict=%v", in.op, in.key, in.value, in.want, out.value, out.version, out.conflict)
	},
}

// Concurrent clients doing get, put and compare-and-swap on a few keys
// produce a linearizable history on every backend, checked with porcupine.
func TestLinearizable(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			store := storetest.Open(t, backend)
			history := recordKVHistory(t, store, 6, 150, []string{"a", "b", "c"})
			res, info := porcupine.CheckOperationsVerbose(kvModel, history, time.Minute)
			if res != porcupine.Ok {
				file := t.TempDir() + "/history.html"
				porcupine.VisualizePath(kvModel, info, file)
				t.Fatalf("%d operations: porcupine says %v; see %s", len(history), res, file)
			}
			t.Logf("%d operations on 3 keys by 6 clients: linearizable", len(history))
		})
	}
}

func recordKVHistory(t *testing.T, store sqlkv.Store, clients, opsPerClient int, keys []string) []porcupine.Operation {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	var mu sync.Mutex
	var history []porcupine.Operation
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			seen := map[string]int64{} // last version this client read
			for i := range opsPerClient {
				in := kvInput{key: keys[rng.IntN(len(keys))], value: fmt.Sprintf("c%d-%d", c, i)}
				var out kvOutput
				call := time.Since(start).Nanoseconds()
				var err error
				switch r := rng.IntN(3); r {
				case 0:
					in.op, in.value = "get", ""
					var e sqlkv.Entry
					e, err = store.Get(ctx, []byte(in.key))
					if errors.Is(err, sqlkv.ErrNotFound) {
						err = nil
					}
					out.value, out.version = string(e.Value), e.Version
					seen[in.key] = e.Version
				case 1:
					in.op = "put"
					out.version, err = sqlkv.PutValue(ctx, store, []byte(in.key), []byte(in.value))
				case 2:
					in.op, in.want = "cas", seen[in.key]
					var res []sqlkv.OpResult
					res, err = store.Apply(ctx, sqlkv.Put([]byte(in.key), []byte(in.value)).If(sqlkv.IfVersion(in.want)))
					if errors.Is(err, sqlkv.ErrConflict) {
						out.conflict, err = true, nil
					} else if err == nil {
						out.version = res[0].Version
					}
				}
				ret := time.Since(start).Nanoseconds()
				if err != nil {
					t.Errorf("%s %s: %v", in.op, in.key, err)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return history
}
