package main

import (
	"flag"
	"io"
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocumented: every global flag, command and command flag
// of smsctl is in the configuration reference.
func TestConfigurationDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	mention := func(name string) string {
		if len(name) == 1 {
			return "`-" + name
		}
		return "`--" + name
	}
	var g globals
	global := flag.NewFlagSet("", flag.ContinueOnError)
	g.register(global)
	global.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(doc, mention(f.Name)) {
			t.Errorf("docs/CONFIGURATION.md does not mention the global flag %s", mention(f.Name))
		}
	})
	for _, c := range commands {
		if !strings.Contains(doc, "`"+c.name) {
			t.Errorf("docs/CONFIGURATION.md does not mention the command %q", c.name)
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		c.flags(fs)
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(doc, mention(f.Name)+"`") && !strings.Contains(doc, mention(f.Name)+" ") {
				t.Errorf("docs/CONFIGURATION.md does not mention %s of %s", mention(f.Name), c.name)
			}
		})
	}
}
