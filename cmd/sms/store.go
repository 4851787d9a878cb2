package main

import (
	"net/url"
	"strings"
)

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
