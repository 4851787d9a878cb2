package registry

import (
	"math"
	"testing"
)

func TestAddSaturating(t *testing.T) {
	for _, tt := range []struct{ a, b, want int64 }{
		{1, 2, 3},
		{math.MaxInt64, 1, math.MaxInt64},
		{math.MaxInt64, math.MaxInt64, math.MaxInt64},
		{math.MaxInt64 - 1, 1, math.MaxInt64},
		{math.MinInt64, -1, math.MinInt64},
		{math.MinInt64, math.MaxInt64, -1},
		{-5, 3, -2},
	} {
		if got := addSaturating(tt.a, tt.b); got != tt.want {
			t.Errorf("addSaturating(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
