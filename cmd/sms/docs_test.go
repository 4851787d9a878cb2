package main

import (
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocumented: every flag and variable of sms is in the
// configuration reference.
func TestConfigurationDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/CONFIGURATION.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	for _, o := range options {
		for _, want := range []string{"`--" + o.name + "`", "`" + o.env + "`"} {
			if !strings.Contains(doc, want) {
				t.Errorf("docs/CONFIGURATION.md does not mention %s", want)
			}
		}
	}
	for _, want := range []string{"`--yes`", "`sms backup", "`sms --version`"} {
		if !strings.Contains(doc, want) {
			t.Errorf("docs/CONFIGURATION.md does not mention %s", want)
		}
	}
}
