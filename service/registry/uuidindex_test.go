package registry

import (
	"math/rand/v2"
	"testing"
)

// uuidIndex agrees with a Go map through random puts, replacements and
// deletes, over few keys so that runs of used slots wrap around the end of
// the table and backward shifts cross it, while it grows.
func TestUUIDIndexMatchesMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, keys := range []int{5, 40, 300} {
		x := newUUIDIndex(0)
		want := map[string]*entry{}
		check := func(step int) {
			t.Helper()
			if x.len() != len(want) {
				t.Fatalf("%d keys, step %d: len %d, want %d", keys, step, x.len(), len(want))
			}
			for i := range keys {
				id := benchUUID(i)
				if got := x.get(id); got != want[id] {
					t.Fatalf("%d keys, step %d: get(%s) = %p, want %p", keys, step, id, got, want[id])
				}
			}
			used := 0
			for _, e := range x.slots {
				if e != nil {
					used++
				}
			}
			if used*4 > len(x.slots)*3 || used != x.len() {
				t.Fatalf("%d keys, step %d: %d of %d slots used, len %d", keys, step, used, len(x.slots), x.len())
			}
		}
		for step := range 20000 {
			id := benchUUID(rng.IntN(keys))
			if rng.IntN(3) == 0 {
				x.delete(id)
				delete(want, id)
			} else {
				e := &entry{uuid: id}
				x.put(e)
				want[id] = e
			}
			if step%97 == 0 {
				check(step)
			}
		}
		check(-1)
		for id := range want {
			x.delete(id)
		}
		if x.len() != 0 {
			t.Fatalf("%d keys: len %d after deleting every key", keys, x.len())
		}
	}
}

// newUUIDIndex(n) holds n entries without growing, at most 3/4 full.
func TestUUIDIndexPresized(t *testing.T) {
	for _, n := range []int{0, 1, 12, 13, 1000, 1 << 20} {
		x := newUUIDIndex(n)
		size := len(x.slots)
		if size*3 < n*4 || (size > 16 && (size/2)*3 >= n*4) {
			t.Errorf("newUUIDIndex(%d): %d slots", n, size)
		}
	}
}
