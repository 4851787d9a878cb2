package readme

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/testutil"
)

func TestBlocks(t *testing.T) {
	md := "# x\n" + Marker + "\n\n```sh\necho a\n```\n```sh\nnot marked\n```\n" + Marker + "\n```go\npackage main\n```\n"
	blocks, err := Blocks(strings.NewReader(md))
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 2 || blocks[0] != (Block{"sh", 4, "echo a\n"}) || blocks[1] != (Block{"go", 11, "package main\n"}) {
		t.Errorf("Blocks = %+v, want the two marked blocks", blocks)
	}
	for _, bad := range []string{Marker + "\n```json\n{}\n```\n", Marker + "\ntext\n", Marker + "\n```sh\nopen\n", Marker + "\n"} {
		if _, err := Blocks(strings.NewReader(bad)); err == nil {
			t.Errorf("Blocks(%q) = nil error, want one", bad)
		}
	}
}

// defaultAddrs are the server addresses the README's examples use: the
// default one-port address and SPEAR's HTTP port. The test's server serves
// everything on one free port, which replaces both.
var defaultAddrs = []string{"127.0.0.1:50051", "127.0.0.1:8080"}

// TestREADME runs the README's runnable blocks (see the package comment).
func TestREADME(t *testing.T) {
	if os.Getenv("SMS_TEST_README") == "" {
		t.Skip("set SMS_TEST_README=1 to run the README's runnable blocks (builds both binaries in a copy of the repository; CI does)")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := Blocks(f)
	f.Close()
	if err != nil {
		t.Fatalf("README.md: %v", err)
	}
	if len(blocks) == 0 {
		t.Fatal("README.md has no runnable blocks")
	}

	tmp := t.TempDir()
	work := filepath.Join(tmp, "sms")
	copyTracked(t, root, work)
	env := freshShell(t, tmp)

	// Go blocks: whole programs, compiled and vetted in the module.
	for _, b := range blocks {
		if b.Lang != "go" {
			continue
		}
		dir := filepath.Join(work, "internal", fmt.Sprintf("readme_line%d", b.Line))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(b.Text), 0o644); err != nil {
			t.Fatal(err)
		}
		run(t, work, env, "go", "vet", "./internal/"+filepath.Base(dir))
	}

	// The server the shell blocks talk to, built from the copy.
	bin := filepath.Join(tmp, "server", "sms")
	run(t, work, env, "go", "build", "-o", bin, "./cmd/sms")
	addr := testutil.HoldPort(t)
	server := testutil.Command(t, t.Context(), bin, "--addr", addr)
	server.Dir, server.Env = work, env
	var serverLog strings.Builder
	server.Stdout, server.Stderr = &serverLog, &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		server.Process.Signal(syscall.SIGTERM)
		server.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
		}
	}()
	testutil.WaitHealthy(t, "http://"+addr)

	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	fmt.Fprintf(&script, "export SMS_ADDR=%s\n", addr)
	for _, b := range blocks {
		if b.Lang != "sh" {
			continue
		}
		fmt.Fprintf(&script, "printf '\\n+ README.md:%d\\n' >&2\n", b.Line)
		text := b.Text
		for _, a := range defaultAddrs {
			text = strings.ReplaceAll(text, a, addr)
		}
		script.WriteString(text)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	sh := exec.CommandContext(ctx, "bash", "-c", script.String())
	sh.Dir, sh.Env = work, env
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("README.md's runnable blocks failed: %v\n%s", err, out)
	}
	t.Logf("README.md's runnable blocks:\n%s", out)
}

// copyTracked copies the files git tracks in root (as modified in the
// working tree) into dst: what a fresh clone holds, with local edits.
func copyTracked(t *testing.T, root, dst string) {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if err != nil || !fi.Mode().IsRegular() {
			continue // deleted in the working tree, or a symlink or submodule
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(target, b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
}

// freshShell is the environment of a new user's shell: the system's PATH
// with Go, an empty HOME and GOPATH under tmp, none of SMS's variables.
// Only the build and module caches (and the module proxy setting) are
// shared, for speed.
func freshShell(t *testing.T, tmp string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go not on PATH: %v", err)
	}
	goEnv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	home := filepath.Join(tmp, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"HOME=" + home,
		"PATH=" + filepath.Dir(goBin) + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"GOPATH=" + filepath.Join(tmp, "gopath"),
		"GOCACHE=" + goEnv("GOCACHE"),
		"GOMODCACHE=" + goEnv("GOMODCACHE"),
		"GOPROXY=" + goEnv("GOPROXY"),
		"GOTOOLCHAIN=local",
		"LANG=C.UTF-8",
	}
	if tmpdir := os.Getenv("TMPDIR"); tmpdir != "" {
		env = append(env, "TMPDIR="+tmpdir)
	}
	return env
}

func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
