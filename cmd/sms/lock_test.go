package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/spear-next/sms/internal/testutil"
)

// TestOneServerPerSQLiteFile runs real processes: a second sms on a file a
// running one holds fails at start with one line naming the file and the
// holder's pid; once the holder is SIGKILLed (the kernel drops its lock), a
// new one starts on the same file.
func TestOneServerPerSQLiteFile(t *testing.T) {
	bin := testutil.BuildBinary(t, ".", "sms")
	path := filepath.Join(t.TempDir(), "sms.db")

	addr := testutil.HoldPort(t)
	holder := testutil.StartProcess(t, bin, "--addr", addr, "--kv-path", path)
	holder.WaitHealthy(t, "http://"+addr)
	registerOverHTTP(t, "http://"+addr)

	_, errOut, status := testutil.RunBinary(t, bin, "--addr", testutil.HoldPort(t), "--kv-path", path)
	want := fmt.Sprintf("%s is in use by process %d", path, holder.Cmd.Process.Pid)
	if status != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, want) {
		t.Errorf("second sms on %s: status %d, stderr %q; want 1 and one line with %q", path, status, errOut, want)
	}

	if err := holder.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL: %v", err)
	}
	<-holder.Exited
	addr = testutil.HoldPort(t)
	next := testutil.StartProcess(t, bin, "--addr", addr, "--kv-path", path)
	next.WaitHealthy(t, "http://"+addr)
	next.Stop(t, syscall.SIGTERM)
}
