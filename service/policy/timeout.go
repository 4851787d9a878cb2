package policy

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"connectrpc.com/connect"
)

// timedBody gives a request body a deadline (http.ResponseController's
// read deadline: the connection's on HTTP/1.1, the stream's on HTTP/2) and
// lifts it at the end of the body, so that a server stream, whose request
// is in, lives as long as it likes. A read past the deadline fails with
// deadline_exceeded, and the answer closes the connection on HTTP/1.1
// (net/http would otherwise clear the deadline and read the rest of the
// trickle to reuse it); on HTTP/2 the stream is reset.
type timedBody struct {
	body    io.ReadCloser
	w       http.ResponseWriter
	http1   bool
	rc      *http.ResponseController
	timeout time.Duration
	armed   bool
}

func newTimedBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) io.ReadCloser {
	rc := http.NewResponseController(w)
	if rc.SetReadDeadline(time.Now().Add(timeout)) != nil {
		return r.Body // a writer without deadlines (a test recorder)
	}
	return &timedBody{body: r.Body, w: w, http1: r.ProtoMajor == 1, rc: rc, timeout: timeout, armed: true}
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case errors.Is(err, io.EOF) && b.armed:
		b.armed = false
		b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		if b.http1 {
			b.w.Header().Set("Connection", "close")
		}
		err = connect.NewError(connect.CodeDeadlineExceeded,
			fmt.Errorf("request body did not arrive within %s", b.timeout))
	}
	return n, err
}

func (b *timedBody) Close() error { return b.body.Close() }
