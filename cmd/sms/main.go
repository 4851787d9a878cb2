// Command sms runs the SMS metadata server: the node and resource registries
// over Connect, gRPC and gRPC-web on one port, backed by a memory, SQLite or
// Postgres key/value store.
//
// It is the only place that reads flags and environment variables and names
// concrete stores; run `sms --help` for the settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spear-next/sms/internal/buildinfo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first signal, restore the default handling so that a
		// second one ends a shutdown that hangs.
		<-ctx.Done()
		stop()
	}()
	var err error
	args := os.Args[1:]
	switch {
	case len(args) == 1 && (args[0] == "--version" || args[0] == "-version"):
		fmt.Println(buildinfo.String("sms"))
	case len(args) > 0 && args[0] == "migrate":
		err = runMigrate(ctx, args[1:], os.Getenv, stdinTerminal(), os.Stdout, os.Stderr)
	case len(args) > 0 && args[0] == "backup":
		err = runBackup(ctx, args[1:], os.Getenv, os.Stdout, os.Stderr)
	default:
		err = run(ctx, args, os.Getenv, os.Stderr, listeners{})
	}
	os.Exit(exitCode(err, os.Stderr))
}

// exitCode reports err on one line of stderr and maps it to an exit status:
// 0 for success and --help, 2 for a configuration mistake, 1 otherwise.
func exitCode(err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, errHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "sms: %s\n", oneLine(err.Error()))
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// run parses the configuration from args and getenv and serves until ctx is
// done, then shuts down gracefully. Logs go to stderr. It serves on ls if
// any is set (tests pass listeners bound to port 0, and the configured
// addresses are ignored then), else on listeners opened from the
// configuration. It returns errHelp after printing --help, a *usageError
// for a bad setting, and nil after a clean shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ls listeners) error {
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		ls.closeAll()
		return err
	}
	if ls == (listeners{}) {
		if ls, err = listen(ctx, cfg); err != nil {
			return err
		}
	}
	return serve(ctx, cfg, ls, stderr)
}
