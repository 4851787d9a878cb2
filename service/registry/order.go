package registry

import (
	"fmt"
	"iter"
	"math"
	"strings"

	"github.com/google/btree"
)

// Sorted pages.
//
// Besides the uuid tree, the view keeps one btree per sort order of
// ListPage (status, last heartbeat, CPU, memory) over the nodes, keyed by
// (status, value, uuid): the status first, so that a status filter is one
// range of the tree in every order. A page of one status is a range read;
// a page of every status in a value order merges the four ranges of the
// tree (one per status) by (value, uuid). Either way a page costs
// O(page + log N). The items carry the entry, so a page reads no other
// tree. Entries are immutable: a change of a node replaces its items
// (View.index and View.unindex).

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

// orderKey is a node's position in one sorted tree: its status rank, the
// order's value (nanoseconds, or a percentage's Float64bits, which orders
// non-negative floats like the floats) and its uuid.
type orderKey struct {
	rank  uint8
	value int64
	uuid  string
}

func (a orderKey) less(b orderKey) bool {
	if a.rank != b.rank {
		return a.rank < b.rank
	}
	return a.valueLess(b)
}

// valueLess orders by (value, uuid), ignoring the rank: the merge order of
// the ranges of one tree.
func (a orderKey) valueLess(b orderKey) bool {
	if a.value != b.value {
		return a.value < b.value
	}
	return a.uuid < b.uuid
}

type sortItem struct {
	orderKey
	e *entry
}

func lessSortItem(a, b sortItem) bool { return a.less(b.orderKey) }

// sortedOrders are the orders with a tree of their own (OrderUUID reads the
// uuid tree, or the status tree for one status).
var sortedOrders = [...]Order{OrderStatus, OrderLastHeartbeat, OrderCPU, OrderMemory}

// sortIndex is the view's sorted trees, by Order; guarded by View.mu.
type sortIndex struct {
	trees [len(sortedOrders) + 1]*btree.BTreeG[sortItem] // indexed by Order; [OrderUUID] is nil
}

func (s *sortIndex) reset() {
	for _, o := range sortedOrders {
		s.trees[o] = btree.NewG(btreeDegree, lessSortItem)
	}
}

// keyOf returns e's position in the tree of o; e.node must not be nil.
func keyOf(o Order, e *entry) orderKey {
	k := orderKey{rank: rankOf(e.status()), uuid: e.uuid}
	switch o {
	case OrderLastHeartbeat:
		k.value = e.lastSeen()
	case OrderCPU, OrderMemory:
		k.value = noReport
		if e.res != nil {
			v := e.res.CPU
			if o == OrderMemory {
				v = e.res.Mem
			}
			k.value = int64(math.Float64bits(max(v, 0)))
		}
	}
	return k
}

func (s *sortIndex) index(e *entry) {
	if e.node == nil {
		return
	}
	for _, o := range sortedOrders {
		s.trees[o].ReplaceOrInsert(sortItem{keyOf(o, e), e})
	}
}

func (s *sortIndex) unindex(e *entry) {
	if e.node == nil {
		return
	}
	for _, o := range sortedOrders {
		s.trees[o].Delete(sortItem{orderKey: keyOf(o, e)})
	}
}

// clone returns copy-on-write clones of the trees (O(1) each), for a
// reader that walks far without the view's lock; v.mu must be held.
func (s *sortIndex) clone() sortIndex {
	var c sortIndex
	for _, o := range sortedOrders {
		c.trees[o] = s.trees[o].Clone()
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
func (s *sortIndex) walk(byUUID *btree.BTreeG[*entry], o Order, desc bool, rank int, c cursor) iter.Seq[sortItem] {
	switch {
	case o == OrderUUID && rank < 0:
		return walkUUID(byUUID, desc, c)
	case o == OrderUUID:
		// The status tree is (rank, 0, uuid): within one status, uuid order.
		return walkRank(s.trees[OrderStatus], uint8(rank), desc, c)
	case rank >= 0:
		return walkRank(s.trees[o], uint8(rank), desc, c)
	case o == OrderStatus:
		return walkTree(s.trees[o], desc, c)
	}
	// A value order of every status: merge the status ranges by value.
	ranges := make([]iter.Seq[sortItem], 0, len(statusRanks)+1)
	for r := range len(statusRanks) + 1 {
		rc := c
		rc.pos.rank = uint8(r)
		ranges = append(ranges, walkRank(s.trees[o], uint8(r), desc, rc))
	}
	return mergeByValue(desc, ranges)
}

func walkUUID(tree *btree.BTreeG[*entry], desc bool, c cursor) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		visit := func(e *entry) bool {
			if !c.first && e.uuid == c.pos.uuid {
				return true
			}
			return e.node == nil || yield(sortItem{orderKey{uuid: e.uuid}, e})
		}
		switch {
		case c.first && desc:
			tree.Descend(visit)
		case desc:
			tree.DescendLessOrEqual(&entry{uuid: c.pos.uuid}, visit)
		case c.first:
			tree.Ascend(visit)
		default:
			tree.AscendGreaterOrEqual(&entry{uuid: c.pos.uuid}, visit)
		}
	}
}

// walkTree walks a whole sorted tree from just after c.
func walkTree(tree *btree.BTreeG[sortItem], desc bool, c cursor) iter.Seq[sortItem] {
	return func(yield func(sortItem) bool) {
		visit := func(it sortItem) bool {
			if !c.first && it.orderKey == c.pos {
				return true
			}
			return yield(it)
		}
		switch {
		case c.first && desc:
			tree.Descend(visit)
		case desc:
			tree.DescendLessOrEqual(sortItem{orderKey: c.pos}, visit)
		case c.first:
			tree.Ascend(visit)
		default:
			tree.AscendGreaterOrEqual(sortItem{orderKey: c.pos}, visit)
		}
	}
}

// walkRank walks the items of one status rank from just after c (whose
// pos.rank is ignored: c positions within the rank).
func walkRank(tree *btree.BTreeG[sortItem], rank uint8, desc bool, c cursor) iter.Seq[sortItem] {
	lo := sortItem{orderKey: orderKey{rank: rank, value: math.MinInt64}}
	hi := sortItem{orderKey: orderKey{rank: rank + 1, value: math.MinInt64}} // exclusive
	at := sortItem{orderKey: c.pos}
	at.rank = rank
	return func(yield func(sortItem) bool) {
		visit := func(it sortItem) bool {
			if it.rank != rank {
				return false
			}
			if !c.first && it.orderKey == at.orderKey {
				return true
			}
			return yield(it)
		}
		switch {
		case c.first && desc:
			tree.DescendLessOrEqual(hi, visit) // hi itself is never an item: rank+1 with no uuid
		case desc:
			tree.DescendLessOrEqual(at, visit)
		case c.first:
			tree.AscendRange(lo, hi, visit)
		default:
			tree.AscendRange(at, hi, visit)
		}
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

// sortedSnapshot returns copy-on-write clones of the uuid tree and the
// sorted trees, for a reader that walks far without the lock.
func (v *View) sortedSnapshot() (*btree.BTreeG[*entry], sortIndex) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.byUUID.Clone(), v.sorted.clone()
}
