package registry

// SweepExamined returns how many index entries the last sweep of r looked
// at, for tests that a sweep visits only what expires.
func SweepExamined(r *NodeRegistry) int64 { return r.view.examined.Load() }
