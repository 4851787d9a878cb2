package main

import (
	"os"
	"strings"
	"testing"
)

// TestConfigurationDocumented: every flag and variable of sms-agent is in
// the configuration reference.
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
	if !strings.Contains(doc, "`sms-agent --version`") {
		t.Error("docs/CONFIGURATION.md does not mention `sms-agent --version`")
	}
}
