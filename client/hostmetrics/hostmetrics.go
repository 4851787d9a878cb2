// Package hostmetrics measures the machine it runs on, through gopsutil,
// as a client.MetricsSource: CPU usage, memory, the disk usage of one path,
// network receive and transmit rates and load averages.
package hostmetrics

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	psnet "github.com/shirou/gopsutil/v4/net"

	"github.com/spear-next/sms/client"
)

// FirstSample is how long the first Collect measures CPU usage and
// network rates over, having no earlier counters to compare with.
const FirstSample = 250 * time.Millisecond

// Source measures the machine. Its zero value is not usable; make one with
// New.
type Source struct {
	diskPath string

	mu   sync.Mutex
	prev *counters // nil before the first Collect
}

var _ client.MetricsSource = (*Source)(nil)

// New returns a Source reporting the disk usage of the file system holding
// diskPath.
func New(diskPath string) *Source { return &Source{diskPath: diskPath} }

// counters are the cumulative figures rates are computed from.
type counters struct {
	at         time.Time
	busy, all  float64 // CPU seconds, all CPUs
	rx, tx     uint64  // bytes, every interface but loopback
	haveCPU    bool
	haveNetIOs bool
}

func read(ctx context.Context) (counters, error) {
	c := counters{at: time.Now()}
	times, err := cpu.TimesWithContext(ctx, false)
	if err != nil {
		return c, fmt.Errorf("cpu times: %w", err)
	}
	if len(times) > 0 {
		t := times[0]
		// Guest time is already part of user time on Linux.
		c.all = t.User + t.System + t.Idle + t.Nice + t.Iowait + t.Irq + t.Softirq + t.Steal
		c.busy = c.all - t.Idle - t.Iowait
		c.haveCPU = true
	}
	nics, err := psnet.IOCountersWithContext(ctx, true)
	if err != nil {
		return c, fmt.Errorf("network counters: %w", err)
	}
	for _, n := range nics {
		if n.Name == "lo" {
			continue // loopback traffic never leaves the machine
		}
		c.rx += n.BytesRecv
		c.tx += n.BytesSent
	}
	c.haveNetIOs = true
	return c, nil
}

// Collect measures the machine. CPU usage and network rates are over the
// time since the previous Collect; the first one samples for FirstSample.
// Its errors name the figure that could not be read.
func (s *Source) Collect(ctx context.Context) (client.Resource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prev == nil {
		first, err := read(ctx)
		if err != nil {
			return client.Resource{}, err
		}
		s.prev = &first
		select {
		case <-ctx.Done():
			return client.Resource{}, ctx.Err()
		case <-time.After(FirstSample):
		}
	}
	now, err := read(ctx)
	if err != nil {
		return client.Resource{}, err
	}
	prev := *s.prev
	s.prev = &now

	var r client.Resource
	if d := now.all - prev.all; now.haveCPU && prev.haveCPU && d > 0 {
		r.CPUPercent = clampPercent(100 * (now.busy - prev.busy) / d)
	}
	if secs := now.at.Sub(prev.at).Seconds(); secs > 0 {
		r.NetworkRxPerSec = rate(prev.rx, now.rx, secs)
		r.NetworkTxPerSec = rate(prev.tx, now.tx, secs)
	}

	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return client.Resource{}, fmt.Errorf("memory: %w", err)
	}
	r.MemoryTotal, r.MemoryUsed, r.MemoryAvailable = toInt64(vm.Total), toInt64(vm.Used), toInt64(vm.Available)
	r.MemoryPercent = clampPercent(vm.UsedPercent)

	du, err := disk.UsageWithContext(ctx, s.diskPath)
	if err != nil {
		return client.Resource{}, fmt.Errorf("disk usage of %s: %w", s.diskPath, err)
	}
	r.DiskTotal, r.DiskUsed = toInt64(du.Total), toInt64(du.Used)
	r.DiskPercent = clampPercent(du.UsedPercent)
	r.Metadata = map[string]string{"disk_path": s.diskPath}

	avg, err := load.AvgWithContext(ctx)
	if err != nil {
		return client.Resource{}, fmt.Errorf("load averages: %w", err)
	}
	r.Load1, r.Load5, r.Load15 = max(avg.Load1, 0), max(avg.Load5, 0), max(avg.Load15, 0)
	return r, nil
}

// rate is bytes per second between two counter readings; a counter that
// went backwards (an interface removed, a wrap) gives 0 rather than a
// negative rate.
func rate(before, after uint64, secs float64) int64 {
	if after < before {
		return 0
	}
	return int64(float64(after-before) / secs)
}

func clampPercent(p float64) float64 {
	if p != p { // NaN
		return 0
	}
	return min(max(p, 0), 100)
}

func toInt64(v uint64) int64 {
	if v > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(v)
}
