// Package procstat reads a process's resident memory from /proc, for the
// load generator and the measuring tests.
package procstat

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// RSS returns the resident set size of process pid (0: this one) in bytes,
// or -1 where /proc cannot tell (not Linux, process gone).
func RSS(pid int) int64 {
	p := "/proc/self/status"
	if pid > 0 {
		p = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(p)
	if err != nil {
		return -1
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return -1
			}
			return kb << 10
		}
	}
	return -1
}
