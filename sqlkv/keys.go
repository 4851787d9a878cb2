package sqlkv

import "fmt"

// PrefixEnd returns the smallest key greater than every key starting with
// prefix: prefix with trailing 0xFF bytes dropped and its last byte
// incremented. It returns nil, meaning "no upper bound", when prefix is empty
// or all 0xFF. Prefix scans are the range [prefix, PrefixEnd(prefix)).
func PrefixEnd(prefix []byte) []byte {
	for i := len(prefix) - 1; i >= 0; i-- {
		if prefix[i] != 0xFF {
			end := make([]byte, i+1)
			copy(end, prefix)
			end[i]++
			return end
		}
	}
	return nil
}

// PrefixRange returns the range options selecting every key that starts with
// prefix.
func PrefixRange(prefix []byte) RangeOptions {
	return RangeOptions{Start: prefix, End: PrefixEnd(prefix)}
}

// EmptyRange reports whether opts selects no key because Start is at or after
// End. Backends answer such ranges without a query.
func EmptyRange(opts RangeOptions) bool {
	return opts.End != nil && string(opts.Start) >= string(opts.End)
}

// CheckKey returns ErrKeyTooLarge, wrapped with the key's size, when key is
// longer than MaxKeySize.
func CheckKey(key []byte) error {
	if len(key) > MaxKeySize {
		return fmt.Errorf("key of %d bytes (limit %d): %w", len(key), MaxKeySize, ErrKeyTooLarge)
	}
	return nil
}

// CheckValue returns ErrValueTooLarge, wrapped with the value's size, when
// value is longer than MaxValueSize.
func CheckValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("value of %d bytes (limit %d): %w", len(value), MaxValueSize, ErrValueTooLarge)
	}
	return nil
}

// CheckOps validates every op of an Apply before anything is written, so an
// oversized value in the middle of a batch leaves the store unchanged.
func CheckOps(ops []Op) error {
	for i, op := range ops {
		switch op.Kind {
		case OpPut, OpDelete, OpCheck:
		default:
			return fmt.Errorf("op %d: unknown kind %v", i, op.Kind)
		}
		if err := CheckKey(op.Key); err != nil {
			return fmt.Errorf("op %d (%v): %w", i, op.Kind, err)
		}
		if op.Kind == OpPut {
			if err := CheckValue(op.Value); err != nil {
				return fmt.Errorf("op %d (%v %q): %w", i, op.Kind, Truncate(op.Key), err)
			}
		}
	}
	return nil
}

// Truncate shortens key for error messages, so a 2 KiB key does not flood a
// log line.
func Truncate(key []byte) []byte {
	const max = 64
	if len(key) <= max {
		return key
	}
	return key[:max]
}
