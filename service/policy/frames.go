package policy

import (
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"
)

// frameReader follows the envelopes of a gRPC, gRPC-web or Connect
// streaming request body as connect-go reads it, and turns what connect-go
// would answer with internal into invalid_argument, the client's mistake: a
// body that ends inside an envelope (truncated prefix or message), and an
// envelope flag a client may not send (only 0, and 1 for compressed when
// the request names an encoding).
// connect-go passes a *connect.Error from the body through unchanged.
type frameReader struct {
	body       io.ReadCloser
	compressed bool // the request names a message encoding

	prefix    [envelopePrefix]byte
	prefixLen int   // bytes of the current prefix seen
	remaining int64 // message bytes still to come after a complete prefix
	err       error // sticky
}

func (f *frameReader) Read(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	n, err := f.body.Read(p)
	if ferr := f.follow(p[:n]); ferr != nil {
		f.err = ferr
		return n, ferr
	}
	if errors.Is(err, io.EOF) && (f.prefixLen > 0 || f.remaining > 0) {
		f.err = connect.NewError(connect.CodeInvalidArgument,
			fmt.Errorf("truncated frame: the body ended %s", f.where()))
		return n, f.err
	}
	return n, err
}

// follow advances the envelope state over b.
func (f *frameReader) follow(b []byte) error {
	for len(b) > 0 {
		if f.remaining > 0 {
			k := min(int64(len(b)), f.remaining)
			f.remaining -= k
			b = b[k:]
			continue
		}
		k := copy(f.prefix[f.prefixLen:], b)
		f.prefixLen += k
		b = b[k:]
		if f.prefixLen < envelopePrefix {
			return nil
		}
		switch flags := f.prefix[0]; {
		case flags == 1 && !f.compressed:
			return connect.NewError(connect.CodeInvalidArgument,
				errors.New("malformed frame: a compressed message, but the request names no encoding"))
		case flags > 1:
			return connect.NewError(connect.CodeInvalidArgument,
				fmt.Errorf("malformed frame: flags 0x%02x (a request message may only set 0x01, compressed)", flags))
		}
		f.remaining = int64(f.prefix[1])<<24 | int64(f.prefix[2])<<16 | int64(f.prefix[3])<<8 | int64(f.prefix[4])
		f.prefixLen = 0
	}
	return nil
}

// namesEncoding reports whether r's messages may be compressed: gRPC and
// gRPC-web name the encoding in Grpc-Encoding, Connect streaming in
// Connect-Content-Encoding.
func namesEncoding(r *http.Request) bool {
	for _, h := range []string{"Grpc-Encoding", "Connect-Content-Encoding"} {
		if v := r.Header.Get(h); v != "" && v != "identity" {
			return true
		}
	}
	return false
}

func (f *frameReader) where() string {
	if f.prefixLen > 0 {
		return fmt.Sprintf("inside a message prefix (%d of 5 bytes)", f.prefixLen)
	}
	return fmt.Sprintf("%d bytes short of the message its prefix announced", f.remaining)
}

func (f *frameReader) Close() error { return f.body.Close() }
