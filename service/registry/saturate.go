package registry

import "math"

// addSaturating returns a+b, or math.MaxInt64 / math.MinInt64 where the sum
// would overflow: the cluster sums (GetClusterStats' memory totals) stay
// meaningful, pinned at the int64 limit, however many large reports they
// add up, instead of wrapping to a negative number.
func addSaturating(a, b int64) int64 {
	s := a + b
	switch {
	case a > 0 && b > 0 && s < 0:
		return math.MaxInt64
	case a < 0 && b < 0 && s >= 0:
		return math.MinInt64
	}
	return s
}
