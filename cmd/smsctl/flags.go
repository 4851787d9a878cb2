package main

import (
	"fmt"
	"strings"
)

// pairsFlag collects repeated k=v flags into a map.
type pairsFlag map[string]string

func (p pairsFlag) String() string { return pairs(p) }

func (p pairsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not key=value", s)
	}
	p[k] = v
	return nil
}

// listFlag collects repeated values.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = append(*l, s)
	return nil
}

// exactly checks the number of positional arguments of a command.
func exactly(args []string, n int, what string) error {
	if len(args) != n {
		return usagef("want %s, got %d argument(s)", what, len(args))
	}
	return nil
}
