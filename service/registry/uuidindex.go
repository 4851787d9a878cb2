package registry

import "hash/maphash"

// uuidIndex finds the view's entries by uuid: GetNode's lookup. The uuid
// tree (View.byUUID) keeps them in order for pages and snapshots, but a
// point read there costs ~20 comparisons at 1M nodes, each a cache miss on
// another entry; here it is one hash and about one probe. A Go
// map[string]*entry would do the same at ~56 B a node (its slots hold the
// key's string header); this table holds only the entry pointers, 8 B a
// slot at most 3/4 full, ~16 B a node: open addressing with linear probing,
// deletion by backward shift (no tombstones), a power-of-two size.
//
// It is not safe for concurrent use: the view's lock guards it.
type uuidIndex struct {
	seed  maphash.Seed
	slots []*entry // nil: free
	n     int
}

// newUUIDIndex returns an index with room for n entries before it grows.
func newUUIDIndex(n int) *uuidIndex {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	return &uuidIndex{seed: maphash.MakeSeed(), slots: make([]*entry, size)}
}

func (x *uuidIndex) len() int { return x.n }

// home is the slot where a probe for id starts.
func (x *uuidIndex) home(id string) int {
	return int(maphash.String(x.seed, id) & uint64(len(x.slots)-1))
}

func (x *uuidIndex) next(i int) int { return (i + 1) & (len(x.slots) - 1) }

// slot returns the slot of id, or the free slot where it would go.
func (x *uuidIndex) slot(id string) int {
	i := x.home(id)
	for x.slots[i] != nil && x.slots[i].uuid != id {
		i = x.next(i)
	}
	return i
}

// get returns the entry of id, or nil.
func (x *uuidIndex) get(id string) *entry { return x.slots[x.slot(id)] }

// put adds e, or replaces the entry of its uuid.
func (x *uuidIndex) put(e *entry) {
	i := x.slot(e.uuid)
	if x.slots[i] != nil {
		x.slots[i] = e
		return
	}
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
		i = x.slot(e.uuid)
	}
	x.slots[i] = e
	x.n++
}

// grow doubles the table.
func (x *uuidIndex) grow() {
	old := x.slots
	x.slots = make([]*entry, 2*len(old))
	for _, e := range old {
		if e != nil {
			x.slots[x.slot(e.uuid)] = e
		}
	}
}

// delete removes the entry of id, if any. The entries after it in its run
// of used slots move back over the hole unless that would put one before
// its home slot, so that every probe still finds its entry before a free
// slot.
func (x *uuidIndex) delete(id string) {
	hole := x.slot(id)
	if x.slots[hole] == nil {
		return
	}
	x.slots[hole] = nil
	x.n--
	for j := x.next(hole); x.slots[j] != nil; j = x.next(j) {
		// The entry at j may fill the hole if its home is not in the
		// cyclic range (hole, j]: its probe passes the hole.
		h := x.home(x.slots[j].uuid)
		if !inRange(hole, h, j) {
			x.slots[hole], x.slots[j] = x.slots[j], nil
			hole = j
		}
	}
}

// inRange reports whether h is in the cyclic range (lo, hi].
func inRange(lo, h, hi int) bool {
	if lo <= hi {
		return lo < h && h <= hi
	}
	return lo < h || h <= hi
}
