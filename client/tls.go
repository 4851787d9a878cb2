package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// TLSFiles names the PEM files of a TLS client configuration.
type TLSFiles struct {
	// CA holds the certificates to verify the server with; empty means the
	// system's roots.
	CA string
	// Cert and Key are the client certificate and its private key, for a
	// server that requires one (sms --tls-client-ca). Both or neither.
	Cert, Key string
	// InsecureSkipVerify accepts any server certificate. Testing only.
	InsecureSkipVerify bool
}

// Empty reports whether f configures nothing, so no TLS is implied.
func (f TLSFiles) Empty() bool { return f == TLSFiles{} }

// LoadTLS reads f into a tls.Config for WithTLS. Its errors name the file
// and what is wrong with it (unreadable, no PEM certificate, a key that
// does not match, Cert without Key).
func LoadTLS(f TLSFiles) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: f.InsecureSkipVerify}
	if f.CA != "" {
		pem, err := os.ReadFile(f.CA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca: %s holds no PEM certificate", f.CA)
		}
		tc.RootCAs = pool
	}
	switch {
	case f.Cert != "" && f.Key != "":
		cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case f.Cert != "" || f.Key != "":
		return nil, errors.New("tls client certificate: cert and key go together")
	}
	return tc, nil
}
