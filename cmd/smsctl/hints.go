package main

import (
	"errors"

	"connectrpc.com/connect"

	"github.com/spear-next/sms/client"
)

// flagHints say which flags fix a mistake the client package diagnosed.
var flagHints = []struct {
	err  error
	hint string
}{
	{client.ErrServerSpeaksTLS, "the server speaks TLS; use https:// or --tls-ca"},
	{client.ErrClientCertRequired, client.ErrClientCertRequired.Error() + "; pass --tls-cert and --tls-key"},
}

// message is ce's message, or the flags to use instead of what it says.
func message(ce *connect.Error) string {
	for _, h := range flagHints {
		if errors.Is(ce, h.err) {
			return h.hint
		}
	}
	return ce.Message()
}
