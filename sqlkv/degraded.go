package sqlkv

// Degrader is implemented by stores that can keep serving reads while
// their writes fail (the SQL stores, while the disk is full) and by the
// wrappers of such stores, which forward it.
type Degrader interface {
	// Degraded returns nil when writes work, and otherwise an error saying
	// why they fail (wrapping ErrStorageFull).
	Degraded() error
}

// Degraded returns store's Degraded() if it is a Degrader, else nil.
func Degraded(store Store) error {
	if d, ok := store.(Degrader); ok {
		return d.Degraded()
	}
	return nil
}
