// Command smsctl is the command-line client of SMS: it lists, inspects,
// registers, updates and watches nodes, reads and reports node resources,
// shows cluster statistics, and places invocations (sms.PlacementService),
// through the client package (Connect, gRPC or gRPC-web, TLS, token,
// retries). Run `smsctl --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/internal/buildinfo"
)

// Exit statuses, documented in usage and the README.
const (
	exitOK       = 0
	exitRPC      = 1 // the call failed: connection, server or RPC error
	exitUsage    = 2 // bad command line
	exitNotFound = 3 // the node or resource does not exist
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errNotFound is returned for a node or resource the server does not know
// (found=false); a not_found RPC error is treated the same: exit status 3.
var errNotFound = errors.New(connect.CodeNotFound.String())

// errHelp means usage was printed on request: exit status 0.
var errHelp = errors.New("help requested")

// command is one leaf command such as "nodes list".
type command struct {
	name    string // "nodes list"
	args    string // positional arguments, for usage
	summary string
	// flags registers the command's own flags on fs and returns the
	// function that runs it with the positional arguments.
	flags func(fs *flag.FlagSet) func(ctx context.Context, c *cli, args []string) error
}

var commands = []command{
	nodesList, nodesGet, nodesRegister, nodesUpdate, nodesDelete, nodesHeartbeat, nodesWatch,
	resourcesGet, resourcesList, resourcesUpdate,
	stats,
	placeReport, penalties, place, // "place report" before "place"
}

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, getenv, stdout, stderr)
	var ue *usageError
	var ce *connect.Error
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "smsctl: %s\n", ue.msg)
		return exitUsage
	case errors.Is(err, errNotFound):
		fmt.Fprintf(stderr, "smsctl: %s\n", err)
		return exitNotFound
	case errors.As(err, &ce):
		fmt.Fprintf(stderr, "smsctl: %s: %s\n", ce.Code(), oneLine(message(ce)))
		if ce.Code() == connect.CodeNotFound {
			return exitNotFound
		}
		return exitRPC
	default:
		fmt.Fprintf(stderr, "smsctl: %s\n", oneLine(err.Error()))
		return exitRPC
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func dispatch(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var g globals
	top := flag.NewFlagSet("smsctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	g.register(top)
	version := top.Bool("version", false, "print the version and exit")
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return errHelp
		}
		return usagef("%s; see smsctl --help", err)
	}
	rest := top.Args()
	if *version {
		fmt.Fprintln(stdout, buildinfo.String("smsctl"))
		return errHelp
	}
	if len(rest) == 0 {
		printUsage(stderr)
		return usagef("missing command; see smsctl --help")
	}
	if rest[0] == "help" {
		printUsage(stdout)
		return errHelp
	}
	// Commands are one word (stats) or two (nodes list).
	var cmd *command
	for i := range commands {
		words := strings.Fields(commands[i].name)
		if len(rest) >= len(words) && strings.Join(rest[:len(words)], " ") == commands[i].name {
			cmd = &commands[i]
			rest = rest[len(words):]
			break
		}
	}
	if cmd == nil {
		return usagef("unknown command %q; see smsctl --help", strings.Join(rest[:min(2, len(rest))], " "))
	}

	fs := flag.NewFlagSet("smsctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	g.register(fs) // global flags may also follow the command
	runCmd := cmd.flags(fs)
	// Flags and positional arguments may be mixed: parse until no flag is left.
	var positional []string
	for {
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printCommandUsage(stdout, cmd, fs)
				return errHelp
			}
			return usagef("%s; see smsctl %s --help", err, cmd.name)
		}
		rest = fs.Args()
		if len(rest) == 0 {
			break
		}
		positional = append(positional, rest[0])
		rest = rest[1:]
	}

	set := map[string]bool{}
	top.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	c, err := g.client(set, getenv, stdout, stderr)
	if err != nil {
		return err
	}
	defer c.close()
	return runCmd(ctx, c, positional)
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: smsctl [global flags] <command> [flags] [args]

smsctl talks to an SMS server (sms.NodeService, sms.PlacementService) with
the generated clients.

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-42s %s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprint(w, `
Global flags (also accepted after the command):
`)
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	var g globals
	g.register(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Exit status: 0 success; 1 the call failed (connection, server or RPC error,
printed as "smsctl: <code>: <message>"); 2 usage error; 3 node or resource not
found. Run "smsctl <command> --help" for a command's flags, "smsctl --version"
for the build.
`)
}

func printCommandUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: smsctl %s [flags] %s\n\n%s.\n\nFlags (global flags included):\n", c.name, c.args, c.summary)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
