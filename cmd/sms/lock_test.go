package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestOneServerPerSQLiteFile runs real processes: a second sms on a file a
// running one holds fails at start with one line naming the file and the
// holder's pid; once the holder is SIGKILLed (the kernel drops its lock), a
// new one starts on the same file.
func TestOneServerPerSQLiteFile(t *testing.T) {
	bin := buildBinary(t)
	path := filepath.Join(t.TempDir(), "sms.db")

	addr := holdPort(t)
	holder := startProcess(t, bin, "--addr", addr, "--kv-path", path)
	holder.waitHealthy(t, "http://"+addr)
	registerOverHTTP(t, "http://"+addr)

	_, errOut, status := runBin(t, bin, "--addr", holdPort(t), "--kv-path", path)
	want := fmt.Sprintf("%s is in use by process %d", path, holder.cmd.Process.Pid)
	if status != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) {
		t.Errorf("second sms on %s: status %d, stderr %q; want 1 and one line with %q", path, status, errOut, want)
	}

	if err := holder.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-holder.exited
	addr = holdPort(t)
	next := startProcess(t, bin, "--addr", addr, "--kv-path", path)
	next.waitHealthy(t, "http://"+addr)
	next.stop(t, syscall.SIGTERM)
}
