// Package cliopt reads the settings of SMS's commands: a table of options,
// each a flag with the environment variable it falls back to and its
// default. A flag given on the command line wins over its variable, a
// variable set and not empty wins over the default, and a variable that a
// flag overrides is never read, so a bad one is not an error. Values are
// kept as the strings given: each command validates them, and reports a
// mistake on one line naming the flag and its variable (Options.Bad).
//
// The table is also the single source of --help (Options.PrintUsage) and of
// the configuration reference the commands' tests check.
package cliopt

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Option is one setting.
type Option struct {
	Name    string // flag name, without dashes
	Env     string // environment variable
	Default string // "" = none
	Arg     string // placeholder in --help; BoolArg for a boolean
	Usage   string
}

// BoolArg is the placeholder of a boolean option: its flag may be given
// alone (--once) or with a value (--once=false).
const BoolArg = "[=true|false]"

// Options is a command's table of options.
type Options []Option

// Lookup returns the option called name; it panics for a name not in the
// table, a mistake in the command's code.
func (opts Options) Lookup(name string) Option {
	for _, o := range opts {
		if o.Name == name {
			return o
		}
	}
	panic("cliopt: unknown option " + name)
}

// Select returns the options called names, in that order, for a
// subcommand that takes some of its command's settings.
func (opts Options) Select(names ...string) Options {
	sel := make(Options, len(names))
	for i, name := range names {
		sel[i] = opts.Lookup(name)
	}
	return sel
}

// UsageError is a configuration mistake, on one line; commands exit with
// status 2 for it.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ErrHelp is returned by Parse for -h or --help, which the command answers
// by printing its usage.
var ErrHelp = errors.New("help requested")

// Bad returns the *UsageError about option name:
// `--name (ENV): <problem>; want <want>`, on one line.
func (opts Options) Bad(name, problem, want string) error {
	return opts.Invalid(name, problem+"; want "+want)
}

// Invalid returns the *UsageError about option name: `--name (ENV): <msg>`,
// on one line (msg may come from a library and say what it wants itself).
func (opts Options) Invalid(name, msg string) error {
	o := opts.Lookup(name)
	return &UsageError{fmt.Sprintf("--%s (%s): %s", o.Name, o.Env, OneLine(msg))}
}

// OneLine joins the lines and runs of blanks of s into single spaces, so
// that errors from files or the OS keep to one line.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Values resolves each option of a parsed FlagSet to what it is set to.
type Values struct {
	opts   Options
	fs     *flag.FlagSet
	getenv func(string) string
	flags  map[string]*listFlag // every value each flag was given
}

// Bind defines each option as a flag of fs (which may hold other flags) and
// returns its values, to be read once fs is parsed; getenv (os.Getenv in
// main) supplies the variables. Every flag may be repeated: Get takes the
// last value, as the flag package does, and List all of them.
func (opts Options) Bind(fs *flag.FlagSet, getenv func(string) string) *Values {
	v := &Values{opts: opts, fs: fs, getenv: getenv, flags: map[string]*listFlag{}}
	for _, o := range opts {
		l := new(listFlag)
		if o.Arg == BoolArg {
			fs.Var((*boolFlag)(l), o.Name, o.Usage)
		} else {
			fs.Var(l, o.Name, o.Usage)
		}
		v.flags[o.Name] = l
	}
	return v
}

// Parse parses args into fs, whose output it discards: the command
// prints one line instead of the flag package's error and usage. It
// returns ErrHelp for -h or --help, and a *UsageError ending with
// "see <fs.Name()> --help" for a flag it does not know or a missing value.
func Parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ErrHelp
		}
		return &UsageError{fmt.Sprintf("%s; see %s --help", err, fs.Name())}
	}
	return nil
}

// NoArgs returns a *UsageError if fs, parsed, was left positional
// arguments, for a command that takes only flags.
func NoArgs(fs *flag.FlagSet) error {
	if fs.NArg() == 0 {
		return nil
	}
	name := fs.Name()
	return &UsageError{fmt.Sprintf("unexpected argument %q; %s takes only flags, see %s --help", fs.Arg(0), name, name)}
}

// Has reports whether option name is one of v's, for code shared by a
// command and a subcommand that takes only some of its options.
func (v *Values) Has(name string) bool {
	for _, o := range v.opts {
		if o.Name == name {
			return true
		}
	}
	return false
}

// FromFlag reports whether option name was given on the command line.
func (v *Values) FromFlag(name string) bool {
	v.opts.Lookup(name)
	given := false
	v.fs.Visit(func(f *flag.Flag) { given = given || f.Name == name })
	return given
}

// Given reports whether option name was set, by its flag or by its
// variable (not empty), rather than left to its default.
func (v *Values) Given(name string) bool {
	return v.FromFlag(name) || v.getenv(v.opts.Lookup(name).Env) != ""
}

// Get returns option name's value: its flag's if given (the last, if
// given several times), else its variable's if not empty, else its default.
func (v *Values) Get(name string) string {
	o := v.opts.Lookup(name)
	switch {
	case v.FromFlag(name):
		vals := *v.flags[name]
		return vals[len(vals)-1]
	case v.getenv(o.Env) != "":
		return v.getenv(o.Env)
	}
	return o.Default
}

// List returns the values of a repeatable option name: each its flag was
// given, in order, if any; else the comma-separated items of its variable
// (or of its default), blanks trimmed and empty ones dropped. The flags
// replace the variable's whole list.
func (v *Values) List(name string) []string {
	o := v.opts.Lookup(name)
	if v.FromFlag(name) {
		return *v.flags[name]
	}
	raw := v.getenv(o.Env)
	if raw == "" {
		raw = o.Default
	}
	var items []string
	for s := range strings.SplitSeq(raw, ",") {
		if s = strings.TrimSpace(s); s != "" {
			items = append(items, s)
		}
	}
	return items
}

// Bool returns option name's value as a boolean, or the *UsageError
// saying it is not one.
func (v *Values) Bool(name string) (bool, error) {
	raw := v.Get(name)
	b, err := strconv.ParseBool(raw)
	if err != nil {
		return false, v.opts.Bad(name, fmt.Sprintf("%q is not a boolean", raw), "true or false")
	}
	return b, nil
}

// PositiveDuration returns option name's value as a duration > 0, or the
// *UsageError saying what is wrong with it and that want is wanted.
func (v *Values) PositiveDuration(name, want string) (time.Duration, error) {
	raw := v.Get(name)
	d, err := time.ParseDuration(raw)
	switch {
	case err != nil:
		return 0, v.opts.Bad(name, fmt.Sprintf("%q is not a duration", raw), want)
	case d <= 0:
		return 0, v.opts.Bad(name, fmt.Sprintf("%q is not > 0", raw), want)
	}
	return d, nil
}

// PrintUsage writes each option for --help: its flag and placeholder, its
// usage, its variable and its default.
func (opts Options) PrintUsage(w io.Writer) {
	for _, o := range opts {
		def := o.Default
		if def == "" {
			def = "none"
		}
		sep := " "
		if o.Arg == BoolArg {
			sep = ""
		}
		fmt.Fprintf(w, "  --%s%s%s\n", o.Name, sep, o.Arg)
		fmt.Fprintf(w, "\t%s\n\tenv %s, default %s\n", o.Usage, o.Env, def)
	}
}

// listFlag keeps every value a flag was given, as given: the command
// validates them like the variable the flag falls back to.
type listFlag []string

func (l *listFlag) String() string {
	if l == nil {
		return ""
	}
	return strings.Join(*l, ",")
}
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// boolFlag is a listFlag that may be given without a value (--once means
// --once=true).
type boolFlag listFlag

func (b *boolFlag) String() string     { return (*listFlag)(b).String() }
func (b *boolFlag) Set(s string) error { return (*listFlag)(b).Set(s) }
func (b *boolFlag) IsBoolFlag() bool   { return true }
