package main

import (
	"testing"

	"github.com/spear-next/sms/internal/testutil"
)

// TestConfigurationDocumented: every flag and variable of sms is in the
// configuration reference.
func TestConfigurationDocumented(t *testing.T) {
	mentions := []string{"`--yes`", "`sms backup", "`sms --version`"}
	for _, o := range options {
		mentions = append(mentions, "`--"+o.Name+"`", "`"+o.Env+"`")
	}
	testutil.WantMentioned(t, "../../docs/CONFIGURATION.md", mentions...)
}
