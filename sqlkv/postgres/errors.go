package postgres

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/spear-next/sms/sqlkv"
)

// translate maps Postgres and connection errors to the sqlkv sentinels,
// keeping the driver's error in the chain.
func translate(err error) error {
	if pe, ok := errorsAsPg(err); ok {
		switch {
		case pe.Code == "23505": // unique_violation: a concurrent insert won
			return fmt.Errorf("%w: %w", sqlkv.ErrConflict, err)
		case strings.HasPrefix(pe.Code, "08"), // connection exception
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now
			pe.Code == "53300": // too_many_connections
			return fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
		}
		return err
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn),
		// A connection pgx closed after a fatal error ("conn closed"):
		// the request was never sent (seen in a failover, when the
		// primary vanished under a transaction).
		pgconn.SafeToRetry(err),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", sqlkv.ErrUnavailable, err)
	}
	return err
}

// retryable reports whether Postgres rolled a transaction back only because
// of concurrent ones, so that running it again may succeed: a serialization
// failure, a deadlock, or a unique violation (the statements avoid those
// with ON CONFLICT, but a retry is the right answer if one happens: it
// re-evaluates the conditions).
func retryable(err error) bool {
	pe, ok := errorsAsPg(err)
	return ok && (pe.Code == "40001" || pe.Code == "40P01" || pe.Code == "23505")
}

var (
	kvPassword     = regexp.MustCompile(`password\s*=\s*('(\\.|[^'])*'|\S*)`)
	brokenUserinfo = regexp.MustCompile(`://([^:/@]*):[^@/]*@`)
)

// RedactDSN returns dsn with its password, if any, replaced by "xxxxx", for
// error messages and logs.
func RedactDSN(dsn string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return kvPassword.ReplaceAllString(brokenUserinfo.ReplaceAllString(dsn, "://$1:xxxxx@"), "password=xxxxx")
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.String()
	}
	return kvPassword.ReplaceAllString(dsn, "password=xxxxx")
}

// RedactError returns err with dsn and its password, in each spelling a
// driver or server may quote (URL, percent-encoded, key=value), replaced by
// "xxxxx"; errors.Is and errors.As still see err. It is the one redactor of
// errors that may quote a DSN (cmd/sms uses it too); nil stays nil.
func RedactError(err error, dsn string) error {
	return redact(err, dsnSecrets(dsn)...)
}

// redact returns err with every occurrence of each secret in its message
// replaced, whatever a driver or server put there; errors.Is and errors.As
// still see err.
func redact(err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	if msg == err.Error() {
		return err
	}
	return redactedError{msg: msg, err: err}
}

// dsnSecrets returns the strings of dsn that must not appear in a message:
// the DSN itself and its password, in URL or key=value form.
func dsnSecrets(dsn string) []string {
	if dsn == "" {
		return nil
	}
	secrets := []string{dsn}
	if u, err := url.Parse(dsn); err == nil {
		if p, ok := u.User.Password(); ok {
			secrets = append(secrets, p, url.PathEscape(p), url.QueryEscape(p))
		}
		if p := u.Query().Get("password"); p != "" {
			secrets = append(secrets, p)
		}
	}
	for _, f := range strings.Fields(dsn) {
		if p, ok := strings.CutPrefix(f, "password="); ok {
			if p = strings.Trim(p, `'"`); p != "" {
				secrets = append(secrets, p)
			}
		}
	}
	return secrets
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
