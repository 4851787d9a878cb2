package hostmetrics

import (
	"context"
	"testing"

	"github.com/spear-next/sms/internal/testutil"
)

func TestCollect(t *testing.T) {
	s := New(t.TempDir())
	for i := range 2 { // the first samples for FirstSample, the second uses the first's counters
		r, err := s.Collect(t.Context())
		if err != nil {
			t.Fatalf("Collect %d: %v", i, err)
		}
		if got, want := r.MemoryTotal, testutil.MemTotal(t); got != want {
			t.Errorf("Collect %d: memory total %d, want MemTotal %d", i, got, want)
		}
		if r.MemoryUsed <= 0 || r.MemoryAvailable <= 0 || r.MemoryUsed > r.MemoryTotal {
			t.Errorf("Collect %d: memory used %d, available %d of %d", i, r.MemoryUsed, r.MemoryAvailable, r.MemoryTotal)
		}
		for name, p := range map[string]float64{"cpu": r.CPUPercent, "memory": r.MemoryPercent, "disk": r.DiskPercent} {
			if p < 0 || p > 100 {
				t.Errorf("Collect %d: %s %v%%, want 0..100", i, name, p)
			}
		}
		if r.DiskTotal <= 0 || r.NetworkRxPerSec < 0 || r.NetworkTxPerSec < 0 || r.Load1 < 0 {
			t.Errorf("Collect %d: %+v, want a disk size and non-negative rates and loads", i, r)
		}
	}
}

func TestCollectErrors(t *testing.T) {
	if _, err := New("/nonexistent/path").Collect(t.Context()); err == nil {
		t.Error("Collect with a missing disk path succeeded")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := New("/").Collect(ctx); err == nil {
		t.Error("first Collect with a cancelled context succeeded")
	}
}

func TestRate(t *testing.T) {
	if got := rate(1000, 3000, 2); got != 1000 {
		t.Errorf("rate(1000, 3000, 2s) = %d, want 1000", got)
	}
	if got := rate(3000, 1000, 2); got != 0 {
		t.Errorf("rate of a counter that went back = %d, want 0", got)
	}
	if got := clampPercent(100.0000001); got != 100 {
		t.Errorf("clampPercent(100.0000001) = %v, want 100", got)
	}
}
