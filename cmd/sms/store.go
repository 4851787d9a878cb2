package main

import (
	"net/url"
	"strings"
)

// storeDescription says which store the server uses, for the startup line,
// without secrets: a Postgres URL loses its password, and a key=value DSN is
// not shown at all because its quoting rules make redaction unreliable.
func storeDescription(cfg config) string {
	switch cfg.backend {
	case "sqlite":
		return cfg.kvPath
	case "postgres":
		return redactDSN(cfg.kvDSN)
	}
	return cfg.backend
}

// redactDSN returns a Postgres URL with its password (in the user info or the
// query) replaced by "xxxxx", or a placeholder if dsn is not such a URL.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(key=value DSN, not logged)"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
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
