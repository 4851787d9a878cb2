package testutil

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Eventually polls cond every 10ms until it holds, and fails t naming what
// it waited for after 30 seconds: a bound for a broken test, not a timing
// assertion.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// MemTotal returns the machine's memory in bytes, MemTotal of
// /proc/meminfo, to check what an agent reports against. It skips t where
// there is no /proc/meminfo.
func MemTotal(t testing.TB) int64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Skipf("no /proc/meminfo: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// MemTotal:       16318412 kB
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse MemTotal %q: %v", rest, err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
