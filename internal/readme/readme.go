// Package readme checks that the README works as written: its test runs
// every code block marked runnable, in order, against a real server, from
// a fresh copy of the repository and a shell with nothing set.
//
// A block is runnable when the line before its opening fence is exactly
//
//	<!-- runnable -->
//
// Shell blocks (```sh) run one after the other in one bash session with
// `set -euo pipefail`, so a variable or `export` of one block is seen by
// the next, as when a reader types them in order; the working directory
// is the copy's root. Go blocks (```go) must be a whole program: each is
// compiled and vetted inside the module.
//
// What the runner does that a reader would not: it starts the server
// (`sms` with its defaults, so its data is ./data/sms.db) before the first
// block, on one free port that serves everything, which replaces
// 127.0.0.1:50051 and 127.0.0.1:8080 in every block and is exported as
// SMS_ADDR; and it shares the Go build and module
// caches, so the copy does not rebuild the world.
//
// Run it with SMS_TEST_README=1 go test -count=1 ./internal/readme/ (CI
// does, in .ci/run).
package readme

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Marker is the line that makes the next code block runnable.
const Marker = "<!-- runnable -->"

// Block is one runnable code block of a Markdown file.
type Block struct {
	Lang string // "sh" or "go"
	Line int    // line of the opening fence, 1-based
	Text string // the block's content, without the fences
}

// Blocks returns the runnable blocks of the Markdown in r. A marker not
// followed by a sh or go block, or a block left open, is an error, so a
// typo cannot silently drop a block from the check.
func Blocks(r io.Reader) ([]Block, error) {
	var (
		blocks  []Block
		marked  int // line of a pending marker, 0 if none
		current *Block
		text    strings.Builder
	)
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case current != nil:
			if trimmed == "```" {
				current.Text = text.String()
				blocks = append(blocks, *current)
				current = nil
				continue
			}
			text.WriteString(line + "\n")
		case trimmed == Marker:
			marked = n
		case marked != 0 && trimmed == "":
		case marked != 0:
			lang, ok := strings.CutPrefix(trimmed, "```")
			if !ok || (lang != "sh" && lang != "go") {
				return nil, fmt.Errorf("line %d: %s is not followed by a ```sh or ```go block", marked, Marker)
			}
			current = &Block{Lang: lang, Line: n}
			text.Reset()
			marked = 0
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if current != nil {
		return nil, fmt.Errorf("line %d: runnable block is not closed", current.Line)
	}
	if marked != 0 {
		return nil, fmt.Errorf("line %d: %s at the end of the file", marked, Marker)
	}
	return blocks, nil
}
