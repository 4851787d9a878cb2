package kvtest

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/spear-next/sms/sqlkv"
)

// goroutines is how many goroutines race in the concurrency tests.
const goroutines = 16

// race runs fn(i) in n goroutines released at the same moment and waits for
// them all.
func race(n int, fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func testConcurrentDelete(t *testing.T, s sqlkv.Store) {
	for round := range 10 {
		key := fmt.Sprintf("k%d", round)
		put(t, s, key, "v")
		var deleted atomic.Int32
		race(goroutines, func(int) {
			existed, err := sqlkv.DeleteKey(t.Context(), s, []byte(key))
			if err != nil {
				t.Errorf("Delete(%q): %v", key, err)
				return
			}
			if existed {
				deleted.Add(1)
			}
		})
		if got, want := deleted.Load(), int32(1); got != want {
			t.Fatalf("round %d: %d of %d concurrent Deletes reported true, want %d", round, got, goroutines, want)
		}
	}
}

func testConcurrentCreate(t *testing.T, s sqlkv.Store) {
	for round := range 10 {
		key := fmt.Sprintf("k%d", round)
		var created atomic.Int32
		winner := make([]bool, goroutines)
		race(goroutines, func(i int) {
			_, err := s.Apply(t.Context(), sqlkv.Put([]byte(key), []byte(strconv.Itoa(i))).If(sqlkv.IfNotExists()))
			switch {
			case err == nil:
				created.Add(1)
				winner[i] = true
			case !errors.Is(err, sqlkv.ErrConflict):
				t.Errorf("Apply(Put(%q).If(IfNotExists)): err = %v, want nil or ErrConflict", key, err)
			}
		})
		if got, want := created.Load(), int32(1); got != want {
			t.Fatalf("round %d: %d of %d concurrent creates succeeded, want %d", round, got, goroutines, want)
		}
		w, err := strconv.Atoi(string(get(t, s, key).Value))
		if err != nil || !winner[w] {
			t.Fatalf("round %d: value %q is not the successful creator's", round, get(t, s, key).Value)
		}
	}
}

// testConcurrentAppliesHold races Applies whose conditions all hold but
// whose transactions collide (on Postgres, a check of absence runs
// SERIALIZABLE, so colliding writers of one key fail to serialize): every
// one must succeed, because ErrConflict is only for a failed condition and
// the store resolves contention itself. The registries rely on it.
func testConcurrentAppliesHold(t *testing.T, s sqlkv.Store) {
	put(t, s, "node", "n")
	const n = 4 * goroutines
	race(n, func(i int) {
		ops := []sqlkv.Op{
			sqlkv.Check([]byte("guard"), sqlkv.IfNotExists()),
			sqlkv.Put([]byte("shared"), []byte(strconv.Itoa(i))),
		}
		if i%2 == 1 { // the heartbeat's shape
			ops[0] = sqlkv.Check([]byte("node"), sqlkv.IfExists())
		}
		if _, err := s.Apply(t.Context(), ops...); err != nil {
			t.Errorf("Apply %d (%v %v): %v, want success: its conditions hold", i, ops[0].Kind, ops[0].Cond, err)
		}
	})
}

// testCompareAndSwap increments one counter from many goroutines with
// read-modify-write loops; a lost update shows as a short count.
func testCompareAndSwap(t *testing.T, s sqlkv.Store) {
	const perGoroutine = 200
	put(t, s, "counter", "0")
	race(goroutines, func(int) {
		ctx := t.Context()
		for done := 0; done < perGoroutine; {
			e, err := s.Get(ctx, []byte("counter"))
			if err != nil {
				t.Errorf("Get(counter): %v", err)
				return
			}
			n, err := strconv.Atoi(string(e.Value))
			if err != nil {
				t.Errorf("counter holds %q: %v", e.Value, err)
				return
			}
			next := []byte(strconv.Itoa(n + 1))
			_, err = s.Apply(ctx, sqlkv.Put([]byte("counter"), next).If(sqlkv.IfVersion(e.Version)))
			switch {
			case err == nil:
				done++
			case errors.Is(err, sqlkv.ErrConflict):
				// Someone else incremented first: read again.
			default:
				t.Errorf("Apply(Put(counter).If(IfVersion(%d))): %v", e.Version, err)
				return
			}
		}
	})
	wantValue(t, s, "counter", strconv.Itoa(goroutines*perGoroutine))
}

// writerValue is the value writer w puts on its i-th write: about 1 KiB,
// with the writer and write numbers at both ends so a torn or mixed value
// cannot pass for a whole one.
func writerValue(w, i int) string {
	return fmt.Sprintf("writer %02d put %03d|%s|%02d%03d", w, i, strings.Repeat(string(rune('a'+w)), 1000), w, i)
}

// checkWriterValue reports whether v is a value writerValue returns for some
// writer below writers and write below puts, and which.
func checkWriterValue(v []byte, writers, puts int) (w, i int, ok bool) {
	if _, err := fmt.Sscanf(string(v), "writer %d put %d|", &w, &i); err != nil {
		return 0, 0, false
	}
	ok = w >= 0 && w < writers && i >= 0 && i < puts && string(v) == writerValue(w, i)
	return w, i, ok
}

func testWritersAndReaders(t *testing.T, s sqlkv.Store) {
	const writers, puts, readers, maxReads = 10, 100, 4, 250
	const key = "contended"
	first := put(t, s, key, writerValue(0, 0))

	done := make(chan struct{})
	var readersWG sync.WaitGroup
	for range readers {
		readersWG.Go(func() {
			ctx := t.Context()
			var last int64
			// Bounded, so that readers cannot starve the writers on a
			// small machine.
			for n := range maxReads {
				select {
				case <-done:
					return
				default:
				}
				var e sqlkv.Entry
				if n%2 == 0 {
					var err error
					if e, err = s.Get(ctx, []byte(key)); err != nil {
						t.Errorf("Get: %v", err)
						return
					}
				} else {
					entries, err := sqlkv.Scan(ctx, s, []byte(key))
					if err != nil || len(entries) != 1 {
						t.Errorf("Scan(%q) = %d entries, %v; want 1, nil", key, len(entries), err)
						return
					}
					e = entries[0]
				}
				if _, _, ok := checkWriterValue(e.Value, writers, puts); !ok {
					t.Errorf("read a value no writer wrote: %.40q... (%d bytes)", e.Value, len(e.Value))
					return
				}
				if e.Version < last {
					t.Errorf("read version %d after version %d: reads went back in time", e.Version, last)
					return
				}
				last = e.Version
			}
		})
	}

	versions := make([][]int64, writers)
	var writersWG sync.WaitGroup
	for w := range writers {
		writersWG.Go(func() {
			for i := range puts {
				v, err := sqlkv.PutValue(t.Context(), s, []byte(key), []byte(writerValue(w, i)))
				if err != nil {
					t.Errorf("writer %d: Put: %v", w, err)
					return
				}
				versions[w] = append(versions[w], v)
			}
		})
	}
	writersWG.Wait()
	close(done)
	readersWG.Wait()
	if t.Failed() {
		return
	}

	all := []int64{first}
	for w := range writers {
		all = append(all, versions[w]...)
	}
	slices.Sort(all)
	if got, want := len(slices.Compact(slices.Clone(all))), len(all); got != want {
		t.Fatalf("%d puts of one key returned only %d distinct versions", want, got)
	}
	e := get(t, s, key)
	if got, want := e.Version, all[len(all)-1]; got != want {
		t.Fatalf("final version = %d, want the highest returned by Put, %d", got, want)
	}
	// The last write to land is some writer's last write.
	if w, i, ok := checkWriterValue(e.Value, writers, puts); !ok || i != puts-1 {
		t.Fatalf("final value is writer %d's put %d (valid: %v), want some writer's put %d", w, i, ok, puts-1)
	}
}

// testManyKeys moves 10,000 keys through the bulk operations.
func testManyKeys(t *testing.T, s sqlkv.Store) {
	const n, chunk = 10_000, 1_000
	ctx := t.Context()
	key := func(i int) []byte { return fmt.Appendf(nil, "bulk/%05d", i) }
	value := func(i int) []byte { return fmt.Appendf(nil, "value %05d", i) }
	put(t, s, "other", "x")

	keys := make([][]byte, n)
	for start := 0; start < n; start += chunk {
		entries := make([]sqlkv.Entry, chunk)
		for i := range entries {
			keys[start+i] = key(start + i)
			entries[i] = sqlkv.Entry{Key: key(start + i), Value: value(start + i)}
		}
		if err := sqlkv.BatchPut(ctx, s, entries); err != nil {
			t.Fatalf("BatchPut of keys %d..%d: %v", start, start+chunk-1, err)
		}
	}
	if got, want := count(t, s, "bulk/"), int64(n); got != want {
		t.Fatalf("Count(bulk/) = %d, want %d", got, want)
	}
	if got, want := count(t, s, ""), int64(n+1); got != want {
		t.Fatalf(`Count("") = %d, want %d`, got, want)
	}

	entries, err := sqlkv.Scan(ctx, s, []byte("bulk/"))
	if err != nil {
		t.Fatalf("Scan(bulk/): %v", err)
	}
	if got, want := len(entries), n; got != want {
		t.Fatalf("Scan(bulk/) returned %d entries, want %d", got, want)
	}
	for i, e := range entries {
		if string(e.Key) != string(key(i)) || string(e.Value) != string(value(i)) || e.Version <= 0 {
			t.Fatalf("Scan entry %d = %q: %q (version %d), want %q: %q", i, e.Key, e.Value, e.Version, key(i), value(i))
		}
	}
	if got, err := sqlkv.Keys(ctx, s, []byte("bulk/")); err != nil || len(got) != n {
		t.Fatalf("Keys(bulk/) = %d keys, %v; want %d", len(got), err, n)
	}

	page, err := s.Range(ctx, sqlkv.RangeOptions{Start: key(5000), Limit: 3})
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	wantKeys(t, "Range(bulk/05000.., limit 3)", entryKeys(page), []string{"bulk/05000", "bulk/05001", "bulk/05002"})
	opts := sqlkv.PrefixRange([]byte("bulk/"))
	opts.Reverse, opts.Limit = true, 3
	page, err = s.Range(ctx, opts)
	if err != nil {
		t.Fatalf("Range: %v", err)
	}
	wantKeys(t, "Range(bulk/, reverse, limit 3)", entryKeys(page), []string{"bulk/09999", "bulk/09998", "bulk/09997"})

	deleted, err := sqlkv.BatchDelete(ctx, s, keys)
	if err != nil {
		t.Fatalf("BatchDelete of %d keys: %v", n, err)
	}
	if got, want := deleted, int64(n); got != want {
		t.Fatalf("BatchDelete = %d, want %d", got, want)
	}
	if got, want := count(t, s, "bulk/"), int64(0); got != want {
		t.Fatalf("Count(bulk/) after BatchDelete = %d, want %d", got, want)
	}
	wantKeys(t, "Keys after BatchDelete", keysOf(t, s, ""), []string{"other"})
}
