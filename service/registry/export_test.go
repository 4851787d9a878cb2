package registry

// SweepExamined returns how many index entries the last sweep of r looked
// at, for tests that a sweep visits only what expires.
func SweepExamined(r *NodeRegistry) int64 { return r.view.examined.Load() }

// SetSweepBatch makes sweeps put up to n transitions in one Apply until
// the test ends, for tests that need many Applies from a small fleet.
func SetSweepBatch(t interface{ Cleanup(func()) }, n int) {
	old := sweepBatch
	sweepBatch = n
	t.Cleanup(func() { sweepBatch = old })
}

// SweepWorkers is how many Applies a sweep has in flight at most.
func SweepWorkers() int { return sweepWorkers }
