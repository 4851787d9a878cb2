//go:build race

package client_test

// raceEnabled reports whether the race detector is on, which makes the
// server several times slower: the load check runs fewer agents then.
const raceEnabled = true
