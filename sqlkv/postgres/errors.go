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

// redact returns err with every occurrence of password in its message
// replaced, whatever a driver or server put there; errors.Is and errors.As
// still see err.
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e redactedError) Error() string { return e.msg }
func (e redactedError) Unwrap() error { return e.err }
