package testutil

import (
	"bytes"
	"compress/gzip"
)

// GzipBomb returns a small gzip stream that inflates to head, size bytes of
// fill (rounded down to whole MiB), then tail. It is a series of gzip
// members (RFC 1952 allows several, and Go's reader reads them as one
// stream), one member of 1 MiB repeated, so it is quick to build even
// under the race detector: about 1 KB per inflated MiB.
func GzipBomb(head []byte, fill byte, size int, tail []byte) []byte {
	member := func(b []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		return buf.Bytes()
	}
	const chunk = 1 << 20
	out := member(head)
	m := member(bytes.Repeat([]byte{fill}, chunk))
	for range size / chunk {
		out = append(out, m...)
	}
	return append(out, member(tail)...)
}
