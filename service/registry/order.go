package registry

import (
	"cmp"
	"fmt"
	"iter"
	"math"
	"slices"
	"strings"

	"github.com/google/btree"
)

// Sorted pages.
//
// Besides the uuid tree, the view keeps the nodes of each status in trees
// of their own: one by uuid (which is also the status order: the ranks'
// trees one after the other) and one per value order of ListPage (last
// heartbeat, CPU, memory), by (value, uuid). A status filter is then one
// tree in every order. A page of one status is a range read of one tree;
// a page of every status in a value order merges the trees of the statuses
// by (value, uuid). Either way a page costs O(page + log N).
//
// The items are small, because a view of 1,000,000 nodes holds up to
// 4,000,000 of them: an entry pointer in the uuid trees (8 B), a value and
// an entry pointer in the value trees (16 B), ties broken through the
// entry's uuid. A value order's trees are built by the first ListPage that
// asks for the order (View.ensureOrder: from a snapshot of the uuid tree,
// outside the view's lock), and kept from then on, across reloads too: a
// process that never pages by CPU holds no CPU trees. Entries are
// immutable: a change of a node replaces its items (View.index and
// View.unindex).

// Order is the order ListPage returns nodes in; the zero value is by uuid.
type Order int

// The orders of ListPage. Every order ends with the uuid, so that it is
// total: nodes with the same status or value are in uuid order.
const (
	OrderUUID          Order = iota // ascending uuid (the default)
	OrderStatus                     // status name (active, decommissioning, inactive, unhealthy), then uuid
	OrderLastHeartbeat              // last heartbeat (registration without one), then uuid
	OrderCPU                        // CPU of the resource report, then uuid; no report sorts below 0 %
	OrderMemory                     // memory of the resource report, then uuid; no report sorts below 0 %
)

func (o Order) String() string {
	switch o {
	case OrderUUID:
		return "uuid"
	case OrderStatus:
		return "status"
	case OrderLastHeartbeat:
		return "last_heartbeat"
	case OrderCPU:
		return "cpu"
	case OrderMemory:
		return "memory"
	}
	return fmt.Sprintf("Order(%d)", int(o))
}

// statusRanks are the statuses in the order OrderStatus sorts them; a
// node's rank is its index.
var statusRanks = [...]Status{StatusActive, StatusDecommissioning, StatusInactive, StatusUnhealthy}

// rankCount is the number of ranks: the statuses, and one for a status the
// registry does not write.
const rankCount = len(statusRanks) + 1

func rankOf(s Status) uint8 {
	for i, r := range statusRanks {
		if r == s {
			return uint8(i)
		}
	}
	return uint8(len(statusRanks)) // not a status the registry writes; sorts last
}

// noReport is the CPU and memory value of a node without a resource
// report: below every percentage (whose Float64bits are >= 0).
const noReport = -1

// orderKey is a node's position in one order: its status rank, the order's
// value (nanoseconds, or a percentage's Float64bits, which orders
// non-negative floats like the floats; 0 in the status order) and its
// uuid. Page tokens carry it.
type orderKey struct {
	rank  uint8
	value int64
	uuid  string
}

// valueLess orders by (value, uuid), ignoring the rank: the merge order of
// the statuses' trees.
func (a orderKey) valueLess(b orderKey) bool {
	if a.value != b.value {
		return a.value < b.value
	}
	return a.uuid < b.uuid
}

// sortItem is a node of a walk, with its position.
type sortItem struct {
	orderKey
	e *entry
}

// valueItem is a node in a value tree: the order's value and the entry,
// whose uuid breaks ties.
type valueItem struct {
	value int64
	e     *entry
}

func lessValueItem(a, b valueItem) bool {
	if a.value != b.value {
		return a.value < b.value
	}
	return a.e.uuid < b.e.uuid
}

// valueOrders are the orders with value trees, indexed from
// OrderLastHeartbeat.
var valueOrders = [...]Order{OrderLastHeartbeat, OrderCPU, OrderMemory}

// sortIndex is the view's trees of the nodes by status; guarded by View.mu.
type sortIndex struct {
	byUUID  [rankCount]*btree.BTreeG[*entry]                      // by rank
	byValue [len(valueOrders)][rankCount]*btree.BTreeG[valueItem] // by order - OrderLastHeartbeat, then rank; nil until built
	pending [len(valueOrders)]*building                           // the builds in progress
}

// building is a value order's build in progress: the changes to the nodes
// since its snapshot, for it to replay into its trees.
type building struct {
	done    chan struct{} // closed once the trees are in the index
	changes []change
}

// change is one index (add) or unindex of an entry.
type change struct {
	add bool
	e   *entry
}

// reset empties the trees; the value orders built stay built.
func (s *sortIndex) reset() {
	for r := range rankCount {
		s.byUUID[r] = btree.NewG(btreeDegree, lessEntry)
		for i := range valueOrders {
			if s.byValue[i][0] != nil {
				s.byValue[i][r] = btree.NewG(btreeDegree, lessValueItem)
			}
		}
	}
}

// onlyUUID is whether no value order is built or being built.
func (s *sortIndex) onlyUUID() bool {
	for i := range valueOrders {
		if s.byValue[i][0] != nil || s.pending[i] != nil {
			return false
		}
	}
	return true
}

// built is whether the trees of o, if it has any, are there.
func (s *sortIndex) built(o Order) bool {
	return o < OrderLastHeartbeat || s.byValue[o-OrderLastHeartbeat][0] != nil
}

// buildTrees returns the trees of the value order o of the nodes of byUUID.
// It inserts each tree's items in descending order: google/btree splits a
// full node in two halves, and the half it makes anew gets a slice of
// exactly its items, which descending inserts never touch again, so the
// tree holds little more than its items (ascending or random inserts leave
// half-full nodes with room for twice their items).
func buildTrees(o Order, byUUID *btree.BTreeG[*entry]) *[rankCount]*btree.BTreeG[valueItem] {
	var items [rankCount][]valueItem
	byUUID.Ascend(func(e *entry) bool {
		if e.node != nil {
			r := rankOf(e.status())
			items[r] = append(items[r], valueItem{valueOf(o, e), e})
		}
		return true
	})
	trees := new([rankCount]*btree.BTreeG[valueItem])
	for r := range trees {
		// In descending uuid order, a stable sort by descending value
		// breaks ties by uuid without reading an entry.
		slices.Reverse(items[r])
		slices.SortStableFunc(items[r], func(a, b valueItem) int { return cmp.Compare(b.value, a.value) })
		trees[r] = btree.NewG(btreeDegree, lessValueItem)
		for _, it := range items[r] {
			trees[r].ReplaceOrInsert(it)
		}
	}
	return trees
}

// valueOf returns e's value in the value order o; e.node must not be nil.
func valueOf(o Order, e *entry) int64 {
	if o == OrderLastHeartbeat {
		return e.lastSeen()
	}
	if e.res == nil {
		return noReport
	}
	v := e.res.CPU
	if o == OrderMemory {
		v = e.res.Mem
	}
	return int64(math.Float64bits(max(v, 0)))
}

func (s *sortIndex) index(e *entry) {
	if e.node == nil {
		return
	}
	r := rankOf(e.status())
	s.byUUID[r].ReplaceOrInsert(e)
	for i, o := range valueOrders {
		if s.byValue[i][r] != nil {
			s.byValue[i][r].ReplaceOrInsert(valueItem{valueOf(o, e), e})
		} else if p := s.pending[i]; p != nil {
			p.changes = append(p.changes, change{true, e})
		}
	}
}

func (s *sortIndex) unindex(e *entry) {
	if e.node == nil {
		return
	}
	r := rankOf(e.status())
	s.byUUID[r].Delete(e)
	for i, o := range valueOrders {
		if s.byValue[i][r] != nil {
			s.byValue[i][r].Delete(valueItem{valueOf(o, e), e})
		} else if p := s.pending[i]; p != nil {
			p.changes = append(p.changes, change{false, e})
		}
	}
}

// clone returns copy-on-write clones of the trees (O(1) each), for a
// reader that walks far without the view's lock; v.mu must be held.
func (s *sortIndex) clone() sortIndex {
	var c sortIndex
	for r := range rankCount {
		c.byUUID[r] = s.byUUID[r].Clone()
		for i := range valueOrders {
			if s.byValue[i][r] != nil {
				c.byValue[i][r] = s.byValue[i][r].Clone()
			}
		}
	}
	return c
}

// cursor is where a page starts: strictly after pos in the order (for
// OrderUUID only pos.uuid counts); first starts at the beginning.
type cursor struct {
	first bool
	pos   orderKey
}

// walk returns the nodes of one order from just after c, in the order
// (reversed when desc), of every status or, with rank >= 0, of that status
// only, each with its position. byUUID serves OrderUUID without a status.
// The trees of o must be built.
func (s *sortIndex) walk(byUUID *btree.BTreeG[*entry], o Order, desc bool, rank int, c cursor) iter.Seq[sortItem] {
	switch {
	case o == OrderUUID && rank < 0:
		return walkUUID(byUUID, 0, desc, c)
	case o == OrderUUID || o == OrderStatus && rank >= 0:
		// Within one status, the status order is the uuid order.
		return walkUUID(s.byUUID[rank], uint8(rank), desc, c)
	case o == OrderStatus:
		return s.walkStatus(desc, c)
	case rank >= 0:
		return walkValue(s.byValue[o-OrderLastHeartbeat][rank], uint8(rank), desc, c)
	}
	// A value order of every status: merge the statuses' trees by value.
	walks := make([]iter.Seq[sortItem], 0, rankCount)
	for r, tree := range s.byValue[o-OrderLastHeartbeat] {
		walks = append(walks, walkValue(tree, uint8(r), desc, c))
	}
	return mergeByValue(desc, walks)
}

// walkStatus walks the status order of every status from just after c:
// the ranks' uuid trees one after the other.
func (s *sortIndex) walkStatus(desc bool, c cursor) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		for i := range rankCount {
			r := uint8(i)
			if desc {
				r = uint8(rankCount - 1 - i)
			}
			rc := c
			switch {
			case c.first:
			case r == c.pos.rank:
			case (r < c.pos.rank) != desc:
				continue // before the cursor
			default:
				rc = cursor{first: true}
			}
			for it := range walkUUID(s.byUUID[r], r, desc, rc) {
				if !yield(it) {
					return
				}
			}
		}
	}
}

// walkUUID walks a tree of entries by uuid from just after c (only
// c.pos.uuid counts), as nodes of the given rank.
func walkUUID(tree *btree.BTreeG[*entry], rank uint8, desc bool, c cursor) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		ascendFrom(tree, desc, c.first, &entry{uuid: c.pos.uuid}, func(e *entry) bool {
			if !c.first && e.uuid == c.pos.uuid {
				return true
			}
			return e.node == nil || yield(sortItem{orderKey{rank: rank, uuid: e.uuid}, e})
		})
	}
}

// walkValue walks a value tree of one rank from just after c (whose
// pos.rank is ignored: c positions within the rank).
func walkValue(tree *btree.BTreeG[valueItem], rank uint8, desc bool, c cursor) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		at := valueItem{c.pos.value, &entry{uuid: c.pos.uuid}}
		ascendFrom(tree, desc, c.first, at, func(it valueItem) bool {
			if !c.first && it.value == at.value && it.e.uuid == at.e.uuid {
				return true
			}
			return yield(sortItem{orderKey{rank, it.value, it.e.uuid}, it.e})
		})
	}
}

// ascendFrom visits tree from its first item (last, when desc), or from at
// (inclusive) onwards unless first.
func ascendFrom[T any](tree *btree.BTreeG[T], desc, first bool, at T, visit btree.ItemIteratorG[T]) {
	switch {
	case first && desc:
		tree.Descend(visit)
	case desc:
		tree.DescendLessOrEqual(at, visit)
	case first:
		tree.Ascend(visit)
	default:
		tree.AscendGreaterOrEqual(at, visit)
	}
}

// mergeByValue merges walks of one order, each sorted by (value, uuid)
// (descending when desc), into one such walk. It compares the items' keys,
// never their entries: a merge touches no node record.
func mergeByValue(desc bool, walks []iter.Seq[sortItem]) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		type head struct {
			next func() (sortItem, bool)
			it   sortItem
		}
		heads := make([]head, 0, len(walks))
		for _, w := range walks {
			next, stop := iter.Pull(w)
			defer stop()
			if it, ok := next(); ok {
				heads = append(heads, head{next, it})
			}
		}
		for len(heads) > 0 {
			best := 0
			for i := 1; i < len(heads); i++ {
				if heads[i].it.valueLess(heads[best].it.orderKey) != desc {
					best = i
				}
			}
			if !yield(heads[best].it) {
				return
			}
			if it, ok := heads[best].next(); ok {
				heads[best].it = it
			} else {
				heads = append(heads[:best], heads[best+1:]...)
			}
		}
	}
}

// MaxSearchLength is the longest ListOptions.Search accepted, in bytes.
const MaxSearchLength = 256

// search is the words of ListOptions.Search, lower-cased; a node matches
// when it matches every word (see ListOptions.Search).
type search []string

func parseSearch(field, s string) (search, error) {
	if len(s) > MaxSearchLength {
		return nil, invalid(field, fmt.Sprintf("is %d bytes; the most accepted is %d", len(s), MaxSearchLength))
	}
	return strings.Fields(strings.ToLower(s)), nil
}

func (s search) match(e *entry) bool {
	for _, w := range s {
		if !matchWord(e, w) {
			return false
		}
	}
	return true
}

// matchWord: strings.ToLower returns its argument, without allocating,
// when it has no upper-case letters, as uuids, addresses and most
// metadata have not.
func matchWord(e *entry, w string) bool {
	if strings.Contains(e.uuid, w) || strings.Contains(strings.ToLower(e.node.IP), w) {
		return true
	}
	wk, wv, pair := strings.Cut(w, "=")
	found := false
	e.meta.each(func(k, v string) bool {
		k, v = strings.ToLower(k), strings.ToLower(v)
		if pair {
			found = strings.HasSuffix(k, wk) && strings.HasPrefix(v, wv)
		} else {
			found = strings.Contains(k, w) || strings.Contains(v, w)
		}
		return !found
	})
	return found
}

// ensureOrder builds the trees of o unless they are built, or waits for
// the build in progress. A build reads a snapshot of the uuid tree without
// the lock (at 1,000,000 nodes it takes seconds), then replays into its
// trees, under the lock, the changes index and unindex logged meanwhile.
func (v *View) ensureOrder(o Order) {
	v.mu.RLock()
	built := v.sorted.built(o)
	v.mu.RUnlock()
	if built {
		return
	}
	if p, snap := v.beginBuild(o); snap != nil {
		v.finishBuild(o, p, buildTrees(o, snap))
	} else if p != nil {
		<-p.done
	}
}

// beginBuild starts the build of o's trees, returning it and the snapshot
// to build from; or the build in progress and no snapshot; or neither when
// the trees are built.
func (v *View) beginBuild(o Order) (*building, *btree.BTreeG[*entry]) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.sorted.built(o) {
		return nil, nil
	}
	if p := v.sorted.pending[o-OrderLastHeartbeat]; p != nil {
		return p, nil
	}
	p := &building{done: make(chan struct{})}
	v.sorted.pending[o-OrderLastHeartbeat] = p
	return p, v.byUUID.Clone()
}

// finishBuild replays the changes p logged into trees and puts them in the
// index.
func (v *View) finishBuild(o Order, p *building, trees *[rankCount]*btree.BTreeG[valueItem]) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, c := range p.changes {
		r := rankOf(c.e.status())
		if it := (valueItem{valueOf(o, c.e), c.e}); c.add {
			trees[r].ReplaceOrInsert(it)
		} else {
			trees[r].Delete(it)
		}
	}
	v.sorted.byValue[o-OrderLastHeartbeat] = *trees
	v.sorted.pending[o-OrderLastHeartbeat] = nil
	close(p.done)
}

// sortedSnapshot returns copy-on-write clones of the uuid tree and the
// sorted trees, for a reader that walks far without the lock.
func (v *View) sortedSnapshot() (*btree.BTreeG[*entry], sortIndex) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byUUID.Clone(), v.sorted.clone()
}
