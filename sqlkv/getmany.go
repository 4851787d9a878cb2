package sqlkv

import (
	"context"
	"errors"
)

// MultiGetter is implemented by stores that can read several keys with one
// query. Use it through GetMany, which falls back to Get per key.
type MultiGetter interface {
	// GetMany returns the entries of the keys that exist, in the order of
	// keys; missing keys are left out. It returns the errors of Get except
	// ErrNotFound.
	GetMany(ctx context.Context, keys ...[]byte) ([]Entry, error)
}

// GetMany returns the entries of the keys that exist, in the order of keys,
// missing keys left out: with one query if s is a MultiGetter, else with one
// Get per key (then not a snapshot: each Get sees the store as it is then).
// It returns the errors of Get except ErrNotFound.
func GetMany(ctx context.Context, s Store, keys ...[]byte) ([]Entry, error) {
	if m, ok := s.(MultiGetter); ok {
		return m.GetMany(ctx, keys...)
	}
	out := make([]Entry, 0, len(keys))
	for _, k := range keys {
		e, err := s.Get(ctx, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}
