package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/spear-next/sms/internal/cliopt"
	"github.com/spear-next/sms/sqlkv/sqlite"
)

// runBackup runs `sms backup [--kv-path FILE] DEST`: a consistent copy of
// the SQLite database into the new file DEST, safe next to a running
// server (see sqlite.Backup). Postgres is backed up with pg_dump. It
// returns errHelp after printing usage, a *usageError for bad arguments,
// and other errors when the copy fails.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sms backup", flag.ContinueOnError)
	v := options.Select("kv-backend", "kv-path").Bind(fs, getenv)
	var positional []string
	for {
		if err := cliopt.Parse(fs, args); err != nil {
			if errors.Is(err, errHelp) {
				printBackupUsage(stderr)
			}
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	switch b := v.Get("kv-backend"); b {
	case "sqlite":
	case "postgres":
		return bad("kv-backend", "sms backup copies SQLite files; back up Postgres with pg_dump (see the README)", "sqlite")
	default:
		return bad("kv-backend", fmt.Sprintf("%q has nothing to back up", b), "sqlite")
	}
	if len(positional) != 1 {
		return &usageError{Msg: "backup needs one argument, the new file to write; see sms backup --help"}
	}
	src, dest := v.Get("kv-path"), positional[0]
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
	fmt.Fprintf(w, "Writes a consistent copy of the SQLite database (default %s, env %s)\n", options.Lookup("kv-path").Default, options.Lookup("kv-path").Env)
	fmt.Fprintf(w, "into the new file DEST, while a server may be using it. To restore, stop\n")
	fmt.Fprintf(w, "the server and start it with --kv-path DEST (or move DEST into place after\n")
	fmt.Fprintf(w, "removing the old file with its -wal and -shm files). Postgres: use pg_dump.\n")
	fmt.Fprintf(w, "Exit status: 0 done, 1 the copy failed, 2 a usage error.\n")
}
