package policy

import (
	"compress/gzip"
	"io"

	"connectrpc.com/connect"
)

// HandlerOptions are the connect-go handler options of the policy, for
// every handler behind Handler: the message size limit, and a gzip
// decompressor that stops inflating at that limit. connect-go's own one
// inflates the rest of an oversized message just to report its size, so a
// 1 MB gzip bomb cost seconds of CPU.
func (p *Policy) HandlerOptions() []connect.HandlerOption {
	limit := p.maxBytes
	return []connect.HandlerOption{
		connect.WithReadMaxBytes(int(limit)),
		connect.WithCompression("gzip",
			func() connect.Decompressor { return &limitedGzip{limit: limit} },
			func() connect.Compressor { return gzip.NewWriter(io.Discard) },
		),
	}
}

// limitedGzip is a gzip reader that fails with resource_exhausted once more
// than limit bytes were inflated, instead of inflating to the end.
type limitedGzip struct {
	gzip.Reader
	limit int64
	read  int64
}

func (z *limitedGzip) Reset(r io.Reader) error {
	z.read = 0
	return z.Reader.Reset(r)
}

func (z *limitedGzip) Read(p []byte) (int, error) {
	// Never ask for more than one byte past the limit.
	if room := z.limit + 1 - z.read; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := z.Reader.Read(p)
	z.read += int64(n)
	if z.read > z.limit {
		return n, errTooLarge(z.limit)
	}
	return n, err
}
