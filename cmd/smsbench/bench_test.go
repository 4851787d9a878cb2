package main

import (
	"context"
	"testing"
	"time"
)

// TestPhaseCut: a call that fails within the handler's reserve before the
// phase's deadline (a tenth of the call's time, at most 250 ms) is the
// phase's end; one that fails earlier is a failure.
func TestPhaseCut(t *testing.T) {
	now := time.Now()
	ctx, cancel := context.WithDeadline(context.Background(), now.Add(100*time.Millisecond))
	defer cancel()
	r := &recorder{phase: ctx}
	if !r.phaseCut(now.Add(-10 * time.Second)) {
		t.Error("a call started 10 s ago failing 100 ms before the phase's end (reserve 250 ms): not the phase's end")
	}
	ctx2, cancel2 := context.WithDeadline(context.Background(), now.Add(time.Hour))
	defer cancel2()
	r = &recorder{phase: ctx2}
	if r.phaseCut(now) {
		t.Error("a call failing an hour before the phase's end counted as the phase's end")
	}
	ctx3, cancel3 := context.WithCancel(context.Background())
	cancel3()
	r = &recorder{phase: ctx3}
	if !r.phaseCut(now) {
		t.Error("a call failing after the phase ended: not the phase's end")
	}
}
