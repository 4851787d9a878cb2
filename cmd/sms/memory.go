package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/spear-next/sms/service/registry"
)

// The Go heap's soft limit (runtime/debug.SetMemoryLimit, what GOMEMLIMIT
// sets): above it the garbage collector runs more often, and never fails
// an allocation. Without one, the heap grows to twice the live heap
// between collections (GOGC=100): with the view of a million nodes live
// (about 0.6 GiB), that is 1.2 GiB and more after a burst of WatchNodes
// snapshots, though the view itself never grows.

// autoMemoryLimit is what --memory-limit auto picks without a cgroup
// memory limit: 896 MiB keeps a server of up to about a million nodes
// under 1 GiB of RSS through bursts (the rest of the GiB is for what the
// Go heap does not count: SQLite's page caches, up to 32 MB per
// connection, are C memory of modernc's libc), at the price of more
// frequent collections; a bigger fleet's view alone can outgrow it, and
// then the collector runs all the time (Go caps it at about half the CPU)
// until the limit is raised, which the server warns about once the view is
// loaded.
const autoMemoryLimit = 896 << 20

// cgroupShare is the share of a cgroup's memory limit --memory-limit auto
// takes, leaving the rest to what the Go heap does not count (stacks,
// the runtime's own memory, SQLite's page cache, the kernel's buffers).
const cgroupShare = 0.9

// memorySetting is a parsed --memory-limit.
type memorySetting struct {
	auto  bool
	limit int64 // bytes; 0 = none (when not auto)
}

// parseMemoryLimit parses --memory-limit: auto, 0 or off (none), or a
// size: bytes, or a number with a unit B, KiB, MiB, GiB or TiB.
func parseMemoryLimit(raw string) (memorySetting, error) {
	switch strings.ToLower(raw) {
	case "auto":
		return memorySetting{auto: true}, nil
	case "0", "off", "none":
		return memorySetting{}, nil
	}
	num, mult := raw, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if n, ok := strings.CutSuffix(raw, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil || f <= 0 || f*float64(mult) >= math.MaxInt64 || math.IsNaN(f) {
		return memorySetting{}, fmt.Errorf("%q is not a size", raw)
	}
	return memorySetting{limit: int64(f * float64(mult))}, nil
}

// resolve returns the limit to set and where it comes from; 0 = none. An
// auto setting yields to a GOMEMLIMIT variable (the Go runtime applied it
// already), then takes cgroupShare of the cgroup's memory limit, then
// autoMemoryLimit.
func (m memorySetting) resolve(getenv func(string) string, cgroupLimit func() int64) (int64, string) {
	if !m.auto {
		if m.limit == 0 {
			return 0, "--memory-limit 0"
		}
		return m.limit, "--memory-limit"
	}
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT"
	}
	if l := cgroupLimit(); l > 0 {
		return int64(float64(l) * cgroupShare), "cgroup memory limit"
	}
	return autoMemoryLimit, "default"
}

// apply sets the limit (0: none) and returns it.
func applyMemoryLimit(limit int64) {
	if limit <= 0 {
		debug.SetMemoryLimit(math.MaxInt64)
		return
	}
	debug.SetMemoryLimit(limit)
}

// cgroupMemoryLimit returns the memory limit of this process's cgroup, v2
// (memory.max) or v1 (memory.limit_in_bytes), or 0 when there is none or it
// cannot be read. Hand-written: the library that does this
// (automemlimit) is not among the project's dependencies, and this is the
// part of it SMS needs.
func cgroupMemoryLimit() int64 {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// hierarchy-ID:controllers:path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			file = "/sys/fs/cgroup" + parts[2] + "/memory.max"
		case strings.Contains(","+parts[1]+",", ",memory,"):
			file = "/sys/fs/cgroup/memory" + parts[2] + "/memory.limit_in_bytes"
		default:
			continue
		}
		if l := readLimit(file); l > 0 {
			return l
		}
	}
	return 0
}

// readLimit reads a cgroup memory limit file: 0 for "max", a value no
// machine has (v1's "unlimited" is close to 2^63), or an unreadable file.
func readLimit(file string) int64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0
	}
	return n
}

// warnNearMemoryLimit waits for the view to load, then warns if its live
// heap is past 80% of limit: the collector would then run almost all the
// time.
func warnNearMemoryLimit(ctx context.Context, view *registry.View, limit int64, logger *slog.Logger) {
	if limit <= 0 || view.WaitLoaded(ctx) != nil {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	if live := sample[0].Value.Uint64(); float64(live) > 0.8*float64(limit) {
		logger.Warn("the live heap is near the memory limit: raise --memory-limit (SMS_MEMORY_LIMIT)",
			"live_heap_bytes", live, "memory_limit_bytes", limit)
	}
}
