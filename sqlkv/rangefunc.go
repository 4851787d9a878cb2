package sqlkv

import (
	"bytes"
	"context"
	"slices"
)

// RangeStreamer is implemented by stores that read a range from one cursor,
// handing each entry to a function as it is read instead of returning them
// all in a slice. Use it through RangeFunc.
type RangeStreamer interface {
	// RangeFunc calls fn with each entry opts selects, in Range's order and
	// with Range's errors, read by one statement (a snapshot, as Range is),
	// until the entries end or fn returns an error, which RangeFunc then
	// returns as is. The Key and Value fn is given are valid only until fn
	// returns (they may be the driver's buffers): fn copies what it keeps.
	// With KeysOnly, Value is nil.
	RangeFunc(ctx context.Context, opts RangeOptions, fn func(Entry) error) error
}

// rangeFuncChunk is how many entries one Range of the derived RangeFunc
// reads.
const rangeFuncChunk = 1000

// RangeFunc calls fn with each entry opts selects, in Range's order, until
// the entries end or fn returns an error, which it returns as is; see
// RangeStreamer. With s's RangeFunc if s is a RangeStreamer (one statement,
// one snapshot, no slice of every entry). Otherwise it reads with Range, in
// chunks of up to 1,000 entries, each starting after the last key of the one
// before (so, unlike the fast path, the whole range is not one snapshot:
// each chunk is), and fn may keep what it is given.
func RangeFunc(ctx context.Context, s Store, opts RangeOptions, fn func(Entry) error) error {
	if r, ok := s.(RangeStreamer); ok {
		return r.RangeFunc(ctx, opts, fn)
	}
	left := opts.Limit // entries still wanted; <= 0: no limit
	for {
		chunk := opts
		chunk.Limit = rangeFuncChunk
		if left > 0 {
			chunk.Limit = min(left, rangeFuncChunk)
		}
		entries, err := s.Range(ctx, chunk)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		if left > 0 {
			if left -= len(entries); left == 0 {
				return nil
			}
		}
		if len(entries) < chunk.Limit {
			return nil
		}
		last := entries[len(entries)-1].Key
		if opts.Reverse {
			// The next chunk ends before the last key read.
			opts.End = bytes.Clone(last)
		} else {
			// The next chunk starts just after it: the key plus a zero
			// byte, the least key above it. A key of MaxKeySize has no
			// successor within the limit, so a chunk ending on one ends
			// the range only if it is also the range's last key; reading
			// on from it would be ErrKeyTooLarge, so check what follows
			// it with a Start of the key itself, skipping it.
			if len(last) < MaxKeySize {
				opts.Start = append(slices.Clip(bytes.Clone(last)), 0)
				continue
			}
			next := opts
			next.Start = bytes.Clone(last)
			rest, err := s.Range(ctx, withLimit(next, 2))
			if err != nil {
				return err
			}
			if len(rest) < 2 {
				return nil
			}
			opts.Start = rest[1].Key
		}
	}
}

func withLimit(opts RangeOptions, n int) RangeOptions {
	opts.Limit = n
	return opts
}
