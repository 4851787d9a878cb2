package testutil

import (
	"os"
	"strings"
	"testing"
)

// WantMentioned fails t for each of mentions (a flag as "`--name`", say)
// that the document at path does not contain: a command's tests keep its
// reference documentation complete.
func WantMentioned(t testing.TB, path string, mentions ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range mentions {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s does not mention %s", path, want)
		}
	}
}
