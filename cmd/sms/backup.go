package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/spear-next/sms/sqlkv/sqlite"
)

// runBackup runs `sms backup [--kv-path FILE] DEST`: a consistent copy of
// the SQLite database into the new file DEST, safe next to a running
// server (see sqlite.Backup). Postgres is backed up with pg_dump. It
// returns errHelp after printing usage, a *usageError for bad arguments,
// and other errors when the copy fails.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sms backup", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	backend := lookup("kv-backend")
	path := lookup("kv-path")
	backendFlag := fs.String(backend.name, backend.def, backend.usage)
	pathFlag := fs.String(path.name, path.def, path.usage)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printBackupUsage(stderr)
				return errHelp
			}
			return &usageError{err.Error() + "; see sms backup --help"}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	resolve := func(o option, v string) string {
		if !set[o.name] && getenv(o.env) != "" {
			return getenv(o.env)
		}
		return v
	}
	switch b := resolve(backend, *backendFlag); b {
	case "sqlite":
	case "postgres":
		return bad("kv-backend", "sms backup copies SQLite files; back up Postgres with pg_dump (see the README)", "sqlite")
	default:
		return bad("kv-backend", fmt.Sprintf("%q has nothing to back up", b), "sqlite")
	}
	if len(positional) != 1 {
		return &usageError{"backup needs one argument, the new file to write; see sms backup --help"}
	}
	src, dest := resolve(path, *pathFlag), positional[0]
	if err := sqlite.Backup(ctx, src, dest); err != nil {
		return err
	}
	size := "?"
	if fi, err := os.Stat(dest); err == nil {
		size = fmt.Sprint(fi.Size())
	}
	fmt.Fprintf(stdout, "backed up %s to %s (%s bytes)\n", src, dest, size)
	return nil
}

func printBackupUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sms backup [--kv-path FILE] DEST\n\n")
	fmt.Fprintf(w, "Writes a consistent copy of the SQLite database (default %s, env %s)\n", lookup("kv-path").def, lookup("kv-path").env)
	fmt.Fprintf(w, "into the new file DEST, while a server may be using it. To restore, stop\n")
	fmt.Fprintf(w, "the server and start it with --kv-path DEST (or move DEST into place after\n")
	fmt.Fprintf(w, "removing the old file with its -wal and -shm files). Postgres: use pg_dump.\n")
	fmt.Fprintf(w, "Exit status: 0 done, 1 the copy failed, 2 a usage error.\n")
}
