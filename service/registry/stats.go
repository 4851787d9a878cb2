package registry

import (
	"math"
	"math/bits"
)

// counters are what ClusterStats reports, kept by the view: every change
// subtracts the old entry's contribution and adds the new one's, so a
// ClusterStats call is O(1).
//
// The percentage sums are integers in millionths of a percent, so adding
// and later removing a report leaves the sum exactly as it was (float sums
// would drift over millions of updates); averages are therefore exact to
// 1e-6 percentage points. Byte sums are 128-bit, so they cannot overflow
// (2^63 bytes per node, 2^64 nodes); ClusterStats saturates them to int64.
type counters struct {
	nodes    int64
	byStatus [4]int64 // by statusIndex
	withRes  int64
	cpu, mem int64 // millionths of a percent
	memTotal wide
	memUsed  wide
	highLoad int64
}

// percentScale is the unit of the percentage sums: 1e-6 percentage points.
const percentScale = 1e6

var statuses = [4]Status{StatusActive, StatusInactive, StatusUnhealthy, StatusDecommissioning}

func statusIndex(s Status) int {
	for i, st := range statuses {
		if st == s {
			return i
		}
	}
	return -1
}

// account adds (sign +1) or removes (sign -1) e's contribution.
func (c *counters) account(e *entry, sign int64, t Thresholds) {
	if e.node == nil {
		return // a report whose node is gone does not count
	}
	c.nodes += sign
	if i := statusIndex(e.status()); i >= 0 {
		c.byStatus[i] += sign
	}
	if e.res == nil {
		return
	}
	r := e.res
	c.withRes += sign
	c.cpu += sign * int64(math.Round(r.CPU*percentScale))
	c.mem += sign * int64(math.Round(r.Mem*percentScale))
	c.memTotal.add(sign, r.MemTotal)
	c.memUsed.add(sign, r.MemUsed)
	if r.CPU > t.CPUPercent || r.Mem > t.MemoryPercent || r.Load1 > t.LoadAverage1m {
		c.highLoad += sign
	}
}

func (c *counters) clusterStats() ClusterStats {
	st := ClusterStats{
		TotalNodes:         c.nodes,
		NodesByStatus:      make(map[Status]int64, len(statuses)),
		NodesWithResources: c.withRes,
		TotalMemoryBytes:   c.memTotal.saturated(),
		UsedMemoryBytes:    c.memUsed.saturated(),
		HighLoadNodes:      c.highLoad,
	}
	for i, s := range statuses {
		st.NodesByStatus[s] = c.byStatus[i]
	}
	if c.withRes > 0 {
		st.AverageCPUPercent = float64(c.cpu) / percentScale / float64(c.withRes)
		st.AverageMemoryPercent = float64(c.mem) / percentScale / float64(c.withRes)
	}
	return st
}

// wide is a signed 128-bit integer: hi*2^64 + lo.
type wide struct {
	hi int64
	lo uint64
}

// add adds sign*x (sign is +1 or -1).
func (w *wide) add(sign, x int64) {
	xhi := int64(0)
	if x < 0 {
		xhi = -1
	}
	var carry uint64
	if sign > 0 {
		w.lo, carry = bits.Add64(w.lo, uint64(x), 0)
		w.hi += xhi + int64(carry)
		return
	}
	w.lo, carry = bits.Sub64(w.lo, uint64(x), 0)
	w.hi -= xhi + int64(carry)
}

// saturated returns w clamped to the int64 range.
func (w wide) saturated() int64 {
	switch {
	case w.hi == 0 && w.lo <= math.MaxInt64:
		return int64(w.lo)
	case w.hi == -1 && w.lo > math.MaxInt64:
		return int64(w.lo)
	case w.hi < 0:
		return math.MinInt64
	}
	return math.MaxInt64
}

// Counts returns the view's counters as they are now, in O(1), without a
// read fence (so they may lag the store by the change feed's delay): what
// metrics report. behind is why the view is behind the store while it is
// (its change feed or re-reads failing; the counts are then those of what
// it last applied), nil when it is current. loaded is false, and the rest
// zero, until the view is loaded.
func (v *View) Counts() (st ClusterStats, behind error, loaded bool) {
	if !v.Loaded() {
		return ClusterStats{}, nil, false
	}
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.stats.clusterStats(), v.failure, true
}

// EachAge calls node with the status and last heartbeat (Unix nanoseconds)
// of every node, and report with the time (Unix nanoseconds) of the
// resource report of every node that has one, from one snapshot of the
// view, without a read fence and without allocating: the metrics' age
// histograms. It is O(nodes), but reads only the view's entries. It
// returns false, calling neither, until the view is loaded.
func (v *View) EachAge(node func(s Status, lastSeen int64), report func(updatedAt int64)) bool {
	if !v.Loaded() {
		return false
	}
	tree, _ := v.snapshot()
	tree.Ascend(func(e *entry) bool {
		if e.node == nil {
			return true // as the counters: a report whose node is gone does not count
		}
		node(e.status(), e.lastSeen())
		if e.res != nil {
			report(e.res.UpdatedAt)
		}
		return true
	})
	return true
}
