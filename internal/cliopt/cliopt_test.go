package cliopt_test

import (
	"bytes"
	"errors"
	"flag"
	"slices"
	"testing"
	"time"

	"github.com/spear-next/sms/internal/cliopt"
)

var testOptions = cliopt.Options{
	{Name: "addr", Env: "T_ADDR", Default: "127.0.0.1:1", Arg: "host:port", Usage: "where to listen"},
	{Name: "token", Env: "T_TOKEN", Arg: "token", Usage: "bearer token"},
	{Name: "once", Env: "T_ONCE", Default: "false", Arg: cliopt.BoolArg, Usage: "run once"},
	{Name: "label", Env: "T_LABELS", Arg: "key=value", Usage: "labels (repeatable)"},
}

// parse binds testOptions to a new FlagSet "cmd", parses args, and returns
// the values with the environment env. Reading a variable not in env, or
// one named in neverRead, fails t.
func parse(t *testing.T, args []string, env map[string]string, neverRead ...string) (*cliopt.Values, *flag.FlagSet, error) {
	t.Helper()
	getenv := func(k string) string {
		if slices.Contains(neverRead, k) {
			t.Errorf("variable %s read, but its flag is given", k)
		}
		return env[k]
	}
	fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
	v := testOptions.Bind(fs, getenv)
	return v, fs, cliopt.Parse(fs, args)
}

func TestPrecedence(t *testing.T) {
	env := map[string]string{"T_ADDR": "env:2", "T_TOKEN": ""}
	v, _, err := parse(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Get("addr"), "env:2"; got != want {
		t.Errorf("addr from env = %q, want %q", got, want)
	}
	if v.FromFlag("addr") || !v.Given("addr") {
		t.Errorf("addr from env: FromFlag %v, Given %v; want false, true", v.FromFlag("addr"), v.Given("addr"))
	}
	if got, want := v.Get("once"), "false"; got != want || v.Given("once") {
		t.Errorf("once = %q (given %v), want the default %q", got, v.Given("once"), want)
	}
	if got := v.Get("token"); got != "" || v.Given("token") {
		t.Errorf("token with an empty variable = %q (given %v), want the empty default, not given", got, v.Given("token"))
	}

	v, _, err = parse(t, []string{"--addr", "flag:3", "-addr=flag:4"}, env, "T_ADDR")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.Get("addr"), "flag:4"; got != want {
		t.Errorf("addr given twice = %q, want the last, %q", got, want)
	}
	if !v.FromFlag("addr") || !v.Given("addr") {
		t.Errorf("addr from a flag: FromFlag %v, Given %v; want true, true", v.FromFlag("addr"), v.Given("addr"))
	}
}

func TestBool(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--once"}, nil, "true"},
		{[]string{"--once=false"}, map[string]string{"T_ONCE": "true"}, "false"},
		{[]string{"--once=maybe"}, nil, "maybe"}, // kept as given, for the command to reject
		{nil, map[string]string{"T_ONCE": "1"}, "1"},
	} {
		v, _, err := parse(t, tt.args, tt.env)
		if err != nil {
			t.Fatalf("%q: %v", tt.args, err)
		}
		if got := v.Get("once"); got != tt.want {
			t.Errorf("once with %q, env %v = %q, want %q", tt.args, tt.env, got, tt.want)
		}
	}
}

func TestList(t *testing.T) {
	env := map[string]string{"T_LABELS": " zone=a, ,rack=r1 ,"}
	v, _, err := parse(t, nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.List("label"), []string{"zone=a", "rack=r1"}; !slices.Equal(got, want) {
		t.Errorf("labels from env = %q, want %q", got, want)
	}
	v, _, err = parse(t, []string{"--label", "zone=b,c", "--label", " x=y"}, env, "T_LABELS")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := v.List("label"), []string{"zone=b,c", " x=y"}; !slices.Equal(got, want) {
		t.Errorf("labels from flags = %q, want %q (as given, replacing the variable's)", got, want)
	}
	if v, _, _ := parse(t, nil, nil); v.List("label") != nil {
		t.Errorf("labels unset = %q, want none", v.List("label"))
	}
}

func TestParseErrors(t *testing.T) {
	_, _, err := parse(t, []string{"--help"}, nil)
	if !errors.Is(err, cliopt.ErrHelp) {
		t.Errorf("--help: %v, want ErrHelp", err)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "flag provided but not defined: -nope; see cmd --help"},
		{[]string{"--addr"}, "flag needs an argument: -addr; see cmd --help"},
	} {
		_, _, err := parse(t, tt.args, nil)
		var ue *cliopt.UsageError
		if !errors.As(err, &ue) || ue.Msg != tt.want {
			t.Errorf("%q: %v, want a *UsageError %q", tt.args, err, tt.want)
		}
	}

	_, fs, err := parse(t, []string{"--once", "serve"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ue *cliopt.UsageError
	if err := cliopt.NoArgs(fs); !errors.As(err, &ue) || ue.Msg != `unexpected argument "serve"; cmd takes only flags, see cmd --help` {
		t.Errorf("NoArgs with an argument = %v, want a *UsageError naming it", err)
	}
	if _, fs, _ := parse(t, []string{"--once"}, nil); cliopt.NoArgs(fs) != nil {
		t.Errorf("NoArgs without arguments = %v, want nil", cliopt.NoArgs(fs))
	}
}

func TestBad(t *testing.T) {
	err := testOptions.Bad("addr", "open x:\nno such\tfile", "host:port")
	var ue *cliopt.UsageError
	if !errors.As(err, &ue) {
		t.Fatalf("Bad = %T, want a *UsageError", err)
	}
	if got, want := err.Error(), "--addr (T_ADDR): open x: no such file; want host:port"; got != want {
		t.Errorf("Bad = %q, want %q", got, want)
	}
	if got, want := testOptions.Invalid("token", "address \"x\": want y").Error(), `--token (T_TOKEN): address "x": want y`; got != want {
		t.Errorf("Invalid = %q, want %q", got, want)
	}
}

func TestSelectAndHas(t *testing.T) {
	sel := testOptions.Select("label", "addr")
	if len(sel) != 2 || sel[0].Name != "label" || sel[1].Name != "addr" {
		t.Fatalf("Select(label, addr) = %+v", sel)
	}
	fs := flag.NewFlagSet("sub", flag.ContinueOnError)
	v := sel.Bind(fs, func(string) string { return "" })
	if err := cliopt.Parse(fs, []string{"--once"}); err == nil {
		t.Error("a subcommand accepted --once, an option it did not select")
	}
	if !v.Has("addr") || v.Has("once") {
		t.Errorf("Has(addr), Has(once) = %v, %v; want true, false", v.Has("addr"), v.Has("once"))
	}
	defer func() {
		if recover() == nil {
			t.Error("Lookup of an unknown option did not panic")
		}
	}()
	testOptions.Lookup("nope")
}

func TestPrintUsage(t *testing.T) {
	var b bytes.Buffer
	testOptions.Select("addr", "token", "once").PrintUsage(&b)
	want := "  --addr host:port\n\twhere to listen\n\tenv T_ADDR, default 127.0.0.1:1\n" +
		"  --token token\n\tbearer token\n\tenv T_TOKEN, default none\n" +
		"  --once[=true|false]\n\trun once\n\tenv T_ONCE, default false\n"
	if b.String() != want {
		t.Errorf("PrintUsage =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestBoolAndPositiveDuration(t *testing.T) {
	opts := cliopt.Options{
		{Name: "once", Env: "T_ONCE", Default: "false", Arg: cliopt.BoolArg},
		{Name: "every", Env: "T_EVERY", Default: "10s", Arg: "duration"},
	}
	for _, tt := range []struct {
		args           []string
		once           bool
		every          time.Duration
		onceErr, evErr string
	}{
		{nil, false, 10 * time.Second, "", ""},
		{[]string{"--once", "--every=1m"}, true, time.Minute, "", ""},
		{[]string{"--once=maybe", "--every=0s"}, false, 0,
			`--once (T_ONCE): "maybe" is not a boolean; want true or false`, `--every (T_EVERY): "0s" is not > 0; want > 0`},
		{[]string{"--every=soon"}, false, 0, "", `--every (T_EVERY): "soon" is not a duration; want > 0`},
	} {
		fs := flag.NewFlagSet("cmd", flag.ContinueOnError)
		v := opts.Bind(fs, func(string) string { return "" })
		if err := cliopt.Parse(fs, tt.args); err != nil {
			t.Fatal(err)
		}
		check := func(what string, err error, want string) {
			t.Helper()
			var ue *cliopt.UsageError
			switch {
			case want == "" && err != nil:
				t.Errorf("%s with %q: %v, want no error", what, tt.args, err)
			case want != "" && (!errors.As(err, &ue) || ue.Msg != want):
				t.Errorf("%s with %q: %v, want a *UsageError %q", what, tt.args, err, want)
			}
		}
		once, err := v.Bool("once")
		check("Bool", err, tt.onceErr)
		every, err := v.PositiveDuration("every", "> 0")
		check("PositiveDuration", err, tt.evErr)
		if once != tt.once || every != tt.every {
			t.Errorf("with %q: once %v, every %v; want %v, %v", tt.args, once, every, tt.once, tt.every)
		}
	}
}
