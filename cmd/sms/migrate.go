package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/spear-next/sms/sqlkv/kvstore"
)

// migrateOptions are the options `sms migrate` takes: those that name the
// database, with the server's flags and environment variables.
var migrateOptions = []string{"kv-backend", "kv-path", "kv-dsn"}

// migrateTimeout bounds one migrate command; the Postgres lock alone may be
// waited for up to 5 minutes (see migrations.NewPostgresProvider).
const migrateTimeout = 10 * time.Minute

// runMigrate runs `sms migrate up|down|status [flags]`: up applies every
// pending migration, down rolls back the latest applied one, status lists
// each migration as applied or pending. Reports go to stdout. It returns
// errHelp after printing usage, a *usageError for bad arguments, and other
// errors (never holding the DSN's password) when the database fails.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sms migrate", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := map[string]*string{}
	for _, name := range migrateOptions {
		o := lookup(name)
		flags[name] = fs.String(o.name, o.def, o.usage)
	}
	// Flags may come before or after the command.
	parse := func(args []string) error {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				printMigrateUsage(stderr)
				return errHelp
			}
			return &usageError{err.Error() + "; see sms migrate --help"}
		}
		return nil
	}
	if err := parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{"migrate needs a command: up, down or status; see sms migrate --help"}
	}
	command := fs.Arg(0)
	if err := parse(fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{fmt.Sprintf("unexpected argument %q; see sms migrate --help", fs.Arg(0))}
	}
	switch command {
	case "up", "down", "status":
	default:
		return &usageError{fmt.Sprintf("unknown migrate command %q; want up, down or status", command)}
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	v := values{raw: map[string]string{}, given: map[string]bool{}}
	for _, name := range migrateOptions {
		o := lookup(name)
		switch {
		case set[name]:
			v.raw[name], v.given[name] = *flags[name], true
		case getenv(o.env) != "":
			v.raw[name], v.given[name] = getenv(o.env), true
		default:
			v.raw[name] = o.def
		}
	}
	sc, err := v.storeConfig()
	if err != nil {
		return err
	}
	if sc.Backend == kvstore.BackendMemory {
		return bad("kv-backend", "the memory backend has no migrations", "sqlite or postgres")
	}

	ctx, cancel := context.WithTimeout(ctx, migrateTimeout)
	defer cancel()
	err = migrate(ctx, command, sc, stdout)
	return redactError(err, dsnSecrets(sc.DSN)...)
}

func migrate(ctx context.Context, command string, sc kvstore.Config, w io.Writer) (err error) {
	p, db, err := kvstore.Migrations(ctx, sc)
	if err != nil {
		return fmt.Errorf("open %s: %w", sc.Backend, err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close database: %w", cerr)
		}
	}()

	switch command {
	case "up":
		results, err := p.Up(ctx)
		for _, r := range results {
			fmt.Fprintf(w, "applied %s (%s)\n", r.Source.Path, r.Duration.Round(time.Millisecond))
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
	case "down":
		r, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("migrate down: no migration is applied")
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		fmt.Fprintf(w, "rolled back %s (%s)\n", r.Source.Path, r.Duration.Round(time.Millisecond))
	case "status":
		statuses, err := p.Status(ctx)
		if err != nil {
			return fmt.Errorf("migrate status: %w", err)
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
		for _, s := range statuses {
			at := "-"
			if s.State == goose.StateApplied {
				at = s.AppliedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, s.Source.Path)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	current, target, err := p.GetVersions(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", command, err)
	}
	fmt.Fprintf(w, "database at version %d, latest is %d\n", current, target)
	return nil
}

func printMigrateUsage(w io.Writer) {
	fmt.Fprintf(w, "Usage: sms migrate up|down|status [flags]\n\n")
	fmt.Fprintf(w, "Runs the database migrations that the server otherwise applies on start\n")
	fmt.Fprintf(w, "(see --skip-migrations): up applies every pending migration, down rolls\n")
	fmt.Fprintf(w, "back the latest applied one, status lists each as applied or pending.\n")
	fmt.Fprintf(w, "Exit status: 0 done, 1 the database failed, 2 a usage error.\n\n")
	for _, name := range migrateOptions {
		o := lookup(name)
		def := o.def
		if def == "" {
			def = "none"
		}
		fmt.Fprintf(w, "  --%s %s\n", o.name, o.arg)
		fmt.Fprintf(w, "\t%s\n\tenv %s, default %s\n", o.usage, o.env, def)
	}
}
