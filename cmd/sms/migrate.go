package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pressly/goose/v3"
	"golang.org/x/term"

	"github.com/spear-next/sms/internal/cliopt"
	"github.com/spear-next/sms/migrations"
	"github.com/spear-next/sms/sqlkv/kvstore"
	"github.com/spear-next/sms/sqlkv/postgres"
)

// migrateOptions are the options `sms migrate` takes: those that name the
// database, with the server's flags and environment variables.
var migrateOptions = []string{"kv-backend", "kv-path", "kv-dsn"}

// migrateTimeout bounds one migrate command; the Postgres lock alone may be
// waited for up to 5 minutes (see migrations.NewPostgresProvider).
const migrateTimeout = 10 * time.Minute

// terminal is where `sms migrate down` asks for a typed confirmation:
// stdin, when it is a terminal (isTerminal).
type terminal struct {
	in         io.Reader
	isTerminal bool
}

// stdinTerminal returns os.Stdin and whether it is a terminal (not merely a
// character device: /dev/null is one too).
func stdinTerminal() terminal {
	return terminal{in: os.Stdin, isTerminal: term.IsTerminal(int(os.Stdin.Fd()))}
}

// runMigrate runs `sms migrate up|down|status [flags]`: up applies every
// pending migration, down rolls back the latest applied one (after --yes
// or a typed "yes" on a terminal), status lists each migration as applied
// or pending. Reports go to stdout. It returns errHelp after printing
// usage, a *usageError for bad arguments (down without --yes off a
// terminal), and other errors (never holding the DSN's password) when the
// database fails or is in use by a server (SQLite).
func runMigrate(ctx context.Context, args []string, getenv func(string) string, tty terminal, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sms migrate", flag.ContinueOnError)
	v := values{options.Select(migrateOptions...).Bind(fs, getenv)}
	yes := fs.Bool("yes", false, "down: roll back without asking")
	// Flags may come before or after the command.
	parse := func(args []string) error {
		err := cliopt.Parse(fs, args)
		if errors.Is(err, errHelp) {
			printMigrateUsage(stderr)
		}
		return err
	}
	if err := parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return &usageError{Msg: "migrate needs a command: up, down or status; see sms migrate --help"}
	}
	command := fs.Arg(0)
	if err := parse(fs.Args()[1:]); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{Msg: fmt.Sprintf("unexpected argument %q; see sms migrate --help", fs.Arg(0))}
	}
	switch command {
	case "up", "down", "status":
	default:
		return &usageError{Msg: fmt.Sprintf("unknown migrate command %q; want up, down or status", command)}
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
	confirm := func(plan string) error {
		if *yes {
			fmt.Fprintln(stdout, plan)
			return nil
		}
		if !tty.isTerminal {
			return &usageError{Msg: plan + "; run again with --yes to do it"}
		}
		fmt.Fprintf(stderr, "%s.\nType yes to go on: ", plan)
		answer, _ := bufio.NewReader(tty.in).ReadString('\n')
		if strings.TrimSpace(answer) != "yes" {
			return errors.New("migrate down: not confirmed; nothing changed")
		}
		return nil
	}
	err = migrate(ctx, command, sc, confirm, stdout)
	return postgres.RedactError(err, sc.DSN)
}

// migrate runs command on the database of sc. Before rolling back, it
// calls confirm with what down will do; an error from it stops the command.
func migrate(ctx context.Context, command string, sc kvstore.Config, confirm func(plan string) error, w io.Writer) (err error) {
	p, db, err := kvstore.Migrations(ctx, sc, command == "status")
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
			fmt.Fprintf(w, "applied %s (%s)\n", migrations.Name(r.Source), r.Duration.Round(time.Millisecond))
		}
		if err != nil {
			return fmt.Errorf("migrate up: %w", err)
		}
	case "down":
		plan, err := downPlan(ctx, p, db)
		if err != nil {
			return err
		}
		if err := confirm(plan); err != nil {
			return err
		}
		r, err := p.Down(ctx)
		if errors.Is(err, goose.ErrNoNextVersion) {
			return errors.New("migrate down: no migration is applied")
		}
		if err != nil {
			return fmt.Errorf("migrate down: %w", err)
		}
		fmt.Fprintf(w, "rolled back %s (%s)\n", migrations.Name(r.Source), r.Duration.Round(time.Millisecond))
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
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", s.Source.Version, s.State, at, migrations.Name(s.Source))
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

// downPlan says what `migrate down` would do to the database: which
// migration it rolls back and how many keys that drops (all of them when it
// is the first migration, the one creating the table; none otherwise).
func downPlan(ctx context.Context, p *goose.Provider, db kvstore.MigrationDB) (string, error) {
	statuses, err := p.Status(ctx)
	if err != nil {
		return "", fmt.Errorf("migrate down: %w", err)
	}
	var applied []*goose.MigrationStatus
	for _, s := range statuses {
		if s.State == goose.StateApplied {
			applied = append(applied, s)
		}
	}
	if len(applied) == 0 {
		return "", errors.New("migrate down: no migration is applied")
	}
	keys, err := db.CountKeys(ctx)
	if err != nil {
		return "", fmt.Errorf("migrate down: %w", err)
	}
	latest := migrations.Name(applied[len(applied)-1].Source)
	if applied[len(applied)-1].Source.Version == migrations.RecordsVersion {
		return fmt.Sprintf("migrate down rolls back %s: it rewrites the records among the store's %d keys in the JSON format of SMS before records v2 and deletes none", latest, keys), nil
	}
	if len(applied) == 1 {
		return fmt.Sprintf("migrate down rolls back %s, which drops the store's table: %d keys will be deleted", latest, keys), nil
	}
	return fmt.Sprintf("migrate down rolls back %s: it drops 0 of the store's %d keys", latest, keys), nil
}

func printMigrateUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: sms migrate up|down|status [flags]

Runs the database migrations that the server otherwise applies on start
(see --skip-migrations): up applies every pending migration, down rolls
back the latest applied one, status lists each as applied or pending.
down says how many keys it will delete and needs --yes, or "yes" typed
on a terminal. On SQLite, up and down refuse a file a server has open.
Exit status: 0 done, 1 the database failed, 2 a usage error.

`)
	options.Select(migrateOptions...).PrintUsage(w)
	fmt.Fprint(w, `  --yes
	down: roll back without asking
`)
}
